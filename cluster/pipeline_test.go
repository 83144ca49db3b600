package cluster

import (
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// rejectingPeer is a raft voter played by hand on raft's TCP transport: it
// grants every vote, keeps a log index, and answers every rejectEvery-th
// AppendEntries that carries entries with Success=false, as a follower
// whose disk refused a write does (raft's handler answers so when
// StoreLogs fails).
type rejectingPeer struct {
	trans       *raft.NetworkTransport
	rejectEvery int
	appends     int
	last        uint64
	rejected    atomic.Int64
	done        chan struct{}
}

func newRejectingPeer(t *testing.T, rejectEvery int) *rejectingPeer {
	t.Helper()
	tr, err := raft.NewTCPTransport("127.0.0.1:0", nil, 3, 2*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	p := &rejectingPeer{trans: tr, rejectEvery: rejectEvery, done: make(chan struct{})}
	go p.serve()
	t.Cleanup(func() { close(p.done); tr.Close() })
	return p
}

func (p *rejectingPeer) serve() {
	for {
		select {
		case rpc := <-p.trans.Consumer():
			rpc.Respond(p.answer(rpc.Command), nil)
		case <-p.done:
			return
		}
	}
}

func (p *rejectingPeer) answer(cmd any) any {
	switch req := cmd.(type) {
	case *raft.RequestVoteRequest:
		return &raft.RequestVoteResponse{RPCHeader: req.RPCHeader, Term: req.Term, Granted: true}
	case *raft.RequestPreVoteRequest:
		return &raft.RequestPreVoteResponse{RPCHeader: req.RPCHeader, Term: req.Term, Granted: true}
	case *raft.AppendEntriesRequest:
		return p.appendEntries(req)
	}
	return fmt.Errorf("rejectingPeer: %T not served", cmd)
}

func (p *rejectingPeer) appendEntries(req *raft.AppendEntriesRequest) *raft.AppendEntriesResponse {
	resp := &raft.AppendEntriesResponse{RPCHeader: req.RPCHeader, Term: req.Term, LastLog: p.last}
	if req.PrevLogEntry > p.last {
		return resp // a gap: the leader steps back to LastLog+1
	}
	if len(req.Entries) > 0 {
		time.Sleep(time.Millisecond) // a disk's write: requests queue behind it
		p.appends++
		if p.appends%p.rejectEvery == 0 {
			p.rejected.Add(1)
			return resp
		}
		p.last = req.Entries[len(req.Entries)-1].Index
	}
	resp.LastLog, resp.Success = p.last, true
	return resp
}

// TestReplicationSurvivesRejectedAppends: a follower that rejects an
// AppendEntries now and then (a disk refusing a write) must go on being
// replicated to, and the leader must stop promptly. hashicorp/raft's
// pipelined replication deadlocks on such a rejection when its send loop
// picks one more send over the decoder's exit (the pipeline's channels
// are unbuffered with the transport's default MaxRPCsInFlight): the
// follower never gets another entry, and Shutdown waits for ever (seen
// in the Vagrant lab: stopping the leader's sdnd hung until systemd
// killed it). The server replicates without the pipeline.
func TestReplicationSurvivesRejectedAppends(t *testing.T) {
	peer := newRejectingPeer(t, 7)
	tr, err := raft.NewTCPTransport("127.0.0.1:0", nil, 3, 2*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	peers := []Peer{{ID: "s1", Address: string(tr.LocalAddr())}, {ID: "s2", Address: string(peer.trans.LocalAddr())}}
	s, err := NewServer(Config{DataDir: t.TempDir(), ID: "s1", Transport: tr, Peers: peers, Tune: fast,
		ApplyTimeout: 3 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			go s.Shutdown() // may never return: do not hold the test binary
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !s.IsLeader() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !s.IsLeader() {
		t.Fatal("s1 was not elected")
	}

	writeUntil(t, s, peer, 60)

	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.Shutdown() }()
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
		t.Logf("%d appends rejected; shutdown took %v", peer.rejected.Load(), time.Since(start).Round(time.Millisecond))
	case <-time.After(15 * time.Second):
		t.Fatalf("the leader's Shutdown has not returned in 15 s (%d appends rejected)", peer.rejected.Load())
	}
}

// writeUntil appends from 64 clients until the peer has rejected want
// appends: raft barriers, entries every server appends and applies, each
// client's next one as soon as its last committed, so that entries are in
// flight while the peer answers. Writes must go on committing (the peer's
// acknowledgement is the quorum's): 10 s without a commit fails the test.
func writeUntil(t *testing.T, s *Server, peer *rejectingPeer, want int64) {
	t.Helper()
	var committed atomic.Int64
	errs := make(chan error, 64)
	stop := make(chan struct{})
	defer close(stop)
	for c := 0; c < 64; c++ {
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := s.raft.Barrier(0).Error(); err != nil {
					errs <- fmt.Errorf("client %d: %w", c, err)
					return
				}
				committed.Add(1)
			}
		}()
	}
	last, lastAt := int64(0), time.Now()
	for peer.rejected.Load() < want {
		select {
		case err := <-errs:
			t.Fatal(err)
		case <-time.After(50 * time.Millisecond):
		}
		if n := committed.Load(); n != last {
			last, lastAt = n, time.Now()
		} else if time.Since(lastAt) > 10*time.Second {
			t.Fatalf("nothing committed for 10 s after %d writes and %d rejected appends: the leader stopped replicating to the follower", n, peer.rejected.Load())
		}
	}
	t.Logf("%d writes committed", committed.Load())
}
