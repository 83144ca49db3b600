package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/cluster/api"
	"github.com/sdn-dev/sdn/integration/lab"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestLinearizability records a concurrent history of writes, allocations
// and linearizable reads made through the real gRPC API of three
// `sdnd --server` processes (each in its own namespace on the lab
// underlay) while a seeded schedule of faults runs: SIGKILL and restart of
// a server, the leader or a follower, and a server cut off from the others
// by iptables DROP in its namespace, then healed. Porcupine checks the
// history, key by key (linmodel_test.go); every server's own copy of the
// state must end identical, and no snapshot read during the history, nor
// the final state, may give one IP to two workloads.
//
// SDN_LIN_SEED=N replays a schedule (the test logs the seed it drew). On a
// violation, porcupine's visualization of the history is written under
// $SDN_TEST_ARTIFACTS (or a temporary directory) and its path printed.
func TestLinearizability(t *testing.T) {
	needPartitions(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	ll := upLinLab(t, ctx, fmt.Sprintf("lz%d", os.Getpid()%100000), 3, binaries(t))
	artifacts := linArtifactDir(t, ll)
	lc := newLinClients(ll, 4, 4)
	lc.setup(t, ctx)
	t.Logf("lab and 3 servers up, %d registers and %d workload keys created (%s)", len(lc.regKeys), len(lc.wlKeys), time.Since(start).Round(time.Millisecond))

	seed := linSeed(t)
	const window = 20 * time.Second
	sched := linSchedule(seed, window)
	var desc []string
	for _, f := range sched {
		desc = append(desc, f.String())
	}
	t.Logf("fault schedule, seed %d (SDN_LIN_SEED=%d replays it): %s", seed, seed, strings.Join(desc, "; "))

	h := lc.h
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	const clients = 6
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lc.client(cctx, c, rand.New(rand.NewPCG(seed, uint64(c))))
		}()
	}
	time.Sleep(time.Second) // some history before the first fault
	ferr := ll.runFaults(ctx, h, sched, t.Logf)
	// Everything healed and up: a last stretch without faults, so the
	// history ends with every key read through a working cluster.
	time.Sleep(1500 * time.Millisecond)
	stop()
	wg.Wait()
	if ferr != nil {
		t.Fatalf("fault schedule: %v", ferr)
	}
	if err := lc.err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("history recorded in %s (%d calls never sent, retried elsewhere)", time.Duration(h.now()).Round(time.Millisecond), lc.unsent.Load())

	ops, stats := h.operations()
	t.Logf("history: %s; %d completed operations were called while a fault was on", stats, ll.duringFaults(ops))
	res, took, viz := linCheck(t, lc.model(), ops, 30*time.Second, artifacts, "linearizability")
	t.Logf("porcupine: %s in %s", res, took.Round(time.Millisecond))
	switch res {
	case porcupine.Illegal:
		t.Errorf("the history is not linearizable (seed %d); porcupine's visualization: %s", seed, viz)
	case porcupine.Unknown:
		t.Errorf("porcupine did not finish checking the history within 30 s (seed %d); visualization: %s", seed, viz)
	}
	for _, k := range append(append([]string{}, lc.regKeys...), lc.wlKeys...) {
		if stats.perKey[k] < 20 {
			t.Errorf("key %s has only %d operations in the history; the check says little about it", k, stats.perKey[k])
		}
	}
	if stats.kinds[linAttach] == 0 || stats.kinds[linDetach] == 0 || stats.kinds[linPut] == 0 || stats.kinds[linGet] == 0 || stats.kinds[linRead] == 0 {
		t.Errorf("the history lacks a kind of operation: %s", stats)
	}

	// Every server's own state ends identical, and no IP is held twice
	// there or in any snapshot read during the history.
	dumps := sameDumps(t, ctx, ll.conns[1:])
	lc.checkIPs(dumps[0].workloads, "the final state")
	if d := lc.dupIPs(); len(d) > 0 {
		t.Errorf("IPs given to two workloads at once: %s", strings.Join(d, "; "))
	}
	t.Logf("servers identical at revision %d; %d snapshot reads held no IP twice; total %s", dumps[0].revision, lc.snapshots.Load(), time.Since(start).Round(time.Millisecond))
}

