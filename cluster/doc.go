// Package cluster is sdn's raft server: hashicorp/raft, with its log and
// stable store in raft-boltdb, replicating the state machine of package fsm
// (the desired state in bbolt, allocations made inside apply). What every
// replica must compute identically lives in package fsm, which knows
// nothing of raft, clocks or randomness; this package runs it under raft
// (raftFSM adapts it: log entries in, snapshots of the state file out) and
// holds what is one server's own: its raft node, the leader's decisions
// and what it keeps in memory.
//
// A cluster has 3 or 5 voters (Config.Bootstrap for one, Config.Peers for
// a static list, package join for servers that find each other); the
// membership methods add, remove and hand leadership over. Propose commits
// concurrent proposals together (group commit: a Batch command carries
// them in one raft entry); ReadBarrier makes a leader's read linearizable.
// Package transport puts raft and the API on one address; package api
// serves the gRPC API on a Server.
//
// The raft log is fsynced per batch; the state file is not (recover.go:
// a file a power loss may have torn is set aside and rebuilt from the
// newest raft snapshot and the log). Raft snapshots copy the bbolt file and
// compact the log (snapshot.go has the thresholds). SaveState and
// RestoreState back `sdnctl snapshot`: a linearizable image of the state,
// and its installation on every server through Raft.Restore with the
// revision moved past every watcher's. The Hub tells watchers of each new
// revision the state machine reaches.
//
// A full disk is an alarm, not a crash (diskalarm.go; raft's stores are
// watched through logstore.go): writes are refused naming the device and
// the file, the FSM retries a batch its state file could not take, a
// leader with the alarm hands leadership over, and it all clears by itself
// when a write succeeds again.
//
// Heartbeats and realization reports live in the leader's memory
// (Liveness, Realization), never in raft. RunLiveness, on the leader,
// turns silence into raft commands only at transitions: a host quiet for
// the down-after time is marked down once (SetNodeLiveness, the leader's
// time inside the command), marked up once when it heartbeats again, and
// released (ReleaseNode: its subnet and workload addresses freed) when it
// stays down past the cluster's node_release_after. A new leader starts
// every host's clock at its election. The leader also gives a cluster
// without an id a random one (InitCluster): time and randomness enter the
// state only inside commands.
package cluster
