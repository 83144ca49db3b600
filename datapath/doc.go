// Package datapath is everything that touches a host's network. Its
// subpackages are the pieces the agent's datapath is built from:
//
//   - ovs: Open vSwitch instances (one per namespace in the lab), bridges and
//     ports, and an atomic, generation-aware reconciler that diffs the flows
//     and groups really in OVS (our cookie) against the desired ones and
//     applies the difference in one bundle, never flushing;
//   - link: the one door to netlink: workload veth pairs into namespaces
//     (address, MAC, MTU, routes, tx checksum offload), namespaces, bridges.
//
// The flow compiler (desired state to flows, pure) and the Realizer that the
// agent (sdnd/agent) calls with the complete desired state come next.
package datapath
