package scalesim

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Config says what to simulate.
type Config struct {
	// Servers are the sdnd API addresses (host:port, plaintext gRPC).
	Servers []string
	// Hosts is how many agents to simulate.
	Hosts int
	// Prefix starts every host name: host i is Prefix + i in five digits
	// ("sim-00042"). Default "sim-".
	Prefix string
	// HeartbeatInterval is the agents' heartbeat period (default 5 s, as
	// node/agent's).
	HeartbeatInterval time.Duration
	// ResyncInterval is how often a host reports its revision even when
	// nothing changed, as the agent's periodic resync does (default 15 s;
	// negative: never).
	ResyncInterval time.Duration
	// CallTimeout bounds a registration (default 60 s; the agent has
	// none, but a simulated host must not hang forever on a dead server).
	CallTimeout time.Duration
	// Unfiltered asks for the original watch protocol (every revision, no
	// progress events) instead of the filtered watch.
	Unfiltered bool
	// StartSpread spreads the hosts' starts evenly over this long (0: all
	// at once, the registration storm).
	StartSpread time.Duration
	// Seed seeds the backoff jitter (0: random).
	Seed   uint64
	Logger *slog.Logger
}

// Observer sees every event a host accepted, after the host applied it,
// with its receive time. It is called from the hosts' goroutines, many at
// once, and must be quick.
type Observer interface {
	Event(h *Host, ev *sdnv1.WatchEvent, at time.Time)
}

// streamWindow is a connection's and a stream's flow-control window.
const streamWindow = 64 << 10

// Sim is a set of simulated hosts.
type Sim struct {
	cfg    Config
	log    *slog.Logger
	hosts  []*Host
	intern *interner
	obs    atomic.Pointer[observerBox]
	// samples holds the latest error of each kind (kindRegister, …).
	samples [kinds]atomic.Pointer[string]

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type observerBox struct{ o Observer }

// New prepares the hosts (nothing is sent until Start). It raises the
// process's open-file limit to what one connection per host needs.
func New(cfg Config) (*Sim, error) {
	if len(cfg.Servers) == 0 || cfg.Hosts < 1 {
		return nil, fmt.Errorf("scalesim: want at least one server and one host, have %d and %d", len(cfg.Servers), cfg.Hosts)
	}
	if cfg.Hosts > 131070 {
		return nil, fmt.Errorf("scalesim: %d hosts do not fit 198.18.0.0/15 (131,070 addresses)", cfg.Hosts)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "sim-"
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 5 * time.Second
	}
	if cfg.ResyncInterval == 0 {
		cfg.ResyncInterval = 15 * time.Second
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := raiseFileLimit(uint64(cfg.Hosts) + 1024); err != nil {
		return nil, err
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	s := &Sim{cfg: cfg, log: cfg.Logger, intern: newInterner()}
	for i := range cfg.Hosts {
		h := &Host{Index: i, Name: fmt.Sprintf("%s%05d", cfg.Prefix, i), UnderlayIP: underlayIP(i), sim: s,
			rng: rand.New(rand.NewPCG(seed, uint64(i))), desired: model.NewDesired()}
		if err := h.connect(i % len(cfg.Servers)); err != nil {
			s.closeConns()
			return nil, err
		}
		s.hosts = append(s.hosts, h)
	}
	return s, nil
}

// raiseFileLimit raises RLIMIT_NOFILE to at least need (the hard limit
// too, which root may).
func raiseFileLimit(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("scalesim: read the open-file limit: %w", err)
	}
	if lim.Cur >= need {
		return nil
	}
	lim.Cur = max(lim.Max, need)
	lim.Max = max(lim.Max, need)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("scalesim: raise the open-file limit to %d (one connection per host): %w; raise it (ulimit -n) or run as root", need, err)
	}
	return nil
}

// dial returns a client connection to addr, set up as an agent's (the
// largest watch event it accepts) and light on memory: one write buffer
// pool for every connection, and fixed flow-control windows of gRPC's
// initial size (64 KiB). With the default, gRPC grows a stream's window
// (up to 16 MiB) when its bandwidth-delay estimate says so; thousands of
// streams into one process that cannot keep up with three servers then
// buffered 12 GB here (5,000 hosts). A fixed window makes a lagging host
// push back on its server instead, as a lagging agent would.
func (s *Sim) dial(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithSharedWriteBuffer(true),
		grpc.WithInitialWindowSize(streamWindow), grpc.WithInitialConnWindowSize(streamWindow),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(model.MaxResponseBytes)))
}

// Start starts every host (spread over Config.StartSpread). The hosts run
// until Stop.
func (s *Sim) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	var step time.Duration
	if n := len(s.hosts); n > 1 {
		step = s.cfg.StartSpread / time.Duration(n-1)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for _, h := range s.hosts {
			s.wg.Add(1)
			go func() { defer s.wg.Done(); h.run(ctx) }()
			if step > 0 {
				sleep(ctx, step)
			}
		}
	}()
}

// Stop ends every host and closes their connections.
func (s *Sim) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	s.closeConns()
}

func (s *Sim) closeConns() {
	for _, h := range s.hosts {
		h.mu.Lock()
		if h.conn != nil {
			h.conn.Close()
			h.conn = nil
		}
		h.mu.Unlock()
	}
}

// Hosts returns the hosts, by index.
func (s *Sim) Hosts() []*Host { return s.hosts }

// SetObserver shows every event from now on to o (nil: to no one).
func (s *Sim) SetObserver(o Observer) {
	if o == nil {
		s.obs.Store(nil)
		return
	}
	s.obs.Store(&observerBox{o})
}

func (s *Sim) observer() Observer {
	if b := s.obs.Load(); b != nil {
		return b.o
	}
	return nil
}

// Stats sums every host's Stats.
func (s *Sim) Stats() Stats {
	var st Stats
	for _, h := range s.hosts {
		h.c.addTo(&st)
	}
	return st
}

// Count says how many hosts are registered and how many are watching.
func (s *Sim) Count() (registered, watching int) {
	for _, h := range s.hosts {
		if h.Registered() {
			registered++
		}
		if h.Watching() {
			watching++
		}
	}
	return registered, watching
}

// WaitAll polls every interval until every host satisfies cond, and
// calls progress with how many do (nil: no progress). It fails when ctx
// ends first.
func (s *Sim) WaitAll(ctx context.Context, every time.Duration, cond func(h *Host) bool, progress func(n int)) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n := 0
		for _, h := range s.hosts {
			if cond(h) {
				n++
			}
		}
		if progress != nil {
			progress(n)
		}
		if n == len(s.hosts) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d hosts there: %w", n, len(s.hosts), ctx.Err())
		case <-t.C:
		}
	}
}
