package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/sdn-dev/sdn/cluster"
	"github.com/sdn-dev/sdn/sdnd/api"
	"github.com/sdn-dev/sdn/sdnd/cnisrv"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// serverRole is a running raft server and its API listeners.
type serverRole struct {
	srv    *cluster.Server
	g      *grpc.Server
	health *health.Server
	log    *slog.Logger
}

// startServer starts raft and serves the API on every --listen address. A
// listener that fails later is reported on failed.
func startServer(ctx context.Context, o *options, log *slog.Logger, failed chan<- error) (*serverRole, error) {
	srv, err := cluster.NewServer(cluster.Config{
		DataDir: o.dataDir, ID: o.nodeName, RaftAddr: o.raftAddr, Advertise: o.advertise,
		Bootstrap: o.bootstrap, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	var lis []net.Listener
	for _, addr := range o.listen {
		l, err := listen(addr)
		if err != nil {
			for _, l := range lis {
				l.Close()
			}
			srv.Shutdown()
			return nil, fmt.Errorf("listen for the API: %w", err)
		}
		lis = append(lis, l)
	}
	s := &serverRole{srv: srv, g: grpc.NewServer(), log: log}
	s.health = api.New(srv, log).Install(s.g)
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
	go func() {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := srv.WaitLeader(wctx); err == nil {
			s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
			lid, _ := srv.Leader()
			log.Info("ready", "api", strings.Join(addrs, ","), "leader", lid)
		}
	}()
	log.Info("server started", "node", o.nodeName, "api", strings.Join(addrs, ","), "raft", o.raftAddr, "bootstrap", o.bootstrap)
	return s, nil
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

// stop ends the API (in-flight calls get 5 s) and leaves raft.
func (s *serverRole) stop() {
	s.health.Shutdown()
	done := make(chan struct{})
	go func() { s.g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.g.Stop()
	}
	s.srv.Shutdown()
}

// report passes a role's fatal error to run without ever blocking.
func report(failed chan<- error, err error) {
	select {
	case failed <- err:
	default:
	}
}
