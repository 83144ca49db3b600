package join

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/cluster"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// world is a set of fake servers that reach each other by address. A
// bootstrap gives every voter raft state, as the new leader's replication
// would.
type world struct {
	mu           sync.Mutex
	servers      map[string]*fakeServer // by address
	bootstraps   [][]cluster.Peer
	joins        []string
	bootstrapped map[string]bool // by id
}

type fakeServer struct {
	w      *world
	id     string
	addr   string
	former *Former
	logs   *strings.Builder
}

func (s *fakeServer) ID() string   { return s.id }
func (s *fakeServer) Addr() string { return s.addr }
func (s *fakeServer) HasState() bool {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	return s.w.bootstrapped[s.id]
}
func (s *fakeServer) Bootstrap(peers []cluster.Peer) error {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	s.w.bootstraps = append(s.w.bootstraps, peers)
	for _, p := range peers {
		s.w.bootstrapped[p.ID] = true
	}
	return nil
}

// Hello is what cluster/api answers.
func (w *world) Hello(_ context.Context, addr string, req *sdnv1.HelloRequest) (*sdnv1.HelloResponse, error) {
	w.mu.Lock()
	s := w.servers[addr]
	w.mu.Unlock()
	if s == nil {
		return nil, status.Error(codes.Unavailable, "connection refused")
	}
	if req.Expect > 0 {
		var ps []cluster.Peer
		for _, p := range append([]*sdnv1.Peer{req.Self}, req.Known...) {
			ps = append(ps, cluster.Peer{ID: p.Id, Address: p.Address})
		}
		s.former.Learn(ps)
	}
	expect, known := s.former.Learn(nil)
	r := &sdnv1.HelloResponse{Self: &sdnv1.Peer{Id: s.id, Address: s.addr}, Expect: uint32(expect), HasState: s.HasState()}
	for _, p := range known {
		r.Known = append(r.Known, &sdnv1.Peer{Id: p.ID, Address: p.Address})
	}
	return r, nil
}

func (w *world) Join(_ context.Context, addr string, req *sdnv1.JoinRequest) (*sdnv1.JoinResponse, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.joins = append(w.joins, req.Id+" via "+addr)
	w.bootstrapped[req.Id] = true
	return &sdnv1.JoinResponse{Id: req.Id, Added: true}, nil
}

func newWorld() *world {
	return &world{servers: map[string]*fakeServer{}, bootstrapped: map[string]bool{}}
}

// add makes a server that expects n and joins the given addresses.
func (w *world) add(id string, expect int, join ...string) *fakeServer {
	s := &fakeServer{w: w, id: id, addr: id + ":7420", logs: &strings.Builder{}}
	s.former = New(Config{Expect: expect, Join: join, Local: s, Dialer: w, Interval: 5 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(syncWriter{w: s.logs, mu: &w.mu}, nil))})
	w.mu.Lock()
	w.servers[s.addr] = s
	w.mu.Unlock()
	return s
}

type syncWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (s syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// run runs every server's former for at most d.
func (w *world) run(t *testing.T, d time.Duration, servers ...*fakeServer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() { defer wg.Done(); s.former.Run(ctx) }()
	}
	wg.Wait()
}

func TestExpectThreeFormsOneCluster(t *testing.T) {
	for round := 0; round < 20; round++ {
		w := newWorld()
		// A chain of --join addresses is enough: servers learn the rest.
		s3 := w.add("s3", 3, "s2:7420")
		s1 := w.add("s1", 3, "s3:7420")
		s2 := w.add("s2", 3, "s1:7420")
		w.run(t, 5*time.Second, s3, s1, s2)
		if len(w.bootstraps) != 1 {
			t.Fatalf("%d bootstraps: %v", len(w.bootstraps), w.bootstraps)
		}
		if got := fmt.Sprint(w.bootstraps[0]); got != "[{s1 s1:7420} {s2 s2:7420} {s3 s3:7420}]" {
			t.Fatalf("bootstrapped with %s", got)
		}
		for _, s := range []*fakeServer{s1, s2, s3} {
			if !s.HasState() {
				t.Fatalf("%s is not in the cluster", s.id)
			}
		}
	}
}

