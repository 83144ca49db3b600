// Package hostnet is the host's kernel side of services and of the way
// out: what one host namespace must hold beyond OVS so that workloads reach
// the outside, the outside reaches services through node ports, and a VIP
// without endpoints is refused at once.
//
// [Describe] turns a [Config] into a [Plan] with no I/O: two sysctls, one
// route and one nftables table, `table inet sdn`, as text (pinned by the
// golden files in testdata/). [Apply] makes a network namespace, given by
// path (/run/netns/NAME, /proc/PID/ns/net; "" is the process's own), hold
// exactly the plan; a second call with the same Config changes nothing.
// [Remove] takes it all away. Nothing else of the host's firewall or routes
// is touched. Apply wants the gateway device up (datapath/host brings it
// up first): the kernel refuses a route through a device that is down.
//
// # What the host holds
//
//  1. net.ipv4.ip_forward=1. [Result].ForwardingEnabled says Apply switched
//     it on, for the caller to log once. Remove leaves it on: nothing records
//     whether it was on before sdn, and other software on the host (a
//     container runtime, a VPN) may need it; switching it off would cut
//     them all off at once. An operator who wants it off again sets it.
//  2. An on-link route for the service CIDR through the gateway device,
//     protocol 84 ([RouteProtocol]), so the host itself reaches VIPs
//     through OVS. datapath/host keeps its own routes (protocol 83, the
//     cluster CIDR) exactly, and link.SetProtoRoutes keeps ours: neither
//     removes the other's. The host ARPs for a VIP on the gateway device as
//     for a workload, so OVS must answer the gateway port's ARP for the
//     service CIDR too (the flows' router MAC, as for the cluster CIDR).
//  3. SNAT: a packet from the host's block (Subnet) but for NoSNATSources
//     (the local workloads whose network has snat off) to anything
//     outside the cluster and service
//     CIDRs that leaves by another device than the gateway is masqueraded:
//     its source becomes the outgoing device's address (the underlay
//     address on a plain host).
//  4. Node ports: TCP or UDP to UnderlayIP:NodePort, from outside
//     (prerouting) or from the host itself (output), is DNATed to VIP:Port
//     and routed into the gateway device, where OVS balances it as any VIP.
//     As it goes into the gateway it is also SNATed to GatewayIP. Without
//     that, an endpoint on another host would answer the client directly,
//     through its own host, from its own address: the client would drop an
//     answer from an address it never spoke to, and this host's conntrack
//     would never see the reply to undo its DNAT. With it, the answer comes
//     back to this host, which undoes both translations. The price: the
//     endpoint (and its ingress policy) sees the connection come from the
//     gateway address of the host the client reached (10.128.0.1, say), a
//     host-network source, not the client (docs/services.md, "Hosts and
//     the outside"). Keeping the client's address would need the answer
//     steered back to this host by other means (the endpoint's host would
//     have to know).
//     The nat rule matches node-port connections by their conntrack state
//     (DNATed, originally to UnderlayIP) rather than by a packet mark, so
//     no mark bit is taken from other users of the host.
//  5. Host ports: TCP or UDP to HostIP:HostPort (usually UnderlayIP), from
//     outside (prerouting) or from the host itself (output), is DNATed to
//     a local workload's address and port (map host_ports) and routed into
//     the gateway. No SNAT: the workload is on this host, so its answers
//     come back through it anyway, and its policy sees the client's own
//     address (docs/services.md, "Host ports"). The node-port SNAT above
//     matches only connections DNATed to a VIP, so host ports on the
//     underlay address are not caught by it. Workloads' packets to host
//     ports never get here: OVS translates them (datapath/flows).
//  6. Refusing VIPs OVS did not translate. A packet that comes out of the
//     gateway device to a VIP found no endpoint in OVS (no endpoints, or
//     an unknown port). It is answered, never routed back into the
//     gateway: TCP gets a reset, anything else ICMP port unreachable, so
//     the client sees "connection refused" at once, not a timeout. The
//     same holds for a node-port connection whose service has no endpoint:
//     it comes back out of the gateway after the DNAT and SNAT, and the
//     answer finds its way back to the client through conntrack.
//
// How 6 is done, and why, from what the tests saw:
//
//   - The refusals sit in a prerouting chain at raw priority, before
//     conntrack and routing. Refused in the forward chain (after routing),
//     the kernel first sent an ICMP redirect (in and out device the same),
//     which spent the per-destination ICMP rate-limit token, and the port
//     unreachable was suppressed (nstat IcmpOutRateLimitHost): UDP timed out.
//   - TCP resets are sent from there for every source. ICMP errors are sent
//     from there only for sources that are not the host's own: an ICMP
//     error to a local address, sent from prerouting, takes the VIP as its
//     source, and the kernel's output routing refuses a source that is not
//     local, so nothing was sent.
//   - Packets from the host's own address (the host's connections to a
//     VIP, and node-port connections, SNATed to GatewayIP) come back with
//     that address as source. The kernel drops those as martians unless
//     net.ipv4.conf.<gateway>.accept_local=1, which Apply sets (and Remove
//     resets); with it off, those two UDP cases timed out. They are marked
//     notrack and refused in the forward chain, where the kernel picks a
//     local source for the ICMP error.
//   - A looped packet gets no conntrack entry of its own (it is refused
//     before conntrack, or untracked), so the reset or ICMP error is
//     matched to the original connection and, for a node port, translated
//     back to the client's addresses.
//
// Strict reverse-path filtering (net.ipv4.conf.all.rp_filter=1, as many
// distributions set it) is on in the test host and changes none of this.
//
// # Why the nft program
//
// The table is written in nft's own language and handed to `nft -f -`,
// run in the target namespace through nsenter (no thread of ours changes
// namespace). The script is "table inet sdn; delete table inet sdn; table
// inet sdn { … }", which nft commits as one transaction: the table is
// replaced as a whole, atomically, or not at all. The rules read the same
// in the code, the golden files and `nft list table inet sdn`, which is
// what an operator debugging a host looks at. github.com/google/nftables
// (netlink, a netns fd) would spare the binary but spell every rule as a
// list of register-level expressions (payload offsets, cmp, lookup, nat
// with register numbers): several times the code, and nothing a reader
// could hold next to the listing. Existing NAT bindings live in conntrack,
// not in the table, and survive its replacement. The nftables package
// (nft) is in the Makefile's APT_PACKAGES; nsenter comes with util-linux,
// which every Debian has.
//
// Apply recognises a table that already matches by the digest of its
// rules, which the table's comment carries ("state 1286fa36…"); it reads
// the namespace's tables each time, so a table deleted by hand comes back.
// A hand edit that keeps the comment is not seen: delete the table (or
// call Remove) and the next Apply writes it afresh.
//
// # Hosts with Docker
//
// Docker sets the iptables FORWARD policy to DROP in the namespace it runs
// in. Netfilter lets a packet through only if every base chain at a hook
// accepts it, so Docker's FORWARD chain drops what this table lets pass:
// workloads would not reach the outside (in by the gateway device, out by
// the underlay) and node ports would not reach OVS (the other way round).
// On such a host, let the gateway device's traffic through in the chain
// Docker keeps for its users:
//
//	iptables -I DOCKER-USER -i sdn-gw0 -j ACCEPT
//	iptables -I DOCKER-USER -o sdn-gw0 -j ACCEPT
//
// The tests run in namespaces of their own and are not affected.
//
// Only IPv4: the cluster and service CIDRs are IPv4.
package hostnet
