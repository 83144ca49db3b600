package cluster

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/fsm"
)

// The server's side of the raft log's integrity (raftlog.go has the
// checks): it checks the whole log when it starts, stops when its FSM
// stops at an entry, and chooses the command envelope format it writes.
//
// Envelope format 2 carries a checksum (package command) that servers
// before it cannot read: they would stop at the first such entry. So a
// leader writes format 1 until it knows every server reads format 2: its
// log or its FSM holds a format 2 entry already (some leader knew it), or
// UseCommandFormat2 is called, which cluster/api does once every voter
// said so (or this server is the only one).

// CommandFormat is the envelope format this server writes when it leads.
func (s *Server) CommandFormat() command.Format {
	if s.format2.Load() {
		return command.Format2
	}
	return command.Format1
}

// UseCommandFormat2 makes this server write envelopes of format 2 from now
// on: every server of the cluster reads them.
func (s *Server) UseCommandFormat2() {
	if !s.format2.Swap(true) {
		s.log.Info("writing raft commands with checksums (envelope format 2) from now on: every server reads them")
	}
}

// Failed is closed when the server stops applying its raft log: an entry
// is damaged, or holds a command this release does not know. Failure says
// why (naming raft.db, the entry and what to do); sdnd exits with it.
func (s *Server) Failed() <-chan struct{} { return s.failed }

// Failure is why the server stopped applying its log, nil while it does.
func (s *Server) Failure() error {
	select {
	case <-s.failed:
		return s.failure
	default:
		return nil
	}
}

// fail records why the server stopped applying its log, once.
func (s *Server) fail(err error) {
	s.failOnce.Do(func() {
		s.failure = err
		s.log.Error("stopped applying the raft log", "error", err.Error())
		close(s.failed)
	})
}

// fsmHalted is the FSM's halt handler: the entry it stopped at, as the
// operator needs to hear it.
func (s *Server) fsmHalted(err error) {
	var ee *fsm.EntryError
	if errors.As(err, &ee) && !ee.Unknown {
		s.fail(&damagedLogError{path: raftLogFile(s.cfg.DataDir), index: ee.Index, err: entryDetail(ee), todo: s.rebuildAdvice()})
		return
	}
	s.fail(fmt.Errorf("raft log %s: %w; this server stopped applying it", raftLogFile(s.cfg.DataDir), err))
}

// entryDetail is what is wrong with an entry, without its index (the
// damagedLogError that carries it names it).
func entryDetail(ee *fsm.EntryError) error {
	if ee.Command >= 0 {
		return fmt.Errorf("command %d of its batch: %w", ee.Command, ee.Err)
	}
	return ee.Err
}

// rebuildAdvice is what to do about this server when its raft log is
// damaged.
func (s *Server) rebuildAdvice() string {
	addr := s.cfg.Advertise
	if s.trans != nil {
		addr = string(s.trans.LocalAddr())
	}
	if addr == "" {
		addr = "ADDRESS"
	}
	return rebuildAdvice(s.cfg.ID, s.cfg.DataDir, addr)
}

// checkLog checks the whole raft log before raft starts (checkRaftLog),
// and notes whether the cluster writes envelope format 2 already.
func (s *Server) checkLog(snaps raft.SnapshotStore) error {
	var snapIndex uint64
	if list, err := snaps.List(); err == nil && len(list) > 0 {
		snapIndex = list[0].Index
	}
	c, err := checkRaftLog(s.logs, raftLogFile(s.cfg.DataDir), s.rebuildAdvice(), snapIndex)
	if err != nil {
		return err
	}
	if c.format2 {
		s.format2.Store(true)
	}
	s.log.Info("raft log checked", "first_index", c.first, "last_index", c.last, "took", c.took.Round(1e6).String())
	return nil
}
