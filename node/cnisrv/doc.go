// Package cnisrv is the agent's local service for the CNI plugin
// (sdnv1.AgentService), served on a root-only unix socket on every host.
//
// CNIAdd creates the workload's veth pair (the namespace end down and
// without an address), then plugs the host end into the integration
// bridge while it attaches the workload on the servers
// (WorkloadService.Attach, with the CNI container id and interface as its
// owner, so a retried ADD gets the same workload back), gives the
// namespace end the address, MAC, gateway and MTU the servers gave it
// (datapath/link), and waits (bounded) until this host's agent has
// realized the attach revision. The port is announced before the attach
// is sent (Datapath.BeginPlug), and a realize of a state naming the
// workload waits for its plug, so the agent's one realize of the revision
// (the watch path's, which adds the port's flows without the full
// realize) serves the ADD, and traffic flows when ADD returns. A failure
// undoes what was done: the veth and the port (unless they were an
// earlier ADD's), and the attachment if it was made, so a failed ADD
// leaves nothing behind.
//
// CNIDel detaches by owner, unplugs and deletes the veth; each step
// succeeds when there is nothing to remove. CNICheck compares the workload's
// interface with the workload in the agent's desired state and names every
// difference.
//
// CNIGC releases every attachment of this host in a network that a CNI
// ADD made and that the runtime's list of valid attachments lacks, as DEL
// would (gc.go).
//
// The socket's gRPC server uses PeerCredentials: each connection carries
// the caller's pid (SO_PEERCRED), and a request with netns_fd is served
// through /proc/<pid>/fd/<netns_fd>, so a namespace path that exists only
// in the runtime's mount namespace works (peercred.go). A request with
// name_per_host (a Podman container's name) is named "<name>-<host>".
// The mac, port mappings and bandwidth of a request go into the Attach.
//
// gRPC health: sdn.v1.AgentService is SERVING once the host is
// registered; ServersHealthService is answered by asking the servers'
// health at that moment (the plugin's STATUS: 50, then 51).
//
// Operations on one container id are serialized; different containers
// proceed in parallel.
package cnisrv
