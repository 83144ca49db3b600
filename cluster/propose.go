package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/fsm"
)

// ErrNotLeader is returned for writes (and linearizable reads) sent to a
// server that is not the leader. LeaderID and LeaderAddr are empty when no
// leader is known.
type ErrNotLeader struct {
	Self       string
	LeaderID   string
	LeaderAddr string
}

func (e *ErrNotLeader) Error() string {
	if e.LeaderAddr == "" {
		return "no raft leader is known (an election is in progress, or too few servers are up for a quorum); retry in a few seconds"
	}
	self := "this server"
	if e.Self != "" {
		self += " (" + e.Self + ")"
	}
	return fmt.Sprintf("%s is not the raft leader; the leader is %s at %s", self, e.LeaderID, e.LeaderAddr)
}

func (s *Server) notLeader() *ErrNotLeader {
	id, addr := s.Leader()
	if id == s.cfg.ID {
		// Raft still names this server while it steps down.
		id, addr = "", ""
	}
	return &ErrNotLeader{Self: s.cfg.ID, LeaderID: id, LeaderAddr: addr}
}

// Batch limits: how many commands, and how many bytes of them, one raft
// entry carries at most.
const (
	maxBatchCommands = 256
	maxBatchBytes    = 1 << 20
)

// Propose commits a command through raft and returns what applying it did.
// A refused command comes back as *Error with nothing changed.
//
// Concurrent proposals are committed together (group commit): while one
// raft entry is being committed, the proposals that arrive queue up, and
// the next entry carries all of them as one Batch command. One client sees
// the latency of one entry; many clients share entries, so throughput
// grows with them.
//
// A server with a disk alarm refuses the command before it reaches raft
// (DiskError, diskalarm.go).
func (s *Server) Propose(ctx context.Context, typ command.Type, msg proto.Message) (*fsm.Result, error) {
	if err := s.alarm.check(); err != nil {
		return nil, err
	}
	if s.raft.State() != raft.Leader {
		return nil, s.notLeader()
	}
	data, err := s.CommandFormat().Encode(typ, msg)
	if err != nil {
		return nil, err
	}
	return s.proposer.propose(ctx, typ, data)
}

// proposer gathers concurrent proposals into raft entries. One goroutine
// commits at a time; what queues meanwhile becomes the next entry.
type proposer struct {
	s       *Server
	mu      sync.Mutex
	queue   []*proposal
	running bool
	paused  bool // a restore is replacing the state: refuse new proposals

	// readyTerm is the term in which this server, leading, last saw an
	// entry of its own term applied (ReadBarrier).
	readyTerm atomic.Uint64
}

type proposal struct {
	ctx  context.Context
	typ  command.Type
	data []byte
	done chan outcome // buffered: the committer never blocks on it
	// abandoned: its caller was told the outcome is unknown (the state
	// file cannot be written); if it is still queued, it is not sent.
	abandoned atomic.Bool
}

type outcome struct {
	res *fsm.Result
	err error
}

func (p *proposer) propose(ctx context.Context, typ command.Type, data []byte) (*fsm.Result, error) {
	pr := &proposal{ctx: ctx, typ: typ, data: data, done: make(chan outcome, 1)}
	p.mu.Lock()
	if p.paused {
		p.mu.Unlock()
		return nil, fmt.Errorf("commit %s: %w", typ, ErrRestoreInProgress)
	}
	p.queue = append(p.queue, pr)
	if !p.running {
		p.running = true
		go p.run()
	}
	p.mu.Unlock()
	for {
		// The FSM may be stuck on a full disk: then the result would come
		// only once space returns, and the caller hears so now.
		changed := p.s.alarm.changed()
		if a, up := p.s.alarm.raisedFor(p.s.statePath()); up {
			pr.abandoned.Store(true)
			return nil, fmt.Errorf("commit %s: %w", typ, &DiskError{Server: p.s.cfg.ID, Alarm: a, Outcome: outcomeUnknown})
		}
		select {
		case o := <-pr.done:
			return o.res, o.err
		case <-ctx.Done():
			return nil, fmt.Errorf("commit %s: %w (it may still be committed)", typ, ctx.Err())
		case <-changed:
		}
	}
}

// ErrRestoreInProgress refuses writes while a snapshot restore replaces the
// state; they can be sent again once it is done.
var ErrRestoreInProgress = errors.New("a snapshot restore is replacing the cluster's state; retry when it is done")

