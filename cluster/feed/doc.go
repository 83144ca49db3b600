// Package feed is a server's one reader of the change history for the
// filtered watch (docs/design.md, "Who receives what"). After each
// revision commits it reads the change record once, works out for each
// change which hosts need it (its audience) and encodes it once; every
// watcher of the server then assembles its events from those shared bytes,
// without a store transaction or an unmarshal of its own. It also keeps
// the state agents need encoded in memory, by host, so a full snapshot is
// references to shared bytes rather than a pass over the store.
//
// What a host receives: the cluster settings, every network, every node
// cut to what flows use (name, underlay address and MTU, subnet, gateway:
// liveness, drain, labels and bookkeeping reach no agent), its own
// workloads, the policies that select one of them, and the address groups
// whose nodes include it. A
// change that alters none of that for a host sends it nothing; a workload
// that leaves a host, and a policy or an address group a host no longer
// needs, reach it as bare deletes.
package feed
