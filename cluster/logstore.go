package cluster

import (
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// watchedStore is raft's log and stable store (raft.db) with its writes
// watched by the disk alarm (diskalarm.go): a write the operating system
// refuses (a full disk) raises the alarm for raft.db, and the next write
// that succeeds clears it. Raft itself steps down when it cannot append to
// its log, and cannot stand for election without persisting its term, so
// without the alarm all the API could say is that no leader is known.
type watchedStore struct {
	*raftboltdb.BoltStore
	path  string
	alarm *diskAlarm
}

var (
	_ raft.LogStore    = watchedStore{}
	_ raft.StableStore = watchedStore{}
)

func (s watchedStore) note(err error) error {
	switch {
	case err == nil:
		s.alarm.written(s.path)
	case ioFailure(err):
		s.alarm.failed(s.path, err)
	}
	return err
}

// StoreLog implements raft.LogStore.
func (s watchedStore) StoreLog(l *raft.Log) error { return s.note(s.BoltStore.StoreLog(l)) }

// StoreLogs implements raft.LogStore.
func (s watchedStore) StoreLogs(logs []*raft.Log) error { return s.note(s.BoltStore.StoreLogs(logs)) }

// DeleteRange implements raft.LogStore (log compaction after a snapshot).
func (s watchedStore) DeleteRange(lo, hi uint64) error {
	return s.note(s.BoltStore.DeleteRange(lo, hi))
}

// Set implements raft.StableStore.
func (s watchedStore) Set(k, v []byte) error { return s.note(s.BoltStore.Set(k, v)) }

// SetUint64 implements raft.StableStore (the current term, the vote).
func (s watchedStore) SetUint64(k []byte, v uint64) error {
	return s.note(s.BoltStore.SetUint64(k, v))
}