// TestLinearizabilityCatchesStaleFollowerReads shows the check is not
// vacuous: with sdnd's test-only switch that lets followers answer
// linearizable reads from their own state (api.UnsafeFollowerReadsEnv, in
// an sdnd built with the tag sdn_unsafe_reads: unsafeReadsBinaries), a
// follower is cut off, a write goes through the leader, and the follower,
// asked next, answers from its stale copy. Porcupine must call that
// history illegal, on every run.
func TestLinearizabilityCatchesStaleFollowerReads(t *testing.T) {
	needPartitions(t)
	// Only an sdnd built with the tag has the switch. Each server reads
	// the variable once at start, inheriting it from this process.
	bin := unsafeReadsBinaries(t)
	t.Setenv(api.UnsafeFollowerReadsEnv, "1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	ll := upLinLab(t, ctx, fmt.Sprintf("lb%d", os.Getpid()%100000), 3, bin)
	artifacts := linArtifactDir(t, ll)
	for k := 1; k <= ll.n; k++ {
		if b, _ := os.ReadFile(ll.l.ServerLog(k)); !strings.Contains(string(b), "UNSAFE, FOR TESTS ONLY") {
			t.Fatalf("s%d does not warn that its reads are unsafe; its log:\n%s", k, tailString(string(b), 20))
		}
	}
	lc := newLinClients(ll, 1, 0)
	lc.setup(t, ctx)
	key := lc.regKeys[0]
	lead := ll.waitLeader(ctx, 30*time.Second)
	follower := lead%ll.n + 1
	// The follower has applied the initial value.
	waitFor(t, 10*time.Second, fmt.Sprintf("s%d to apply %s's creation", follower, key), func() bool {
		r, err := sdnv1.NewConfigServiceClient(ll.conns[follower]).List(ctx, &sdnv1.ListRequest{Kind: "networks", Stale: true})
		return err == nil && len(r.Networks) > 0
	})
	t.Logf("lab up; s%d leads, s%d is the follower to cut off (%s)", lead, follower, time.Since(start).Round(time.Millisecond))

	h := lc.h
	c := h.newClient()
	must := func(k int, in linInput) linOutput {
		t.Helper()
		out, err := lc.op(ctx, c, k, in)
		if err != nil {
			t.Fatalf("%s(%s) through s%d: %v", in.Kind, in.Key, k, err)
		}
		return out
	}
	must(follower, linInput{Key: key, Kind: linGet})
	if err := ll.partition(follower); err != nil {
		t.Fatal(err)
	}
	must(lead, linInput{Key: key, Kind: linPut, Value: "1"})
	must(lead, linInput{Key: key, Kind: linGet})
	stale := must(follower, linInput{Key: key, Kind: linGet})
	if err := ll.heal(follower); err != nil {
		t.Fatal(err)
	}
	if stale.Value != "0" {
		t.Fatalf("the cut-off follower s%d read %q, not the stale \"0\": is the unsafe switch on?", follower, stale.Value)
	}
	ops, stats := h.operations()
	res, took, viz := linCheck(t, lc.model(), ops, 10*time.Second, artifacts, "stale-follower-reads")
	t.Logf("history: %s; porcupine: %s in %s", stats, res, took.Round(time.Millisecond))
	if res != porcupine.Illegal {
		t.Fatalf("porcupine says %s for a history with a stale read from a cut-off follower; want Illegal", res)
	}
	t.Logf("porcupine found the stale read (as it must); its visualization: %s (total %s)", viz, time.Since(start).Round(time.Millisecond))
}

// linArtifactDir is where visualizations go when $SDN_TEST_ARTIFACTS is
// not set: the test's own temporary directory, moved to one that outlives
// the test if it fails (so the path printed can be opened), with the
// servers' logs beside them.
func linArtifactDir(t *testing.T, ll *linLab) string {
	dir := t.TempDir()
	// Registered after the lab's: runs before the lab goes down.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		keep := os.Getenv("SDN_TEST_ARTIFACTS")
		if keep == "" {
			var err error
			if keep, err = os.MkdirTemp("", "sdn-linearizability-"); err != nil {
				t.Logf("keep the artifacts: %v", err)
				return
			}
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			_ = os.Rename(filepath.Join(dir, e.Name()), filepath.Join(keep, e.Name()))
		}
		for k := 1; k <= ll.n; k++ {
			if b, err := os.ReadFile(ll.l.ServerLog(k)); err == nil {
				_ = os.WriteFile(filepath.Join(keep, fmt.Sprintf("%s-s%d.log", t.Name(), k)), b, 0o644)
			}
		}
		t.Logf("visualizations and the servers' logs kept in %s", keep)
	})
	return dir
}

