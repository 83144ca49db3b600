package suites

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/bench/scalesim"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// ScaleOptions is one run of the scale benchmark (one variant of the
// scale suite, or one `sdnscale` run): fresh servers, N simulated hosts,
// every phase once.
type ScaleOptions struct {
	Hosts   int // simulated hosts
	Servers int // 1 (`sdnd --dev`) or more (one raft cluster)
	// Singles is how many single attaches the fan-out phase makes
	// (default 20); Burst how many attaches the burst makes (default
	// 1,000; negative: no burst) from BurstClients clients (default 32).
	Singles, Burst, BurstClients int
	// Rest is how long server RSS and CPU are measured at rest after the
	// registration (default 20 s).
	Rest time.Duration
	// NoStorm skips the reconnect storm (killing the leader), which runs
	// with more than one server only.
	NoStorm bool
	// Unfiltered makes the hosts ask for the original, unfiltered watch.
	Unfiltered bool
	// SDND is the sdnd binary; Dir a scratch directory for the servers'
	// data and logs (one per run).
	SDND, Dir string
	// RSSLimit: when a server's RSS passes it, every server is killed and
	// the run fails with what it had measured (default 8 GiB).
	RSSLimit int64
	// SimRSSLimit is the same for this process, where the simulator runs
	// (default 10 GiB): the machine must survive a simulator that
	// buffers more than it should.
	SimRSSLimit int64
	// SimMemoryLimit is the Go soft memory limit (debug.SetMemoryLimit)
	// set for this process during the run (0: 1 MiB a host, at least
	// 1 GiB; negative: none). The simulator allocates an event per host
	// per revision; without a limit its garbage grew to twice what it
	// holds (2 GB at 2,000 hosts, 1.1 GB with 1.25 GiB). A limit below what
	// it holds makes the GC run without end: keep it generous.
	SimMemoryLimit int64
	// Seed picks the attaches' hosts and the backoff jitter (0: random).
	Seed uint64
	// Logf prints progress (nil: none).
	Logf func(format string, args ...any)
	// AfterPhase, when set, is called after each phase that succeeded
	// with its name ("registration", "rest", …), e.g. to take a heap
	// profile of the simulator.
	AfterPhase func(name string)
}

// ScaleResult is what one run measured: figures by name (the suite's
// figure names, scaleFig...), and notes in the order they were taken.
type ScaleResult struct {
	Figures map[string]float64
	Notes   []ScaleNote
}

// ScaleNote is one line of detail: per-server figures, the simulator's
// counts, errors by kind.
type ScaleNote struct{ Key, Value string }

func (r *ScaleResult) set(fig string, v float64) { r.Figures[fig] = v }

func (r *ScaleResult) note(key, format string, args ...any) {
	r.Notes = append(r.Notes, ScaleNote{Key: key, Value: fmt.Sprintf(format, args...)})
}

// scaleNetwork is the network the attaches go to; scaleFanoutNetwork and
// scaleStormNetwork are the changes every host needs.
const (
	scaleNetwork       = "scale"
	scaleFanoutNetwork = "scale-fanout"
	scaleStormNetwork  = "scale-storm"
)

// scaleRun is one run in progress.
type scaleRun struct {
	o   ScaleOptions
	res *ScaleResult
	rng *rand.Rand
	srv *scaleServers
	sim *scalesim.Sim
}

// RunScale runs the scale benchmark once. It returns what it measured
// even when it fails (a phase failed, or the RSS guard killed the
// servers).
func RunScale(ctx context.Context, o ScaleOptions) (*ScaleResult, error) {
	o = o.withDefaults()
	r := &scaleRun{o: o, res: &ScaleResult{Figures: map[string]float64{}}, rng: rand.New(rand.NewPCG(o.Seed, 13))}
	if o.Hosts < 1 || o.Servers < 1 || o.SDND == "" || o.Dir == "" {
		return r.res, fmt.Errorf("scale: want hosts, servers, an sdnd binary and a directory (have %d, %d, %q, %q)", o.Hosts, o.Servers, o.SDND, o.Dir)
	}
	if o.SimMemoryLimit > 0 {
		if prev := debug.SetMemoryLimit(-1); prev > o.SimMemoryLimit {
			debug.SetMemoryLimit(o.SimMemoryLimit)
			defer debug.SetMemoryLimit(prev)
		}
	}
	// The bench process's own peak, for this run only.
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.logf("starting %d sdnd server(s)", o.Servers)
	srv, err := startScaleServers(ctx, o.SDND, o.Dir, o.Servers)
	if err != nil {
		return r.res, err
	}
	r.srv = srv
	defer srv.close()
	go srv.guard(ctx, o.RSSLimit, o.SimRSSLimit, cancel)
	err = r.phases(ctx)
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause // the guard's
	}
	r.finish()
	return r.res, err
}

