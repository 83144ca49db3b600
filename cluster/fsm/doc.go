// Package fsm is sdn's replicated state machine: raft log entries in, the
// desired state in bbolt (package state) out. It allocates host subnets,
// VNIDs and workload addresses inside apply (package alloc), so every
// replica that applies the same log holds the same state and the same
// allocators. The raft server (package cluster) runs it; this package does
// not import raft: the server converts raft's log entries into Entry values
// and wraps Snapshot for raft, and hears of new revisions as the FSM's
// Publisher.
//
// # Determinism
//
// Every replica applies every entry, and they must agree bit for bit, so an
// apply depends on nothing but the stored state and the command:
//
//   - No time: a command that needs one carries it (SetNodeLiveness holds
//     the leader's clock reading), and the FSM never reads the clock.
//   - No map order: iterate sorted keys (slices.Sorted(maps.Keys(m))), so
//     allocations, change records and violations come in the same order.
//   - No randomness: what must be random (the cluster id) is drawn by the
//     leader before it proposes, and travels in the command.
//   - Nothing from outside: no environment, files, network or
//     configuration of the process; a newer server's command that this
//     one does not know is skipped only if it is marked ignorable, and
//     stops the server otherwise.
//
// Rules change between releases, but an entry is applied by the rules of
// the format it was written in: checks added with command envelope format
// 2 (exec.strict) apply to format 2 entries only, so replaying an older
// release's log (a state file rebuilt from raft) gives the state the
// servers reached when they first applied it. A new check that refuses
// what an older release accepted goes behind such a gate.
//
// A batch of entries is applied in one bbolt transaction together with the
// new applied index (FSM.ApplyBatch), so the index never disagrees with the
// data, and entries at or below it (replays after a restart) are skipped. A
// batch that cannot be written (a full disk) is never skipped, or the
// replica would diverge: the FSM tries it again for as long as its
// WriteWatcher says (the raft server's disk alarm, docs/design.md "A full
// disk"), and without one it panics, and a restart replays from the log.
//
// Every command entry of a batch is decoded and checked before any is
// applied (decode.go): the envelope's checksum (package command, format
// 2), each command of a Batch, each payload. A damaged entry, or one of a
// command type this server does not know and may not skip, stops the FSM
// (an *EntryError, FSM.Halted, the handler set with FSM.OnHalt): nothing
// of that batch is applied and nothing after it, so the state stays whole
// at the entry before, and the raft server stops with a message. It is
// never refused like a bad request nor dropped: every other replica
// applies it.
//
// # Commands
//
// Each command type (package command) has exactly one handler, in the
// handlers table of fsm.go. A handler runs on an exec (exec.go), which
// carries the transaction, the allocations with their undo log (alloctxn.go)
// and the violations found. It checks everything first, then allocates,
// then writes through exec's put and delete methods (which stamp revisions
// and record the changes watchers resume from), and ends with exec.finish;
// a refused command (exec.fail, or refuse) changes nothing, the allocators
// included. FSM.DryRun runs the same handlers without writing, for plans.
//
// A new command: add its type to package command (with IgnoreUnknownFlag
// if older servers may skip it), write its handler in the file of the
// objects it changes (nodes.go, workloads.go, settings.go, revoke.go; a
// new file for a new kind of object), add it to the handlers table, and
// test it here, with the random command generator of alloc_fsm_test.go if
// it allocates or frees anything.
package fsm