// linClients are the clients of the tests' histories: registers (network
// labels) and allocations (workloads), operated through any server.
type linClients struct {
	ll      *linLab
	h       *linHistory
	regKeys []string // networks whose label v is a register
	wlKeys  []string // workloads (names in network wlNet)
	wlNet   string
	node    string
	// Bounds: operations per key, and the time one call may take.
	perKey      int
	callTimeout time.Duration
	pace        time.Duration // mean pause between a client's operations

	unsent    atomic.Int64
	snapshots atomic.Int64

	mu   sync.Mutex
	errs []error
	dups []string
}

func newLinClients(ll *linLab, registers, workloads int) *linClients {
	lc := &linClients{ll: ll, h: newLinHistory(), wlNet: "lzw", node: "lzn", perKey: 200, callTimeout: 2 * time.Second, pace: 60 * time.Millisecond}
	for i := range registers {
		lc.regKeys = append(lc.regKeys, fmt.Sprintf("lzr%d", i))
	}
	for i := range workloads {
		lc.wlKeys = append(lc.wlKeys, fmt.Sprintf("w%d", i))
	}
	return lc
}

const linOrigin = "linearizability"

// setup creates the registers (v=0), the workloads' network and the host
// they are attached to, before the history starts.
func (lc *linClients) setup(t *testing.T, ctx context.Context) {
	t.Helper()
	req := &sdnv1.ApplyRequest{}
	for _, k := range lc.regKeys {
		req.Networks = append(req.Networks, &sdnv1.Network{Name: k, Labels: map[string]string{"v": "0"}, Origin: &sdnv1.Origin{File: linOrigin}})
	}
	if len(lc.wlKeys) > 0 {
		req.Networks = append(req.Networks, &sdnv1.Network{Name: lc.wlNet, Origin: &sdnv1.Origin{File: linOrigin}})
	}
	k := lc.ll.waitLeader(ctx, 30*time.Second)
	if _, err := sdnv1.NewConfigServiceClient(lc.ll.conns[k]).Apply(ctx, req); err != nil {
		t.Fatalf("apply the test's networks: %v", err)
	}
	if len(lc.wlKeys) > 0 {
		ip := lab.Subnet(lc.ll.l.Name).Addr().As4()
		ip[3] = 150 // nothing listens there; no agent runs for this host
		_, err := sdnv1.NewNodeServiceClient(lc.ll.conns[k]).Register(ctx, &sdnv1.RegisterNodeRequest{
			Name: lc.node, UnderlayIp: fmt.Sprintf("%d.%d.%d.%d", ip[0], ip[1], ip[2], ip[3]), UnderlayMtu: 1500})
		if err != nil {
			t.Fatalf("register host %s: %v", lc.node, err)
		}
	}
}