func (o ScaleOptions) withDefaults() ScaleOptions {
	if o.Singles == 0 {
		o.Singles = 20
	}
	if o.Burst == 0 {
		o.Burst = 1000
	}
	if o.BurstClients <= 0 {
		o.BurstClients = 32
	}
	if o.Rest <= 0 {
		o.Rest = 20 * time.Second
	}
	if o.RSSLimit <= 0 {
		o.RSSLimit = 8 << 30
	}
	if o.SimRSSLimit <= 0 {
		o.SimRSSLimit = 10 << 30
	}
	if o.SimMemoryLimit == 0 {
		o.SimMemoryLimit = max(1<<30, int64(o.Hosts)<<20)
	}
	if o.Seed == 0 {
		o.Seed = rand.Uint64()
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o
}

func (r *scaleRun) logf(format string, args ...any) {
	r.o.Logf("scale %d hosts, %d server(s): "+format, append([]any{r.o.Hosts, r.o.Servers}, args...)...)
}

// phases runs every phase in order; the first that fails ends the run.
func (r *scaleRun) phases(ctx context.Context) error {
	if err := r.prepare(ctx); err != nil {
		return err
	}
	defer func() {
		if r.sim != nil {
			r.sim.Stop()
		}
	}()
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"registration", r.registration}, {"rest", r.rest}, {"single attaches", r.singles}, {"new network", r.network},
		{"burst", r.burst}, {"reconnect storm", r.storm}, {"verify", r.verify},
	}
	for _, s := range steps {
		if err := s.run(ctx); err != nil {
			return fmt.Errorf("%s: %w (server logs in %s)", s.name, err, r.o.Dir)
		}
		if r.o.AfterPhase != nil {
			r.o.AfterPhase(s.name)
		}
	}
	return nil
}

// prepare declares the cluster (a /8 in /22 blocks: 16,384 hosts) and the
// network the attaches go to, then creates the simulator.
func (r *scaleRun) prepare(ctx context.Context) error {
	_, err := sdnv1.NewConfigServiceClient(r.srv.api(ctx)).Apply(ctx, &sdnv1.ApplyRequest{
		Cluster:  &sdnv1.ClusterSettings{Cidr: "10.0.0.0/8", HostPrefix: 22},
		Networks: []*sdnv1.Network{{Name: scaleNetwork}},
	})
	if err != nil {
		return fmt.Errorf("apply the cluster settings and network %s: %w", scaleNetwork, err)
	}
	r.sim, err = scalesim.New(scalesim.Config{
		Servers: r.srv.addrs(), Hosts: r.o.Hosts, Unfiltered: r.o.Unfiltered, Seed: r.o.Seed,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return err
}

// finish takes what is measured at the end, whatever happened: the
// servers' peak RSS, the simulator's counts and its own peak.
func (r *scaleRun) finish() {
	r.res.set(scaleFigPeakRSS, float64(r.srv.peakKB())/1024)
	r.res.note("server peak RSS", "%s MiB (VmHWM per server, the highest read)", mibList(r.srv.peak))
	if r.sim != nil {
		st := r.sim.Stats()
		r.res.set(scaleFigErrors, float64(st.Errors.Total()))
		r.res.note("hosts received, whole run", "%s", st)
		samples := r.sim.ErrorSamples()
		for _, k := range slices.Sorted(maps.Keys(samples)) {
			r.res.note("latest "+k+" error", "%s", samples[k])
		}
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		if kb, err := parseStatusKB(b, "VmHWM"); err == nil {
			r.res.note("simulator peak RSS", "%d MiB (the bench process, this run)", kb/1024)
		}
	}
}

// api returns a connection to the leader.
func (r *scaleRun) api(ctx context.Context) grpc.ClientConnInterface { return r.srv.api(ctx) }

// realized waits until every host realized rev (realizedAt), asking the
// leader of the moment again when the one asked stopped leading (the
// realized revisions live in the leader's memory), for up to waitTimeout.
func (r *scaleRun) realized(ctx context.Context, rev uint64) (time.Time, error) {
	deadline := time.Now().Add(waitTimeout)
	for {
		at, err := realizedAt(ctx, r.api(ctx), rev, time.Until(deadline))
		if err == nil || status.Code(err) != codes.Unavailable || time.Now().After(deadline) || ctx.Err() != nil {
			return at, err
		}
		sleepCtx(ctx, 200*time.Millisecond)
	}
}

// realizedAt waits until StatusService.WaitRealized says every host
// realized rev, and returns when it said so.
func realizedAt(ctx context.Context, conn grpc.ClientConnInterface, rev uint64, timeout time.Duration) (time.Time, error) {
	st, err := sdnv1.NewStatusServiceClient(conn).WaitRealized(ctx, &sdnv1.WaitRealizedRequest{Revision: rev, TimeoutMs: timeout.Milliseconds()})
	if err != nil {
		return time.Time{}, fmt.Errorf("wait realized %d: %w", rev, err)
	}
	for {
		p, err := st.Recv()
		if err != nil {
			return time.Time{}, fmt.Errorf("wait realized %d: %w", rev, err)
		}
		if p.Done {
			return time.Now(), nil
		}
	}
}

// mibList formats kB values as MiB, "a / b / c".
func mibList(kbs []int64) string {
	s := ""
	for i, kb := range kbs {
		if i > 0 {
			s += " / "
		}
		s += fmt.Sprint(kb / 1024)
	}
	return s
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
