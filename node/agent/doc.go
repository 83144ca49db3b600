// Package agent is the host side of sdn's control plane: it registers the
// host with the servers, follows the Watch stream into a local copy of the
// host's desired state (persisted, so a restarted agent keeps its host right
// while no server answers), hands each complete state to a Realizer (the
// datapath), and reports the revision realized. It heartbeats to the
// leader every HeartbeatInterval (the leader keeps heartbeats in memory and
// marks a silent host down); a host the servers no longer know registers
// again.
//
// The Realizer interface is deliberately one method: the whole desired state
// in, the host made to match it.
package agent
