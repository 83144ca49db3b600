// Package cluster is sdn's control-plane core: a raft server
// (hashicorp/raft, log and stable store in raft-boltdb) whose state machine
// keeps the desired state in bbolt (package state) and allocates host
// subnets, VNIDs and workload addresses inside Apply (package alloc), so
// every replica agrees.
//
// Commands travel as a stable envelope (package command) and are handled by
// exactly one handler each. A handler checks everything first, then
// allocates (with an undo log), then writes, so a refused command changes
// nothing; the same handlers serve dry runs (plans) by allocating and
// undoing. Applies are deterministic: no clock, no randomness, sorted
// iteration. Each changing command bumps the revision and records its
// changes, which watches resume from.
//
// A cluster has 3 or 5 voters (Config.Bootstrap for one, Config.Peers for
// a static list, package join for servers that find each other); the
// membership methods add, remove and hand leadership over. Propose commits
// concurrent proposals together (group commit: a Batch command carries
// them in one raft entry); ReadBarrier makes a leader's read linearizable.
// Package transport puts raft and the API on one address.
//
// The raft log is fsynced per batch; the state file is not (recover.go:
// a file a power loss may have torn is set aside and rebuilt from the
// newest raft snapshot and the log). Raft snapshots copy the bbolt file and
// compact the log (snapshot.go has the thresholds). SaveState and RestoreState back `sdnctl snapshot`: a
// linearizable image of the state, and its installation on every server
// through Raft.Restore with the revision moved past every watcher's.
//
// Heartbeats and realization reports live in the leader's memory
// (Liveness, Realization), never in raft. RunLiveness, on the leader,
// turns silence into raft commands only at transitions: a host quiet for
// the down-after time is marked down once (SetNodeLiveness, the leader's
// time inside the command), marked up once when it heartbeats again, and
// released (ReleaseNode: its subnet and workload addresses freed) when it
// stays down past the cluster's node_release_after. A new leader starts
// every host's clock at its election. Drained hosts (DrainNode) refuse new
// workloads.
package cluster
