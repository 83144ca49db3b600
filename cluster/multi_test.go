package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/fsm"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// fast shortens raft's timeouts for in-process clusters.
func fast(c *raft.Config) {
	c.HeartbeatTimeout = 500 * time.Millisecond
	c.ElectionTimeout = 500 * time.Millisecond
	c.LeaderLeaseTimeout = 250 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
}

// memCluster is n servers on raft's in-memory transport, every pair
// connected.
type memCluster struct {
	t       testing.TB
	servers []*Server
	trans   []*raft.InmemTransport
	tune    func(*raft.Config) // default fast
}

func (mc *memCluster) newTransport() *raft.InmemTransport {
	_, tr := raft.NewInmemTransport("")
	for _, o := range mc.trans {
		tr.Connect(o.LocalAddr(), o)
		o.Connect(tr.LocalAddr(), tr)
	}
	mc.trans = append(mc.trans, tr)
	return tr
}

// start starts a server on a fresh transport, with cfg's bootstrap fields.
func (mc *memCluster) start(id string, tr *raft.InmemTransport, cfg Config) *Server {
	mc.t.Helper()
	cfg.DataDir, cfg.ID, cfg.Transport, cfg.Tune = mc.t.TempDir(), id, tr, mc.tune
	if cfg.Tune == nil {
		cfg.Tune = fast
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := NewServer(cfg)
	if err != nil {
		mc.t.Fatal(err)
	}
	mc.t.Cleanup(func() { s.Shutdown() })
	mc.servers = append(mc.servers, s)
	return s
}

// newMemCluster bootstraps n voters from the same static peer list, as
// `sdnd --peers` does.
func newMemCluster(t *testing.T, n int) *memCluster { return newMemClusterTB(t, n, nil) }

func newMemClusterTB(t testing.TB, n int, tune func(*raft.Config)) *memCluster {
	t.Helper()
	mc := &memCluster{t: t, tune: tune}
	var peers []Peer
	for i := 0; i < n; i++ {
		tr := mc.newTransport()
		peers = append(peers, Peer{ID: fmt.Sprintf("s%d", i+1), Address: string(tr.LocalAddr())})
	}
	for i := 0; i < n; i++ {
		mc.start(peers[i].ID, mc.trans[i], Config{Peers: peers})
	}
	return mc
}

// leader waits for a leader all live servers agree on.
func (mc *memCluster) leader() *Server {
	mc.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range mc.servers {
			if s.IsLeader() {
				return s
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	mc.t.Fatal("no leader elected")
	return nil
}

func (mc *memCluster) followers() []*Server {
	var out []*Server
	l := mc.leader()
	for _, s := range mc.servers {
		if s != l {
			out = append(out, s)
		}
	}
	return out
}

// waitApplied waits until every server applied index.
func (mc *memCluster) waitApplied(index uint64) {
	mc.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range mc.servers {
		for s.FSM().AppliedIndex() < index {
			if time.Now().After(deadline) {
				mc.t.Fatalf("%s applied %d, want %d", s.ID(), s.FSM().AppliedIndex(), index)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestPeersFormOneCluster: three servers bootstrapped from the same peer
// list elect one leader, replicate writes, and followers refuse writes
// naming the leader.
func TestPeersFormOneCluster(t *testing.T) {
	mc := newMemCluster(t, 3)
	l := mc.leader()
	res, err := l.Propose(ctxT(t), command.RegisterNode, register("h1", "198.18.0.1", 1500))
	if err != nil {
		t.Fatal(err)
	}
	mc.waitApplied(l.FSM().AppliedIndex())
	for _, s := range mc.servers {
		var n *sdnv1.Node
		s.FSM().View(func(tx *state.Tx) error { n, _ = tx.Node("h1"); return nil })
		if n == nil || n.Subnet != res.Node.Subnet {
			t.Errorf("%s holds %v, want subnet %s", s.ID(), n, res.Node.Subnet)
		}
		ms, err := s.Members()
		if err != nil || len(ms) != 3 {
			t.Errorf("%s: members %v, %v", s.ID(), ms, err)
		}
	}
	f := mc.followers()[0]
	_, err = f.Propose(ctxT(t), command.RegisterNode, register("h2", "198.18.0.2", 1500))
	var nl *ErrNotLeader
	if !errors.As(err, &nl) || nl.LeaderID != l.ID() || nl.LeaderAddr != l.Addr() {
		t.Fatalf("follower's write: %v, want ErrNotLeader naming %s at %s", err, l.ID(), l.Addr())
	}
	if err := f.ReadBarrier(ctxT(t)); !errors.As(err, &nl) {
		t.Fatalf("follower's read barrier: %v", err)
	}
	if err := l.ReadBarrier(ctxT(t)); err != nil {
		t.Fatalf("leader's read barrier: %v", err)
	}
}

func TestCheckPeers(t *testing.T) {
	for _, tt := range []struct {
		peers []Peer
		want  string
	}{
		{[]Peer{{"s1", "a:1"}, {"s1", "b:1"}}, "listed twice"},
		{[]Peer{{"s1", "a:1"}, {"s2", "a:1"}}, "share the address a:1"},
		{[]Peer{{"s2", "b:1"}, {"s3", "c:1"}}, "not in the peer list"},
		{[]Peer{{"s1", "x:1"}, {"s2", "b:1"}}, "gives this server (s1) the address x:1, but it listens for raft at a:1"},
		{[]Peer{{"", "x:1"}}, "want id=host:port"},
	} {
		err := checkPeers("s1", "a:1", tt.peers)
		if err == nil || !contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.peers, err, tt.want)
		}
	}
	if err := checkPeers("s1", "a:1", []Peer{{"s1", "a:1"}, {"s2", "b:1"}}); err != nil {
		t.Error(err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestMembership: add a voter (idempotently), refuse conflicting ids and
// addresses, remove, refuse unknown ids and the last voter, transfer
// leadership.
func TestMembership(t *testing.T) {
	mc := &memCluster{t: t}
	tr1 := mc.newTransport()
	s1 := mc.start("s1", tr1, Config{Bootstrap: true})
	if mc.leader() != s1 {
		t.Fatal("s1 does not lead")
	}
	ctx := ctxT(t)
	var e *fsm.Error
	if err := s1.RemoveServer(ctx, "s1"); !errors.As(err, &e) || e.Code != fsm.CodeConflict || !contains(err.Error(), "last voter") {
		t.Fatalf("removing the last voter: %v", err)
	}
	if _, err := s1.TransferLeadership(ctx, ""); !errors.As(err, &e) || !contains(err.Error(), "single voter") {
		t.Fatalf("transfer with one voter: %v", err)
	}
	tr2 := mc.newTransport()
	s2 := mc.start("s2", tr2, Config{})
	if added, err := s1.AddVoter(ctx, "s2", s2.Addr()); err != nil || !added {
		t.Fatalf("add s2: %v %v", added, err)
	}
	if added, err := s1.AddVoter(ctx, "s2", s2.Addr()); err != nil || added {
		t.Fatalf("add s2 again: %v %v, want a no-op", added, err)
	}
	if _, err := s1.AddVoter(ctx, "s2", "elsewhere:1"); !errors.As(err, &e) || !contains(err.Error(), "remove it first") {
		t.Fatalf("s2 at another address: %v", err)
	}
	if _, err := s1.AddVoter(ctx, "s9", s2.Addr()); !errors.As(err, &e) || !contains(err.Error(), "is member s2's") {
		t.Fatalf("another id at s2's address: %v", err)
	}
	tr3 := mc.newTransport()
	s3 := mc.start("s3", tr3, Config{})
	if _, err := s1.AddVoter(ctx, "s3", s3.Addr()); err != nil {
		t.Fatal(err)
	}
	// A joined server receives the log.
	res, err := s1.Propose(ctx, command.RegisterNode, register("h1", "198.18.0.1", 1500))
	if err != nil {
		t.Fatal(err)
	}
	mc.waitApplied(s1.FSM().AppliedIndex())
	if !s3.HasState() {
		t.Fatal("s3 has no raft state after joining")
	}
	_ = res
	if _, err := s2.AddVoter(ctx, "s4", "x:1"); !errors.As(err, new(*ErrNotLeader)) {
		t.Fatalf("AddVoter on a follower: %v", err)
	}
	if err := s1.RemoveServer(ctx, "nope"); !errors.As(err, &e) || e.Code != fsm.CodeNotFound || !contains(err.Error(), "members are s1, s2, s3") {
		t.Fatalf("removing an unknown server: %v", err)
	}
	if _, err := s1.TransferLeadership(ctx, "s1"); !errors.As(err, &e) || !contains(err.Error(), "leader already") {
		t.Fatalf("transfer to self: %v", err)
	}
	if _, err := s1.TransferLeadership(ctx, "nope"); !errors.As(err, &e) || e.Code != fsm.CodeNotFound {
		t.Fatalf("transfer to unknown: %v", err)
	}
	to, err := s1.TransferLeadership(ctx, "s3")
	if err != nil || to != "s3" {
		t.Fatalf("transfer to s3: %q %v", to, err)
	}
	if mc.leader() != s3 {
		t.Fatal("s3 does not lead after the transfer")
	}
	if err := s3.RemoveServer(ctx, "s1"); err != nil {
		t.Fatalf("remove s1: %v", err)
	}
	ms, _ := s3.Members()
	if len(ms) != 2 || ms[0].ID != "s2" || ms[1].ID != "s3" {
		t.Fatalf("members after removing s1: %v", ms)
	}
	if s3.Removed() || s2.Removed() {
		t.Fatal("a member says it was removed")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !s1.Removed() {
		if time.Now().After(deadline) {
			t.Fatal("s1 does not know it was removed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestConcurrentProposalsShareEntries: many concurrent writers are
// committed in far fewer raft entries than commands (group commit), and
// every writer gets its own result. The figures are logged; no timing is
// asserted.
func TestConcurrentProposalsShareEntries(t *testing.T) {
	// raft's default timeouts: under load (and -race) on a small machine
	// shorter ones let leadership move mid-test.
	mc := newMemClusterTB(t, 3, func(*raft.Config) {})
	l := mc.leader()
	ctx := ctxT(t)
	var hosts atomic.Uint32 // the default cluster CIDR has room for 512
	for _, clients := range []int{1, 8, 32} {
		e0, c0 := l.FSM().Counts()
		const each = 10
		var wg sync.WaitGroup
		subnets := make(chan string, clients*each)
		errs := make(chan error, clients*each)
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					n := fmt.Sprintf("c%d-%d-%d", clients, c, i)
					k := hosts.Add(1)
					ip := netip.AddrFrom4([4]byte{198, 19, byte(k / 250), byte(k%250 + 1)})
					res, err := l.Propose(ctx, command.RegisterNode, register(n, ip.String(), 1500))
					if err != nil {
						errs <- err
						return
					}
					if res.Node.GetName() != n {
						errs <- fmt.Errorf("asked for %s, got the result of %s", n, res.Node.GetName())
						return
					}
					subnets <- res.Node.Subnet
				}
			}()
		}
		wg.Wait()
		close(errs)
		close(subnets)
		for err := range errs {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for s := range subnets {
			if seen[s] {
				t.Fatalf("subnet %s given twice", s)
			}
			seen[s] = true
		}
		e1, c1 := l.FSM().Counts()
		entries, cmds := e1-e0, c1-c0
		t.Logf("%d clients x %d writes: %d commands in %d raft entries (%.2f entries per command)", clients, each, cmds, entries, float64(entries)/float64(cmds))
		if cmds != uint64(clients*each) {
			t.Fatalf("%d commands applied, want %d", cmds, clients*each)
		}
		if clients >= 8 && entries >= cmds {
			t.Errorf("%d concurrent clients: %d entries for %d commands; concurrent writes are not batched", clients, entries, cmds)
		}
	}
	mc.waitApplied(l.FSM().AppliedIndex())
	var want []string
	l.FSM().View(func(tx *state.Tx) error { want = tx.Dump(); return nil })
	for _, s := range mc.followers() {
		var got []string
		s.FSM().View(func(tx *state.Tx) error { got = tx.Dump(); return nil })
		if d := diffLines(want, got); d != "" {
			t.Fatalf("%s differs from the leader:\n%s", s.ID(), d)
		}
	}
}
