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
//	conntrack  IP goes through conntrack (zone 1); invalid is dropped.
//	egress     the source's egress policy (the policy issue fills it; today
//	           everything passes).
//	forward    by destination: a local workload (reg1 = its VNID, reg2 = its
//	           port, Ethernet rewritten), the gateway, another host's block
//	           (tun_id = source VNID, tun_dst = that host, straight to
//	           output), unknown cluster addresses dropped, the rest to the
//	           gateway (the host routes it).
//	ingress    isolation: hosts reach and are reached by all; flat passes
//	           all; multitenant passes when either VNID is 0 (the admin
//	           network) or both are equal; policy passes equal VNIDs only
//	           (policies will decide the rest).
//	output     new connections are committed to conntrack; out to reg2.
//
// Flows grow with local workloads, networks present locally and remote
// hosts; never with products of workloads.
package flows