// model is the sequential specification, with each key's initial state.
func (lc *linClients) model() porcupine.Model {
	regs := map[string]bool{}
	for _, k := range lc.regKeys {
		regs[k] = true
	}
	return linModel(func(key string) linState {
		if regs[key] {
			return linState{Present: true, Value: "0"}
		}
		return linState{}
	})
}

func (lc *linClients) fail(err error) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	lc.errs = append(lc.errs, err)
}

func (lc *linClients) err() error {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return errors.Join(lc.errs...)
}

func (lc *linClients) dupIPs() []string {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return append([]string(nil), lc.dups...)
}

// checkIPs notes any IP that two workloads of a snapshot hold.
func (lc *linClients) checkIPs(ws []*sdnv1.Workload, where string) {
	lc.snapshots.Add(1)
	held := map[string]string{}
	for _, w := range ws {
		if w.Ip == "" || w.Pending != "" {
			continue
		}
		key := w.Network + "/" + w.Name
		if other, dup := held[w.Ip]; dup {
			lc.mu.Lock()
			lc.dups = append(lc.dups, fmt.Sprintf("%s: %s held by %s and %s", where, w.Ip, other, key))
			lc.mu.Unlock()
		}
		held[w.Ip] = key
	}
}

// linOutcome sorts a failed call: never sent (no server saw it), outcome
// unknown (it may have taken effect), or refused (a bug in the test or the
// server: none of its operations may be refused).
type linOutcome int

const (
	linDone linOutcome = iota
	linNotSent
	linUnknownOutcome
	linRefused
)

func classify(err error) linOutcome {
	if err == nil {
		return linDone
	}
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.Unavailable:
		// gRPC could not connect, to the server asked or (forwarding) to
		// the leader: nothing was sent (cluster/api's unsent).
		if strings.Contains(st.Message(), "while dialing") {
			return linNotSent
		}
		return linUnknownOutcome
	case codes.DeadlineExceeded, codes.Canceled, codes.Internal, codes.Unknown, codes.Aborted:
		return linUnknownOutcome
	}
	return linRefused
}

// call runs one operation through server k and returns its output.
func (lc *linClients) call(ctx context.Context, k int, in linInput) (linOutput, uint64, error) {
	cc := lc.ll.conns[k]
	switch in.Kind {
	case linPut:
		r, err := sdnv1.NewConfigServiceClient(cc).Apply(ctx, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{
			{Name: in.Key, Labels: map[string]string{"v": in.Value}, Origin: &sdnv1.Origin{File: linOrigin}}}})
		return linOutput{}, r.GetRevision(), err
	case linGet:
		r, err := sdnv1.NewConfigServiceClient(cc).List(ctx, &sdnv1.ListRequest{Kind: "networks"})
		if err != nil {
			return linOutput{}, 0, err
		}
		for _, n := range r.Networks {
			if n.Name == in.Key {
				return linOutput{Value: n.Labels["v"]}, r.Revision, nil
			}
		}
		return linOutput{}, r.Revision, status.Errorf(codes.FailedPrecondition, "network %s is missing from a linearizable List", in.Key)
	case linAttach:
		r, err := sdnv1.NewWorkloadServiceClient(cc).Attach(ctx, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{
			Name: in.Key, Network: lc.wlNet, Node: lc.node,
			Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_CNI, ContainerId: "cid-" + in.Key, Ifname: "eth0"}}})
		if err != nil {
			return linOutput{}, 0, err
		}
		if r.Workload.GetIp() == "" || r.Workload.GetPending() != "" {
			return linOutput{}, r.Revision, status.Errorf(codes.FailedPrecondition, "attach %s: no address (%q)", in.Key, r.Workload.GetPending())
		}
		return linOutput{IP: r.Workload.Ip}, r.Revision, nil
	case linDetach:
		r, err := sdnv1.NewWorkloadServiceClient(cc).Detach(ctx, &sdnv1.DetachWorkloadRequest{Network: lc.wlNet, Name: in.Key})
		if err != nil {
			return linOutput{}, 0, err
		}
		return linOutput{Removed: r.Removed}, r.Revision, nil
	case linRead:
		r, err := sdnv1.NewConfigServiceClient(cc).List(ctx, &sdnv1.ListRequest{Kind: "workloads", Network: lc.wlNet})
		if err != nil {
			return linOutput{}, 0, err
		}
		lc.checkIPs(r.Workloads, fmt.Sprintf("a read through s%d at %s", k, time.Duration(lc.h.now()).Round(time.Millisecond)))
		for _, w := range r.Workloads {
			if w.Name == in.Key {
				return linOutput{Present: true, IP: w.Ip}, r.Revision, nil
			}
		}
		return linOutput{}, r.Revision, nil
	}
	return linOutput{}, 0, fmt.Errorf("unknown operation %q", in.Kind)
}

