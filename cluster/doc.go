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
// Liveness and realization reports live in the server's memory
// (Realization), never in raft.
package cluster
