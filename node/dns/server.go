package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TTL is the time to live of every answer from inside the domain, and how
// long a workload lookup is cached (see the package comment).
const TTL = 5 * time.Second

// Defaults of the Config fields left zero.
const (
	DefaultResolvConf     = "/etc/resolv.conf"
	DefaultLookupTimeout  = time.Second
	DefaultForwardTimeout = 2 * time.Second
	// retryEvery is how often Run looks at the address again (and tries
	// again to listen after a failure) once it listens.
	retryEvery = 2 * time.Second
	// waitEvery is how often Run looks while it does not listen yet: the
	// host's gateway appears in the desired state at the first sync, and
	// a workload attached right after may ask at once.
	waitEvery = 50 * time.Millisecond
	// shutdownWait bounds how long Close waits for queries being answered.
	shutdownWait = 5 * time.Second
)

// Desired reads the agent's current desired state (*agent.Agent). fn must
// not keep m or change it.
type Desired interface {
	View(fn func(m *model.Desired))
}

// Config is what the server needs.
type Config struct {
	// Desired is the agent's desired state: the cluster's domain, the
	// networks and every service, read at each query.
	Desired Desired
	// Names asks the servers for workload names (the agent's connection:
	// sdnv1.NewNameServiceClient(conn)).
	Names sdnv1.NameServiceClient
	// ResolvConf is where the host's resolvers are listed; "" means
	// DefaultResolvConf.
	ResolvConf string
	// Upstreams, when set, are the resolvers to forward to (ip:port)
	// instead of ResolvConf's.
	Upstreams []string
	// LookupTimeout bounds a ResolveName call; ForwardTimeout one
	// exchange with a resolver. 0: the defaults.
	LookupTimeout  time.Duration
	ForwardTimeout time.Duration
	Logger         *slog.Logger
}

// Server is the DNS server. Start or Run makes it listen.
type Server struct {
	cfg   Config
	log   *slog.Logger
	cache *nameCache
	up    *upstreams
	now   func() time.Time

	mu   sync.Mutex // Start and Close, one at a time
	want string     // the address asked for (Start), "" when none
	udp  *mdns.Server
	tcp  *mdns.Server
	// bound is the address it listens on, its port chosen ("" when it
	// does not); read by queries, which Close waits for.
	bound atomic.Pointer[string]
}

// New returns a server that does not listen yet.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = DefaultResolvConf
	}
	if cfg.LookupTimeout <= 0 {
		cfg.LookupTimeout = DefaultLookupTimeout
	}
	if cfg.ForwardTimeout <= 0 {
		cfg.ForwardTimeout = DefaultForwardTimeout
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: time.Now}
	s.cache = newNameCache()
	s.up = newUpstreams(cfg.ResolvConf, cfg.Upstreams, s.listening)
	return s
}

// Start listens on addr (ip:port), UDP and TCP, and serves there. Called
// again with another address it moves there (the gateway changed); with
// the same address it does nothing. The address need not be on the host
// yet (IP_FREEBIND): the server answers once it appears, so the caller
// may start it before the gateway device has its address.
func (s *Server) Start(addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if addr == s.want {
		return nil
	}
	s.stopLocked()
	udp, tcp, err := listen(addr)
	if err != nil {
		return err
	}
	s.udp = s.serve(&mdns.Server{PacketConn: udp, Handler: s})
	s.tcp = s.serve(&mdns.Server{Listener: tcp, Handler: s, ReadTimeout: 5 * time.Second})
	s.want = addr
	bound := udp.LocalAddr().String()
	s.bound.Store(&bound)
	s.log.Info("DNS server listening", "addr", bound, "udp", true, "tcp", true)
	return nil
}

// Run keeps the server listening on addr() until ctx ends, then closes it.
// addr is asked every 50 ms until the server listens ("" means not yet
// known: the host's gateway before the first sync), then every couple of
// seconds (it moves when the host's gateway does); a failed listen is
// logged when its error changes, and tried again.
func (s *Server) Run(ctx context.Context, addr func() string) {
	var lastErr string
	for {
		wait := waitEvery
		if a := addr(); a != "" {
			err := s.Start(a)
			if msg := fmt.Sprint(err); err != nil && msg != lastErr {
				s.log.Error("DNS server cannot listen; workloads of this host resolve no names until it does (retrying)", "addr", a, "err", err)
			}
			lastErr = fmt.Sprint(err)
			if err == nil {
				wait = retryEvery
			}
		}
		select {
		case <-ctx.Done():
			s.Close()
			return
		case <-time.After(wait):
		}
	}
}

// GatewayAddr is, for Run, where a host's DNS server listens: its gateway
// address (the first of its block) from the desired state, port 53; ""
// until the host has one.
func GatewayAddr(d Desired, node string) func() string {
	return func() string {
		var gw string
		d.View(func(m *model.Desired) { gw = m.Nodes[node].GetGatewayIp() })
		if gw == "" {
			return ""
		}
		return net.JoinHostPort(gw, "53")
	}
}

// Addr is the address the server listens on, "" when it does not.
func (s *Server) Addr() string {
	if p := s.bound.Load(); p != nil {
		return *p
	}
	return ""
}

// Close stops listening; queries being answered finish.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	s.bound.Store(nil)
	for _, srv := range []*mdns.Server{s.udp, s.tcp} {
		if srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
			_ = srv.ShutdownContext(ctx)
			cancel()
		}
	}
	s.udp, s.tcp, s.want = nil, nil, ""
}

// serve runs srv until it is shut down, and returns once it listens.
func (s *Server) serve(srv *mdns.Server) *mdns.Server {
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() {
		if err := srv.ActivateAndServe(); err != nil {
			s.log.Warn("DNS server stopped", "err", err)
		}
	}()
	<-started
	return srv
}

// listening reports whether addr (ip:port) is where this server listens:
// its own address is never an upstream.
func (s *Server) listening(addr string) bool {
	return sameAddr(addr, s.Addr())
}

// listen opens the UDP and TCP sockets on addr, with IP_FREEBIND so that
// the address need not be configured yet. Port 0 (tests) is one port
// chosen for both.
func listen(addr string) (net.PacketConn, net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_FREEBIND, 1)
		})
		return errors.Join(err, serr)
	}}
	udp, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("DNS on udp %s: %w", addr, err)
	}
	tcp, err := lc.Listen(context.Background(), "tcp", udp.LocalAddr().String())
	if err != nil {
		udp.Close()
		return nil, nil, fmt.Errorf("DNS on tcp %s: %w", addr, err)
	}
	return udp, tcp, nil
}
