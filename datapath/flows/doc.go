// Package flows is the flow compiler: a pure function from one host's
// desired state (Host) to the OpenFlow flows of its integration bridge. No
// I/O, no clock, deterministic order; golden files under testdata/ pin the
// output (go test ./datapath/flows -update rewrites them).
//
// The pipeline is declared as named stages; table numbers come from the
// declaration order, never from literals (see Stages):
//
//	classify   which port the packet came from. A workload's packet must
//	           carry its own MAC and IP (ARP: sender MAC and address too),
//	           else it is dropped (anti-spoofing); its VNID goes to reg0.
//	           Tunnel packets take reg0 from tun_id; the host's gateway port
//	           is HostVNID (2^24-1), never a network's.
//	arp        ARP requests for local workloads and the gateway are answered
//	           from the model; the host's ARP for other hosts' workloads is
//	           answered with the virtual router MAC. Nothing floods.
//	conntrack  IP goes through conntrack (zone 1) with nat: established
//	           service connections are translated both ways (requests to
//	           their endpoint, replies back from the VIP) before anything
//	           looks at them. Replies to a hairpin connection are un-SNATed
//	           in zone 2 first (see service.go).
//	services   host ports and node ports on this host's underlay address
//	           are translated for workloads (hostport.go);
//	           a new connection to a VIP:port goes to the port's select
//	           group (hash of the 5-tuple), one bucket per endpoint serving
//	           it: ct(commit, zone 1, nat(dst=endpoint:port)) and on to
//	           egress, so policy sees the endpoint's address. A port
//	           without endpoints has no flow: its packets go on as any
//	           other, out through the gateway, where the host rejects them.
//	           Everything else goes to egress. Ports with more than
//	           MaxBuckets endpoints: a group of sub-groups weighted by size.
//	service-affinity  flows learned for services with session affinity
//	           (client, VIP, port → endpoint in reg4/reg5; cookie
//	           AffinityCookie, which the reconciler does not own, idle
//	           timeout = the affinity timeout); resubmitted to, a miss
//	           returns empty.
//	service-lb affinity services: the learned endpoint's DNAT, else the
//	           group, whose buckets continue at service-learn.
//	service-learn  affinity services: learn the DNATed connection's
//	           endpoint (OVS 3.1 performs no learn inside a group bucket).
//	egress     replies and related packets of committed connections pass
//	           (to forward), invalid ones drop; then the cluster-wide tier
//	           of egress rules for packets from local workloads (in_port):
//	           allow → forward, deny → drop, pass → egress-policy.
//	egress-policy  the network tier (allow → forward, deny → drop), then
//	           the isolation drop of isolated workloads; else forward.
//	forward    by destination: a local workload (reg1 = its VNID, reg2 = its
//	           port, Ethernet rewritten), the gateway, another host's block
//	           (tun_id = source VNID, tun_dst = that host, straight to
//	           output), another host's underlay address (not a reply)
//	           the same way, this host's underlay address from the tunnel
//	           to the gateway (hostport.go), unknown cluster addresses
//	           dropped, the rest to the gateway (the host routes it).
//	ingress    replies and related pass (to output); the host's own
//	           traffic (gateway port, gateway address) passes unless
//	           host_traffic = "policy"; then the cluster-wide tier of
//	           ingress rules for packets to local workloads (reg2).
//	ingress-policy  the network tier, then the isolation drop; else on.
//	isolation  the baseline, for what no policy decided: hosts reach and
//	           are reached by all; flat passes all; multitenant passes when
//	           either VNID is 0 (the admin network) or both are equal;
//	           policy passes equal VNIDs only.
//	output     new connections are committed to conntrack (DNATed ones
//	           were, by their bucket); out to reg2. Hairpin: a service
//	           connection that lands on its own client is SNATed to
//	           HairpinIP in zone 2 and sent out the port it came in on.
//
// Policy (policy.go, parts.go): each rule realized on the host is an
// OpenFlow conjunction (split when named ports resolve to different
// numbers): dimension 1 the local workloads it applies to, 2 the peer
// addresses (address-group members, CIDRs minus excepts), 3 the ports
// (ranges as value/mask). A dimension the rule does not constrain is left
// out; a rule with neither peers nor ports is plain flows per workload.
// Every level (policy.LevelOf: tier, priority, action) has its own
// priority, in policy.Compare order; rules of one level share dimension
// flows (one flow, several conjunction actions). Two rules of one level
// may both match a packet: OVS then picks either, and since a level has
// one action only the counters can tell. Cookies carry a rule id
// (Compiled.Rules), on the flows that decide (conj_id, plain, isolation),
// each split into ct_state=+new and -new so counters give connections
// and packets. Ids are hashes of stable keys, so one policy's change moves
// no other policy's flows.
//
// Services (service.go): group ids are hashes of "service/proto/port"
// within GroupRange (collisions move to the next free id, in key order),
// so one endpoint's change rewrites one group and no flow (for an
// affinity service, also its endpoint's service-lb flow).
//
// Flows grow with local workloads, networks present locally, remote
// hosts, rules, peer addresses and ports; never with products of them
// (TestPolicyScale: 200 workloads × 200 peers in one rule, 804 flows).
package flows