// op runs one operation through server k as client c and records it: done,
// or with an unknown outcome when it is a write that may have been sent.
// Failed reads, and calls never sent, are not recorded (they observed and
// changed nothing). It returns the call's error.
func (lc *linClients) op(ctx context.Context, c, k int, in linInput) (linOutput, error) {
	cctx, cancel := context.WithTimeout(ctx, lc.callTimeout)
	call := lc.h.now()
	out, rev, err := lc.call(cctx, k, in)
	ret := lc.h.now()
	cancel()
	switch classify(err) {
	case linDone:
		lc.h.add(c, in, call, ret, out, linMeta{Server: k, Revision: rev})
	case linUnknownOutcome:
		if in.Kind == linPut || in.Kind == linAttach || in.Kind == linDetach {
			lc.h.add(c, in, call, ret, linOutput{Unknown: true}, linMeta{Server: k, Err: status.Code(err).String()})
		}
	}
	return out, err
}

// client runs operations until ctx ends or every key has its share: a
// random key that has not, a random operation on it, through its current
// server. A call never sent is tried on the next server; after one whose
// outcome is unknown the client goes on under a new id, on the next server.
func (lc *linClients) client(ctx context.Context, c int, rng *rand.Rand) {
	id := lc.h.newClient()
	server := c%lc.ll.n + 1
	seq := 0
	for ctx.Err() == nil {
		var open []string
		for _, k := range append(append([]string{}, lc.regKeys...), lc.wlKeys...) {
			if lc.h.count(k) < lc.perKey {
				open = append(open, k)
			}
		}
		if len(open) == 0 {
			return
		}
		sort.Strings(open)
		key := open[rng.IntN(len(open))]
		in := linInput{Key: key}
		if strings.HasPrefix(key, "lzr") {
			in.Kind = linGet
			if rng.IntN(2) == 0 {
				seq++
				in.Kind, in.Value = linPut, fmt.Sprintf("c%d-%d", c, seq)
			}
		} else {
			switch x := rng.IntN(20); {
			case x < 7:
				in.Kind = linAttach
			case x < 12:
				in.Kind = linDetach
			default:
				in.Kind = linRead
			}
		}
		for tries := 0; ctx.Err() == nil; tries++ {
			_, err := lc.op(ctx, id, server, in)
			o := classify(err)
			if o == linRefused && ctx.Err() == nil {
				lc.fail(fmt.Errorf("client %d: %s(%s) through s%d refused: %w", c, in.Kind, in.Key, server, err))
				return
			}
			if o == linDone {
				break
			}
			server = server%lc.ll.n + 1
			if o == linUnknownOutcome {
				if in.Kind != linGet && in.Kind != linRead {
					id = lc.h.newClient()
				}
				break
			}
			lc.unsent.Add(1)
			if tries%lc.ll.n == lc.ll.n-1 {
				sleepCtx(ctx, 100*time.Millisecond)
			}
		}
		sleepCtx(ctx, time.Duration(rng.Int64N(int64(2*lc.pace))))
	}
}
