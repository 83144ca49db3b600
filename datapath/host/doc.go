// Package host is the agent's Realizer: it makes one host's Open vSwitch
// and kernel match the desired state (an model.Desired).
//
// [Datapath.Realize] takes the whole desired state and, reading what OVS
// and the kernel hold first, changes only what differs:
//
//  1. the integration bridge br-int (fail_mode=secure, OpenFlow 1.3-1.5,
//     the configured datapath type);
//  2. the tunnel endpoint: with the kernel datapath, the underlay
//     interface's IPv4 address; with the userspace (netdev) datapath, that
//     address moved onto br-phy (below);
//  3. the flow-based VXLAN port sdn-tun0 (OpenFlow port 1; remote_ip and
//     key set by flows, local_ip the endpoint, dst_port the cluster's);
//  4. the gateway port sdn-gw0 (internal, OpenFlow port 2) in the host
//     namespace: the gateway's MAC (model.MACForIP) and the cluster
//     MTU set through OVSDB (mac, mtu_request, so they survive an OVS
//     restart), up, gateway/prefix of the host's subnet, and an on-link
//     route for the whole cluster CIDR (proto 83), through which the host
//     reaches workloads on every host;
//  5. one port per local workload (desired workloads of this node, not
//     pending, with a host veth: [HostIfname]) whose veth exists; br-int
//     ports named like workload veths that are no longer desired go;
//  6. with the userspace datapath, OVS's tunnel neighbour cache: the MAC
//     of the next hop towards every remote host (below);
//  7. the compiled flows (flows.Compile), reconciled on br-int in one
//     atomic bundle stamped with the generation.
//
// [Datapath.Apply] is the same, returning what changed ([Result]); a
// second call with the same state changes nothing. On error the flows
// installed before stay. [NextGeneration] bumps a persisted generation at
// each agent start: the new generation's flows replace the old in place
// (an OpenFlow add of the same table, priority and match), so a restart
// deletes no flow and drops no packet (TestRestartKeepsTraffic).
//
// [Datapath.PlugWorkload] and [Datapath.UnplugWorkload] are for CNI ADD and
// DEL: ADD plugs the veth before the workload's flows exist, and Realize
// leaves such a port alone for a grace period while the workload travels
// through the watch.
//
// Policy: desired.go gives each local workload the rules
// policy.Applicable orders for it and hands the compiler the address
// groups of Desired.AddressGroups. [Datapath.Trace] runs ofproto/trace on
// br-int (the conntrack recirculation resumed as a new connection) and
// names each step in our words from the stage of its table and the rule in
// its cookie; [Datapath.RuleCounters] sums the statistics of the deciding
// policy flows per policy, direction, rule and action.
//
// Services (service.go): every service with a VIP, with its endpoints
// (Desired.ServiceEndpoints: the port each serves per service port), goes
// to the compiler; its select groups go to OVS in the same bundle as the
// flows, in the owned range flows.GroupRange. After a reconcile that
// removed an endpoint from a UDP service port, its zone-1 conntrack
// entries for that VIP:port are flushed (listed by dpctl/dump-conntrack,
// each flushed by its whole original tuple: OVS 3.1's netdev conntrack
// refuses a NATed entry by its reply tuple), so the client's next datagram
// picks a current endpoint. Only removals this process saw are flushed:
// after an agent restart, entries to an endpoint removed while it was down
// age out (UDP: 30 s idle in OVS's userspace conntrack).
//
// # The userspace datapath: what was learned here (OVS 3.1)
//
// Internal ports (sdn-gw0, and each bridge's own port) are tap devices in
// the namespace ovs-vswitchd runs in, created down and with "persist on"
// (they outlive the daemon). So the host namespace must be the one OVS runs
// in ([New] checks), and Realize brings the gateway tap up itself.
//
// Userspace tunneling: OVS encapsulates and routes VXLAN itself, and must
// find the tunnel endpoint address on one of its netdev bridges. br-phy
// (datapath_type=netdev, fail_mode=secure, other_config:hwaddr = the
// underlay interface's MAC, one flow priority=0,actions=NORMAL with cookie
// category 1) gets the underlay interface as a port, and the underlay
// address (with routes via a gateway through the interface) moves onto
// br-phy's tap. OVS learns routes from the kernel (`ovs-appctl
// ovs/route/show` lists "198.18.0.0/24 dev br-phy SRC 198.18.0.1") and the
// MAC of a tunnel destination by ARP through br-phy (`tnl/arp/show`:
// "198.18.0.2 … br-phy"); it also snoops ARP on br-int, harmlessly. An
// encapsulated packet leaves through br-phy's NORMAL flow; an arriving one
// is decapsulated when NORMAL sends it to br-phy's own port.
//
// The netdev datapath reads a system port through a packet socket, which
// leaves the kernel its own copy of every frame. On the underlay interface
// the kernel answered pings to the (moved) address a second time (three
// replies per ping between two hosts); on a workload's host veth
// it answered the workload's ARP for the gateway with the veth's MAC before
// the flows could, and the workload's packets to the gateway then reached
// the host twice ("DUP!" in ping). Realize therefore sets, through
// link.SetNetSysctl, rp_filter=1 and arp_ignore=8 on the underlay
// interface (the address is reached through br-phy now, so strict
// reverse-path filtering drops the kernel's copy; a loose
// net.ipv4.conf.all.rp_filter=2 would override that, and is warned about),
// and arp_ignore=8 and disable_ipv6=1 on workload host veths. The kernel
// datapath takes frames before the kernel stack sees them and needs none of
// this.
//
// TCP through the userspace datapath needs tx checksum offload off on the
// workload's veth end (link.WorkloadIface.TxChecksumOff); ICMP and UDP
// pass without it.
//
// # Tunnel neighbours (userspace datapath)
//
// OVS takes the MAC of a tunnel packet's next hop from its own tunnel
// neighbour cache (`ovs-appctl tnl/arp/show`), not from the kernel's. A
// packet to a next hop missing there is dropped while OVS sends an ARP
// request (the kernel would queue it), so a connection to a host not
// talked to before lost its first packet: in a lab of four fresh hosts,
// the first UDP datagram between each of the six pairs got no echo, six
// out of six (TestFirstPacketToNewHost with the step below switched off).
// And OVS forgets an entry not used for `tnl/neigh/aging` seconds (900 by
// default in OVS 3.1; `tnl/arp/set` makes the same kind of entry as
// snooping, with the same aging: OVS 3.1 has no static entries), after
// which the first packet to an idle host was lost again.
//
// So Realize (before the flows) fills the cache. For the next hop towards
// each remote host (its underlay address, or the gateway the kernel routes
// it through), br-phy gets a "managed" kernel neighbour entry
// (link.KeepNeighbor; NTF_EXT_MANAGED, Linux 5.16 and later): the kernel
// ARPs for it at once, through br-phy, and from then on probes it whenever
// it goes stale (about every 30 s; unicast) and keeps retrying one that
// does not answer. OVS snoops the replies on br-phy, which fills its cache
// and refreshes its entries, and Realize copies every resolved MAC that
// OVS still lacks or holds differently into it (`tnl/arp/set`). In the lab
// the kernel's answer came back in under a millisecond, before Realize
// looked; Realize waits at most a second, and only for next hops the
// kernel had no entry for: one that does not answer is logged and left to
// the kernel (its answer, when it comes, is snooped). Managed entries on
// br-phy that are no longer a next hop are deleted (br-phy's managed
// entries are taken to be sdn's). A second Realize changes nothing.
//
// Snooped probes do not keep every entry fresh: the kernel does not probe
// a neighbour that upper-layer traffic keeps confirmed (TCP
// acknowledgements), and with the host talking TCP to a peer every second,
// OVS's entry for that peer expired at its aging without one ARP on the
// wire. Hosts running sdn servers talk like that (a raft leader heartbeats
// its followers over TCP several times a second). So the first Apply also
// starts a refresher ([Datapath.Close] stops it): every third of
// `tnl/neigh/aging` (5 minutes by default) it rewrites every next hop's
// entry in OVS (the kernel's MAC if just confirmed, else the one OVS
// holds), which restarts its aging, and asks the kernel again about next
// hops it has not resolved. That costs one ovs-appctl run per remote host
// per pass. With OVS's aging at 2 s, entries outlive 5 s of idleness
// (TestTunnelNeighborsOutliveAging); without the refresher they did not.
//
// Limits: OVS 3.1 can flush its whole cache but not delete one entry, so
// entries of hosts that left age out by themselves (harmless). Next hops
// come from the kernel's route lookup (`ip route get`); OVS 3.1 mirrors the
// main routing table, so policy routing could make the two differ. On a
// kernel without managed entries (one warning says so), next hops are
// resolved at each Realize and refresher pass only. Failing to fill the
// cache does not fail Realize: it is logged, the flows go in, and OVS
// falls back to resolving on the first packet.
//
// # Not done
//
// Host veths left behind by workloads that no longer exist are not
// deleted here (CNI DEL does). Workload IPv6, services, policies and SNAT
// to the outside are the compiler's and later work.
package host
