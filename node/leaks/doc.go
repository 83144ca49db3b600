// Package leaks is every agent's leak loop: it releases what no longer
// exists on its host and removes what nothing owns, finding leaks by the
// host end of each workload's veth.
//
// When a workload's network namespace is destroyed, the kernel deletes its
// veth pair; when the runtime never calls DEL, or DEL failed while the agent
// was down, the workload stays attached on the servers and holds its
// address. Every Period (and once as soon as the agent has its state) a
// Loop compares this host's workloads (the agent's desired state) with the
// host's workload veths (link.HostVethName: "sdn" and 11 hex digits) and
// the integration bridge's workload ports:
//
//   - a workload of this host whose host veth is gone is released: Detach
//     by owner (container id and interface) on the servers, and its OVS port
//     removed. The per-container lock of the CNI service is held meanwhile
//     (and the veth looked for again under it), so an ADD or DEL in
//     progress is never raced; without a lock the veth must have been
//     missing for Grace.
//   - a workload veth or port that no workload of this host owns is
//     removed once it has been seen without an owner for Grace (an ADD
//     makes the veth before the workload reaches the agent's state); a port
//     whose veth is gone goes at once (nothing can still be making it).
//
// Workloads of the Docker driver (ORIGIN_KIND_DOCKER) are never released
// here: Docker removes a stopped container's veth and keeps its endpoint
// until DeleteEndpoint, so a missing veth is normal for them; their veths
// still count as owned.
//
// Each release is logged with its reason and counted. The same passes
// serve the IPAMService (HostLeaks for `sdnctl ipam check`,
// ReleaseHostLeaks for `sdnctl ipam release`), which the agent serves on
// its datapath service's listener.
package leaks
