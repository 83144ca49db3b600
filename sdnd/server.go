package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sdn-dev/sdn/cluster"
	"github.com/sdn-dev/sdn/cluster/api"
	"github.com/sdn-dev/sdn/cluster/join"
	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/cluster/transport"
	"github.com/sdn-dev/sdn/node/cnisrv"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// serverRole is a running raft server and its API listeners.
type serverRole struct {
	srv    *cluster.Server
	mux    *transport.Mux
	g      *grpc.Server
	health *health.Server
	peers  *api.Peers
	cancel context.CancelFunc // stops the forming and health loops
	log    *slog.Logger
}

// startServer starts raft and serves the API on the cluster address (which
// raft shares) and every other --listen address. A listener that fails
// later is reported on failed.
func startServer(ctx context.Context, o *options, sec connSecurity, log *slog.Logger, failed chan<- error) (*serverRole, error) {
	tcfg := transport.Config{Addr: o.raftAddr, Advertise: o.advertise,
		ServerTLS: sec.raftTLS, ClientTLS: sec.clientTLS, Logger: log}
	if sec.tracker != nil {
		tcfg.Track = sec.tracker.Track
	}
	mux, err := transport.Listen(tcfg)
	if err != nil {
		return nil, fmt.Errorf("cluster address: %w", err)
	}
	srv, err := cluster.NewServer(cluster.Config{
		DataDir: o.dataDir, ID: o.nodeName, Transport: cluster.NewNetworkTransport(mux.Raft(), log),
		Bootstrap: o.bootstrap, Peers: o.peers, Logger: log,
	})
	if err != nil {
		mux.Close()
		return nil, err
	}
	lis := []net.Listener{mux.API()}
	for _, addr := range o.listen {
		if addr == o.raftAddr {
			continue // served through the mux
		}
		l, err := listen(addr)
		if err != nil {
			for _, l := range lis {
				l.Close()
			}
			srv.Shutdown()
			mux.Close()
			return nil, fmt.Errorf("listen for the API: %w", err)
		}
		lis = append(lis, l)
	}
	rctx, cancel := context.WithCancel(ctx)
	peers := api.NewPeers(sec.dialOptions()...)
	var former *join.Former
	if o.bootstrapExpect > 0 || len(o.join) > 0 {
		former = join.New(join.Config{Expect: o.bootstrapExpect, Join: o.join, Local: srv, Dialer: peerDialer{peers}, Logger: log.With("component", "join")})
	}
	live := cluster.NewLiveness(o.nodeDownAfter, nil)
	opts := api.Options{Peers: peers, Authorize: sec.tls(), Liveness: live, HostDialOptions: sec.hostDialOptions()}
	if former != nil {
		opts.Formation = former
	}
	a := api.New(srv, log, opts)
	if sec.revocation != nil {
		sec.revocation.set(a.Revoked)
	}
	s := &serverRole{srv: srv, mux: mux, peers: peers, cancel: cancel, log: log,
		g: grpc.NewServer(append(sec.serverOptions(log), a.ServerOptions()...)...)}
	s.health = a.Install(s.g)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	addrs := make([]string, len(lis))
	for i, l := range lis {
		addrs[i] = l.Addr().Network() + ":" + l.Addr().String()
		go func() {
			if err := s.g.Serve(l); err != nil {
				report(failed, fmt.Errorf("API server on %s: %w", l.Addr(), err))
			}
		}()
	}
	addrs[0] = "tcp:" + mux.ListenAddr().String()
	if former != nil {
		go func() {
			if err := former.Run(rctx); err != nil && rctx.Err() == nil {
				report(failed, fmt.Errorf("form the cluster: %w", err))
			}
		}()
	} else if !srv.HasState() && !o.bootstrap && len(o.peers) == 0 {
		log.Warn("this server has no raft state and no way to start a cluster; it waits to be added to one (`sdnctl cluster join " + srv.Addr() + "` against a running server), or restart it with --bootstrap, --peers or --bootstrap-expect and --join")
	}
	go s.trackHealth(rctx, strings.Join(addrs, ","))
	go func() {
		// A damaged state file serves nothing more; stop, so that the next
		// start rebuilds it from raft (cluster/recover.go).
		select {
		case err := <-srv.StateDamaged():
			report(failed, err)
		case <-rctx.Done():
		}
	}()
	go srv.RunLiveness(rctx, live) // acts while this server leads
	go a.RunStateChecks(rctx, o.stateCheckInterval)
	go func() {
		// A damaged raft log entry stops the server (cluster.Server.Failed):
		// sdnd exits non-zero with the message.
		select {
		case <-srv.Failed():
			report(failed, srv.Failure())
		case <-rctx.Done():
		}
	}()
	if sec.tracker != nil {
		go s.closeRevoked(rctx, sec)
	}
	log.Info("server started", "node", o.nodeName, "api", strings.Join(addrs, ","), "cluster_address", srv.Addr(),
		"bootstrap", o.bootstrap, "peers", len(o.peers), "bootstrap_expect", o.bootstrapExpect, "join", strings.Join(o.join, ","))
	return s, nil
}

