package cluster

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestLivenessLoopOnThreeServers runs RunLiveness on three in-memory
// servers, with hosts heartbeating to whichever leads: a silent host is
// marked down with exactly one revision and stays so; a leadership
// transfer marks nobody down (nor the down host up); heartbeats bring it
// back with one revision; and with node_release_after set short, a host
// that stays down is released.
func TestLivenessLoopOnThreeServers(t *testing.T) {
	const downAfter = time.Second
	mc := newMemCluster(t, 3)
	ctx := ctxT(t)
	lives := make([]*Liveness, len(mc.servers))
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	for i, s := range mc.servers {
		lives[i] = NewLiveness(downAfter, nil)
		go s.RunLiveness(lctx, lives[i])
	}
	leaderLive := func() (*Server, *Liveness) {
		for i, s := range mc.servers {
			if s.IsLeader() {
				return s, lives[i]
			}
		}
		return nil, nil
	}
	l := mc.leader()
	for _, r := range []*sdnv1.RegisterNodeRequest{register("a", "198.18.0.1", 1500), register("b", "198.18.0.2", 1500)} {
		if _, err := l.Propose(ctx, command.RegisterNode, r); err != nil {
			t.Fatal(err)
		}
	}
	// Agents: a always heartbeats; b when beatB is set.
	var beatB atomic.Bool
	go func() {
		for lctx.Err() == nil {
			if _, live := leaderLive(); live != nil {
				live.Heartbeat("a")
				if beatB.Load() {
					live.Heartbeat("b")
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	node := func(name string) (*sdnv1.Node, uint64) {
		s, _ := leaderLive()
		if s == nil {
			s = mc.servers[0]
		}
		var n *sdnv1.Node
		var rev uint64
		s.FSM().View(func(tx *state.Tx) error { n, _ = tx.Node(name); rev = tx.Meta().Revision; return nil })
		return n, rev
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	// quiet checks that nothing is written for a while (two down-after
	// periods): the state stays at rev.
	quiet := func(what string, rev uint64) {
		t.Helper()
		time.Sleep(2 * downAfter)
		if _, now := node("a"); now != rev {
			t.Fatalf("%s: revision moved from %d to %d", what, rev, now)
		}
	}

	waitFor("b marked down", func() bool { n, _ := node("b"); return n.GetDownSinceUnixMs() != 0 })
	b, rev := node("b")
	if a, _ := node("a"); a.DownSinceUnixMs != 0 {
		t.Fatalf("heartbeating host a marked down: %v", a)
	}
	if b.ModRevision != rev || b.Subnet == "" {
		t.Fatalf("b = %v at revision %d; want it changed last, with its subnet", b, rev)
	}
	quiet("after b went down", rev)

	old := l.ID()
	if _, err := l.TransferLeadership(ctx, ""); err != nil {
		t.Fatal(err)
	}
	waitFor("a new leader", func() bool { s, _ := leaderLive(); return s != nil && s.ID() != old })
	quiet("after a leader change", rev)
	if n, _ := node("b"); n.DownSinceUnixMs != b.DownSinceUnixMs {
		t.Fatalf("the new leader changed b: %v", n)
	}

	beatB.Store(true)
	waitFor("b up again", func() bool { n, _ := node("b"); return n.GetDownSinceUnixMs() == 0 })
	if n, now := node("b"); now != rev+1 || n.Subnet != b.Subnet {
		t.Fatalf("b back up as %v at revision %d; want revision %d and its subnet %s", n, now, rev+1, b.Subnet)
	}

	beatB.Store(false)
	waitFor("b down again", func() bool { n, _ := node("b"); return n.GetDownSinceUnixMs() != 0 })
	s, _ := leaderLive()
	if _, err := s.Propose(ctx, command.ApplyConfig, &sdnv1.ApplyRequest{Cluster: &sdnv1.ClusterSettings{NodeReleaseAfterSeconds: 1}}); err != nil {
		t.Fatal(err)
	}
	waitFor("b released", func() bool { n, _ := node("b"); return n == nil })
	if a, _ := node("a"); a == nil || a.DownSinceUnixMs != 0 {
		t.Fatalf("a after b's release: %v", a)
	}
}

// TestLeaderNamesTheCluster: the leader's tick gives a cluster without an
// id a random one, the same on every server; a second proposal (another
// leader racing it) changes nothing.
func TestLeaderNamesTheCluster(t *testing.T) {
	mc := newMemCluster(t, 3)
	ctx := ctxT(t)
	l := mc.leader()
	l.livenessTick(ctx, NewLiveness(time.Hour, time.Now))
	var first string
	l.FSM().View(func(tx *state.Tx) error { first = tx.ClusterID(); return nil })
	if len(first) < 16 {
		t.Fatalf("cluster id %q after the leader's tick", first)
	}
	l.initClusterID(ctx)
	mc.waitApplied(l.FSM().AppliedIndex())
	for _, s := range mc.servers {
		var id string
		s.FSM().View(func(tx *state.Tx) error { id = tx.ClusterID(); return nil })
		if id != first {
			t.Errorf("%s: cluster id %q, want %q", s.ID(), id, first)
		}
	}
}