// pause refuses new proposals and waits until those already queued are
// committed (or ctx ends, which resumes).
func (p *proposer) pause(ctx context.Context) error {
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
	for {
		p.mu.Lock()
		idle := !p.running
		p.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-ctx.Done():
			p.resume()
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

func (p *proposer) resume() {
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
}

// run commits queued proposals until none are left.
func (p *proposer) run() {
	for {
		batch := p.take()
		if len(batch) == 0 {
			return
		}
		p.commit(batch)
	}
}

// take removes the next entry's proposals from the queue, dropping those
// whose callers gave up before they were sent.
func (p *proposer) take() []*proposal {
	p.mu.Lock()
	defer p.mu.Unlock()
	var batch []*proposal
	size, n := 0, 0
	for _, pr := range p.queue {
		if pr.ctx.Err() != nil || pr.abandoned.Load() {
			n++
			continue
		}
		if len(batch) > 0 && (len(batch) == maxBatchCommands || size+len(pr.data) > maxBatchBytes) {
			break
		}
		batch = append(batch, pr)
		size += len(pr.data)
		n++
	}
	p.queue = p.queue[n:]
	if len(batch) == 0 {
		p.running = false
	}
	return batch
}

// commit sends one raft entry (the command itself, or a Batch of several)
// and hands each proposal its result.
func (p *proposer) commit(batch []*proposal) {
	s := p.s
	fail := func(err error) {
		for _, pr := range batch {
			pr.done <- outcome{err: fmt.Errorf("commit %s: %w", pr.typ, err)}
		}
	}
	if s.raft.State() != raft.Leader {
		nl := s.notLeader()
		for _, pr := range batch {
			pr.done <- outcome{err: nl}
		}
		return
	}
	data := batch[0].data
	if len(batch) > 1 {
		cmds := make([][]byte, len(batch))
		for i, pr := range batch {
			cmds[i] = pr.data
		}
		data = s.CommandFormat().EncodeBatch(cmds)
	}
	f := s.raft.Apply(data, s.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			nl := s.notLeader()
			for _, pr := range batch {
				pr.done <- outcome{err: nl}
			}
			return
		}
		if a, up := s.alarm.raisedFor(s.raftLogPath()); up && ioFailure(err) {
			// The leader could not append the entry to its log: it
			// is nowhere, and raft steps down.
			err = &DiskError{Server: s.cfg.ID, Alarm: a, Outcome: outcomeNotStored}
		}
		fail(err)
		return
	}
	var results []*fsm.Result
	switch r := f.Response().(type) {
	case *fsm.Result:
		results = []*fsm.Result{r}
	case []*fsm.Result:
		results = r
	case error:
		if errors.Is(r, fsm.ErrHalted) { // the server is stopping
			fail(r)
			return
		}
		// The FSM stopped at this entry (cluster/fsm, decode.go).
		fail(fmt.Errorf("%w; whether it took effect is unknown: this server stopped applying the log, ask another server", r))
		return
	}
	if len(results) != len(batch) {
		fail(fmt.Errorf("raft entry %d gave %d results for %d commands (was it already applied?)", f.Index(), len(results), len(batch)))
		return
	}
	for i, pr := range batch {
		res := results[i]
		if res == nil {
			pr.done <- outcome{err: fmt.Errorf("commit %s: no result from raft entry %d", pr.typ, f.Index())}
			continue
		}
		if res.Err != nil {
			pr.done <- outcome{res: res, err: res.Err}
			continue
		}
		pr.done <- outcome{res: res}
	}
}

// ReadBarrier makes a following read linearizable: it notes the commit
// index, confirms leadership with a quorum, and waits until the state has
// applied up to the noted index (raft's ReadIndex).
//
// A server whose state file cannot be written (a disk alarm) cannot apply
// up to the commit index, and refuses with a DiskError.
func (s *Server) ReadBarrier(ctx context.Context) error {
	if err := s.stateStuck(); err != nil {
		return err
	}
	if s.raft.State() != raft.Leader {
		return s.notLeader()
	}
	// A new leader learns how far the log is committed only when an entry
	// of its own term commits: until then its commit index may lag writes
	// the previous leader acknowledged, and a read would miss them. So once
	// per term, a barrier entry commits and applies first.
	if term := s.raft.CurrentTerm(); s.proposer.readyTerm.Load() != term {
		if err := s.await(ctx, s.raft.Barrier(s.cfg.ApplyTimeout)); err != nil {
			var de *DiskError
			if errors.As(err, &de) || ctx.Err() != nil {
				return err
			}
			if a, up := s.alarm.raisedFor(s.raftLogPath()); up && ioFailure(err) {
				return &DiskError{Server: s.cfg.ID, Alarm: a, Outcome: outcomeReadLog}
			}
			if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
				return s.notLeader()
			}
			return fmt.Errorf("read barrier: %w", err)
		}
		s.proposer.readyTerm.Store(term)
	}
	commit := s.raft.CommitIndex()
	if err := s.raft.VerifyLeader().Error(); err != nil {
		return s.notLeader()
	}
	for s.raft.AppliedIndex() < commit {
		if err := s.stateStuck(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// statePath and raftLogPath are the files the disk alarm watches.
func (s *Server) statePath() string   { return s.alarm.files[0] }
func (s *Server) raftLogPath() string { return s.alarm.files[1] }

// stateStuck returns a DiskError while the state file cannot be written:
// the FSM is stuck on a batch, so the state lags the log.
func (s *Server) stateStuck() error {
	if a, up := s.alarm.raisedFor(s.statePath()); up {
		return &DiskError{Server: s.cfg.ID, Alarm: a, Outcome: outcomeRead}
	}
	return nil
}

// await waits for a raft future the FSM answers (a barrier), giving up when
// ctx ends or the state file cannot be written (the FSM is stuck).
func (s *Server) await(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	for {
		changed := s.alarm.changed()
		if err := s.stateStuck(); err != nil {
			return err
		}
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// DiskAlarms lists this server's disk alarms (none when it can write).
func (s *Server) DiskAlarms() []Alarm { return s.alarm.Alarms() }

// NoLeaderError is what a call that needs the leader gets from a server
// that knows of none while it has a disk alarm: the alarm, which is the
// thing to fix (raft cannot append to a full log, nor stand for election
// without persisting its term). nil without an alarm.
func (s *Server) NoLeaderError() error {
	err := s.alarm.check()
	var de *DiskError
	if errors.As(err, &de) {
		de.Outcome = outcomeNoLeader
		return de
	}
	return nil
}
