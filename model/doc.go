// Package model is sdn's object model at the ground floor of the tree: what
// the servers store, the agents realize and the CLI shows, as rules that hold
// everywhere. It imports only the standard library and the API types
// (proto/sdn/v1), so the FSM, the datapath, the CNI plugin and the HCL
// decoder can all use it without linking each other (integration's
// TestImportGuards checks that).
//
// It holds:
//   - the object kinds as a type (Kind) and the key a workload is stored
//     and watched under (WorkloadKey);
//   - the identifier scheme: VNID 0 for the admin network, HostVNID for the
//     hosts' own traffic, a workload's MAC derived from its IP (MACForIP);
//   - the rules for names, labels and addresses (ValidateName,
//     ParseIPv4Prefix, ...) and the cluster defaults;
//   - a host's desired state at one revision (Desired), which the agent
//     follows and the datapath realizes;
//   - the one renderer of "the whole state as changes" (State.Changes),
//     used by the servers' watch snapshots and by the agent's saved state;
//   - the API's message sizes (MaxRequestBytes, MaxResponseBytes), and an
//     apply request's source ranges taken off (ClearRanges) and put back
//     on refusals (AttachRanges).
//
// Everything here is pure: no I/O, no clock, deterministic order.
package model
