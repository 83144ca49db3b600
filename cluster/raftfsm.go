package cluster

import (
	"fmt"
	"io"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/fsm"
)

// raftFSM is the state machine (package fsm) as raft sees it: raft.FSM and
// raft.BatchingFSM. It only converts: raft's log entries into fsm.Entry,
// the FSM's snapshot of its state file into a raft.FSMSnapshot. Package
// fsm knows nothing of raft.
//
// It notes a command entry of envelope format 2 in format2: some leader
// found every server able to read that format, so this one writes it too
// when it leads (integrity.go).
type raftFSM struct {
	f       *fsm.FSM
	format2 *atomic.Bool
}

var _ raft.BatchingFSM = raftFSM{}

// entry is the FSM's view of a raft log entry. raft hands a batching FSM
// its command and configuration entries; only commands change the state,
// every entry moves the applied index.
func entry(l *raft.Log) fsm.Entry {
	return fsm.Entry{Index: l.Index, Command: l.Type == raft.LogCommand, Data: l.Data}
}

// Apply implements raft.FSM for a single entry.
func (r raftFSM) Apply(l *raft.Log) interface{} { return r.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch implements raft.BatchingFSM (fsm.FSM.ApplyBatch: one bbolt
// transaction for the batch and its applied index).
func (r raftFSM) ApplyBatch(logs []*raft.Log) []interface{} {
	entries := make([]fsm.Entry, len(logs))
	for i, l := range logs {
		entries[i] = entry(l)
		if r.format2 != nil && l.Type == raft.LogCommand && command.FormatOf(l.Data) == command.Format2 {
			r.format2.Store(true)
		}
	}
	return r.f.ApplyBatch(entries)
}

// Snapshot implements raft.FSM: the state file, synced now, is copied when
// raft calls Persist (fsm.FSM.Snapshot says why that is safe).
func (r raftFSM) Snapshot() (raft.FSMSnapshot, error) {
	s, err := r.f.Snapshot()
	if err != nil {
		return nil, err
	}
	return fsmSnapshot{s}, nil
}

// Restore implements raft.FSM: the state file is replaced by the snapshot.
func (r raftFSM) Restore(rc io.ReadCloser) error { return r.f.Restore(rc) }

type fsmSnapshot struct{ s *fsm.Snapshot }

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.s.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("write state snapshot: %w", err)
	}
	return sink.Close()
}

func (fsmSnapshot) Release() {}
