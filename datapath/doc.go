// Package datapath is everything that touches a host's network. Its
// subpackages are the pieces the agent's datapath is built from:
//
//   - ovs: Open vSwitch instances (one per namespace in the lab), bridges and
//     ports, and an atomic, generation-aware reconciler that diffs the flows
//     and groups really in OVS (our cookie) against the desired ones and
//     applies the difference in one bundle, never flushing;
//   - link: the one door to netlink: workload veth pairs into namespaces
//     (address, MAC, MTU, routes, tx checksum offload), namespaces, bridges;
//   - flows: the flow compiler, a pure function from desired state to flows;
//   - host: makes one host's OVS and kernel match a model.Desired; the agent
//     (node/agent) calls it with the complete desired state.
//
// The datapath takes its input from package model and imports nothing of the
// servers, the daemon or the agent (datapath/deps_test.go guards that).
package datapath