func TestTooManyServersDoNotBootstrap(t *testing.T) {
	w := newWorld()
	// Every server is given every address, so each hears of all four in
	// its first round. (Through a chain of joins, three of them could
	// agree on each other before the fourth said hello, and rightly
	// bootstrap: the protocol refuses only what it has heard of. The
	// test used to start them that way and failed 55 of 200 runs.)
	all := []string{"s1:7420", "s2:7420", "s3:7420", "s4:7420"}
	var ss []*fakeServer
	for i := 1; i <= 4; i++ {
		ss = append(ss, w.add(fmt.Sprintf("s%d", i), 3, all...))
	}
	w.run(t, 300*time.Millisecond, ss...)
	if len(w.bootstraps) != 0 {
		t.Fatalf("bootstrapped with 4 servers expecting 3: %v", w.bootstraps)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !strings.Contains(ss[0].logs.String(), "4 servers found") || !strings.Contains(ss[0].logs.String(), "bootstrap-expect is 3") {
		t.Fatalf("s1 did not say why:\n%s", ss[0].logs)
	}
}

func TestExpectMismatchDoesNotBootstrap(t *testing.T) {
	w := newWorld()
	a := w.add("s1", 2, "s2:7420")
	b := w.add("s2", 3, "s1:7420")
	w.run(t, 300*time.Millisecond, a, b)
	if len(w.bootstraps) != 0 {
		t.Fatalf("bootstrapped: %v", w.bootstraps)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !strings.Contains(a.logs.String(), "expects the same number") {
		t.Fatalf("s1 did not say why:\n%s", a.logs)
	}
}

// TestJoinExisting: a server that only joins (no --bootstrap-expect) asks
// the cluster to add it, and is not counted among the forming servers.
func TestJoinExisting(t *testing.T) {
	w := newWorld()
	s1 := w.add("s1", 1)
	w.run(t, time.Second, s1)
	if len(w.bootstraps) != 1 {
		t.Fatalf("a single expected server did not bootstrap: %v", w.bootstraps)
	}
	s4 := w.add("s4", 0, "s1:7420")
	w.run(t, time.Second, s4)
	if !s4.HasState() || len(w.joins) != 1 || w.joins[0] != "s4 via s1:7420" {
		t.Fatalf("joins %v", w.joins)
	}
	if _, known := s1.former.Learn(nil); len(known) != 1 {
		t.Fatalf("s1 counts the joiner as a forming server: %v", known)
	}
}

func TestDecide(t *testing.T) {
	self := cluster.Peer{ID: "s1", Address: "a:1"}
	known := []cluster.Peer{self, {ID: "s2", Address: "b:1"}, {ID: "s3", Address: "c:1"}}
	agree := func(id, addr string) *sdnv1.HelloResponse {
		r := &sdnv1.HelloResponse{Self: &sdnv1.Peer{Id: id, Address: addr}, Expect: 3}
		for _, p := range known {
			r.Known = append(r.Known, &sdnv1.Peer{Id: p.ID, Address: p.Address})
		}
		return r
	}
	all := map[string]*sdnv1.HelloResponse{"b:1": agree("s2", "b:1"), "c:1": agree("s3", "c:1")}
	if d := decide(self, 3, known, all); !d.bootstrap {
		t.Fatalf("all agree: %+v", d)
	}
	if d := decide(cluster.Peer{ID: "s2", Address: "b:1"}, 3, known, all); d.bootstrap || !strings.Contains(d.waiting, "s1 (the lowest id) bootstraps") {
		t.Fatalf("not the lowest: %+v", d)
	}
	partial := map[string]*sdnv1.HelloResponse{"b:1": agree("s2", "b:1")}
	if d := decide(self, 3, known, partial); d.bootstrap || !strings.Contains(d.waiting, "waiting for s3") {
		t.Fatalf("s3 silent: %+v", d)
	}
	disagree := agree("s3", "c:1")
	disagree.Known = disagree.Known[:2]
	if d := decide(self, 3, known, map[string]*sdnv1.HelloResponse{"b:1": agree("s2", "b:1"), "c:1": disagree}); d.bootstrap {
		t.Fatalf("s3 knows another set: %+v", d)
	}
	if d := decide(self, 3, known[:2], all); d.bootstrap || !strings.Contains(d.waiting, "2 of 3") {
		t.Fatalf("two known: %+v", d)
	}
}