// trackHealth keeps gRPC health SERVING while a leader is known (this
// server or another), NOT_SERVING otherwise.
func (s *serverRole) trackHealth(ctx context.Context, addrs string) {
	serving, said := false, false
	var removedSince time.Time // zero while this server is a member
	removedSaid := false
	for {
		switch removed := s.srv.Removed(); {
		case !removed:
			removedSince, removedSaid = time.Time{}, false
		case removedSince.IsZero():
			removedSince = time.Now()
		case !removedSaid && time.Since(removedSince) > 10*time.Second:
			removedSaid = true
			s.log.Error("this server was removed from the cluster (the raft configuration does not list it); stop sdnd, and empty its --data-dir before it joins a cluster again")
		}
		_, leader := s.srv.Leader()
		if now := leader != ""; now != serving {
			serving = now
			st := healthpb.HealthCheckResponse_NOT_SERVING
			if serving {
				st = healthpb.HealthCheckResponse_SERVING
			}
			s.health.SetServingStatus("", st)
			lid, _ := s.srv.Leader()
			switch {
			case serving && !said:
				said = true
				s.log.Info("ready", "api", addrs, "leader", lid)
			case serving:
				s.log.Info("a leader is known again", "leader", lid)
			default:
				s.log.Warn("no raft leader known; the API answers only watches and stale reads until one is elected")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// closeRevoked closes, within a second of this server applying a
// revocation, every open connection (API, raft, dialled) whose peer's
// certificate is revoked: an agent's watch, a client's stream or a revoked
// server's raft link end then, not at their next handshake.
func (s *serverRole) closeRevoked(ctx context.Context, sec connSecurity) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	seen := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := 0
		if err := s.srv.FSM().View(func(tx *state.Tx) error { n = tx.RevokedCount(); return nil }); err != nil || n == seen {
			continue
		}
		seen = n
		sec.closeRevoked(s.log)
	}
}

// listen opens an API listener: host:port, or unix:/path with mode 0600.
func listen(addr string) (net.Listener, error) {
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		return cnisrv.ListenUnix(p)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return l, nil
}

// stop hands leadership to another voter when this server leads (so the
// cluster does not wait for an election timeout), ends the API (in-flight
// calls get 5 s; watches end at once) and leaves raft.
func (s *serverRole) stop() {
	if s.srv.IsLeader() {
		if err := s.srv.HandOver(); err != nil {
			s.log.Warn("could not hand leadership over before stopping; the others elect a leader after their timeout", "err", err)
		} else if !s.srv.IsLeader() {
			s.log.Info("handed leadership over before stopping")
		}
	}
	s.cancel()
	s.health.Shutdown()
	// Watches and WaitRealized streams never end by themselves: end them
	// now (Unavailable), so their agents and clients move to another
	// server at once and GracefulStop does not wait its 5 s for them.
	s.srv.Hub().Close()
	done := make(chan struct{})
	go func() { s.g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.g.Stop()
	}
	s.peers.Close()
	s.srv.Shutdown()
	s.mux.Close()
}

// peerDialer is how the cluster forming code (cluster/join) reaches other
// servers: their ClusterService, over the pool of server connections.
type peerDialer struct{ peers *api.Peers }

func (d peerDialer) Hello(ctx context.Context, addr string, req *sdnv1.HelloRequest) (*sdnv1.HelloResponse, error) {
	c, err := d.peers.Cluster(addr)
	if err != nil {
		return nil, err
	}
	return c.Hello(ctx, req)
}

func (d peerDialer) Join(ctx context.Context, addr string, req *sdnv1.JoinRequest) (*sdnv1.JoinResponse, error) {
	c, err := d.peers.Cluster(addr)
	if err != nil {
		return nil, err
	}
	return c.Join(ctx, req)
}

// report passes a role's fatal error to run without ever blocking.
func report(failed chan<- error, err error) {
	select {
	case failed <- err:
	default:
	}
}
