package cnisrv

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Datapath plugs workload ports into the host's integration bridge
// (datapath/host). Plug and Unplug are idempotent. BeginPlug says a
// PlugWorkload of the port follows at once: from then on, a realize of a
// desired state naming its workload waits for that plug.
type Datapath interface {
	BeginPlug(hostIfname string)
	PlugWorkload(ctx context.Context, hostIfname string) (int, error)
	UnplugWorkload(ctx context.Context, hostIfname string) error
}

// Agent is this host's agent (*agent.Agent).
type Agent interface {
	View(fn func(m *model.Desired))
	WaitFor(ctx context.Context, cond func(m *model.Desired) bool) error
	Sync(ctx context.Context, rev uint64) error
	// Realized waits for a realize of rev that started at or after since
	// (agent.Agent.Realized).
	Realized(ctx context.Context, rev uint64, since time.Time) error
}

// DefaultSocket is where the agent serves the CNI plugin by default (the
// plugin's default too).
const DefaultSocket = "/run/sdn/cni.sock"

// DefaultRealizeTimeout bounds how long ADD waits for the datapath.
const DefaultRealizeTimeout = 20 * time.Second

// DefaultRetryUnavailable bounds how long ADD and DEL retry servers that
// answer Unavailable.
const DefaultRetryUnavailable = 10 * time.Second

// Config configures the service.
type Config struct {
	// Node is this host's name, as the agent registered it.
	Node string
	// Workloads is the servers' workload service.
	Workloads sdnv1.WorkloadServiceClient
	// Servers is the servers' gRPC health, SERVING while they know a raft
	// leader: the agent's health answers ServersHealthService from it
	// (CNI STATUS). Nil: not asked, always SERVING.
	Servers  healthpb.HealthClient
	Agent    Agent
	Datapath Datapath
	// HostNSPath is the namespace of the veths' host ends ("" = this
	// process's).
	HostNSPath string
	// TxChecksumOff switches tx checksum offload off inside workloads, which
	// the userspace (netdev) datapath needs for TCP.
	TxChecksumOff bool
	// RealizeTimeout bounds ADD's wait for the datapath (and for the host's
	// registration); 0 means DefaultRealizeTimeout.
	RealizeTimeout time.Duration
	// RetryUnavailable is how long Attach and Detach are retried while the
	// servers answer Unavailable (e.g. electing a leader); 0 means
	// DefaultRetryUnavailable.
	RetryUnavailable time.Duration
	Logger           *slog.Logger
}

// Server implements sdnv1.AgentServiceServer.
type Server struct {
	sdnv1.UnimplementedAgentServiceServer
	cfg   Config
	log   *slog.Logger
	locks keyedMutex
}

// New returns the service.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RealizeTimeout == 0 {
		cfg.RealizeTimeout = DefaultRealizeTimeout
	}
	if cfg.RetryUnavailable == 0 {
		cfg.RetryUnavailable = DefaultRetryUnavailable
	}
	return &Server{cfg: cfg, log: cfg.Logger}
}

// Serve serves the agent service and gRPC health on lis until ctx ends,
// then stops gracefully (in-flight operations get 10 s). Health turns
// SERVING once the host appears registered in the agent's desired state.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	g := grpc.NewServer(grpc.Creds(PeerCredentials()))
	sdnv1.RegisterAgentServiceServer(g, s)
	h := health.NewServer()
	healthpb.RegisterHealthServer(g, &agentHealth{Server: h, servers: s.cfg.Servers})
	svc := sdnv1.AgentService_ServiceDesc.ServiceName
	for _, name := range []string{"", svc} {
		h.SetServingStatus(name, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	go func() {
		if s.cfg.Agent.WaitFor(ctx, s.registered) == nil {
			for _, name := range []string{"", svc} {
				h.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
			}
			s.log.Info("CNI service ready", "socket", lis.Addr().String())
		}
	}()
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("CNI service on %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}
	h.Shutdown()
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		g.Stop()
		<-done
	}
	return nil
}

// registered reports whether the host has its block of addresses.
func (s *Server) registered(m *model.Desired) bool {
	n := m.Nodes[s.cfg.Node]
	return n != nil && n.Subnet != "" && n.GatewayIp != ""
}

// ListenUnix listens on a unix socket at path with mode 0600 (root-only
// when run as root). It creates the parent directory (0755) if needed and
// removes a stale socket left by a process that is gone; a socket that
// still answers, or a file that is not a socket, is an error.
func ListenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("listen on %s: the path exists and is not a socket (%s); not removing it", path, fi.Mode().Type())
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen on %s: another process is serving on it (is another sdnd running?)", path)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	// Created under umask 0177 so that it is never, even briefly,
	// connectable by others (the chmod below only states the intent).
	umaskMu.Lock()
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	umaskMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("restrict socket %s to its owner: %w", path, err)
	}
	return l, nil
}

// umaskMu serializes the process-wide umask change of ListenUnix.
var umaskMu sync.Mutex

// keyedMutex serializes operations per key (container id).
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	ch    chan struct{} // holds one token while locked
	users int
}

// lock takes key's lock or fails when ctx ends first; call the returned
// function to release it.
func (k *keyedMutex) lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.m[key] = l
	}
	l.users++
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, errorf(codes.DeadlineExceeded, "another CNI operation on container %s is still running: %v", key, ctx.Err())
	}
}

// codedError is an error with a gRPC code; the server sends it as a status
// and its message reads well when wrapped.
type codedError struct {
	code codes.Code
	msg  string
}

func (e *codedError) Error() string              { return e.msg }
func (e *codedError) GRPCStatus() *status.Status { return status.New(e.code, e.msg) }

func errorf(code codes.Code, format string, args ...any) error {
	return &codedError{code, fmt.Sprintf(format, args...)}
}

// wrap prefixes the message of an error from a gRPC call, keeping its code.
func wrap(err error, format string, args ...any) error {
	st := status.Convert(err)
	return &codedError{st.Code(), fmt.Sprintf(format, args...) + ": " + st.Message()}
}
