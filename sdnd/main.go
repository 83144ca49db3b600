// Command sdnd is the sdn daemon. As a server it holds the desired state in
// raft (hashicorp/raft, with its log and the state on bbolt) and serves the
// gRPC API that sdnctl, agents and the CNI plugin use. `sdnd --dev` runs one
// server that bootstraps a single-voter cluster by itself: the default a
// newcomer starts with.
//
// Usage:
//
//	sdnd --dev [--data-dir DIR] [--listen ADDR] [--raft-addr ADDR]
//	sdnd --server --bootstrap --node-name NAME ...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sdn-dev/sdn/cluster"
	"github.com/sdn-dev/sdn/sdnd/api"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// options are sdnd's settings.
type options struct {
	dev       bool
	server    bool
	bootstrap bool
	dataDir   string
	listen    string
	raftAddr  string
	advertise string
	nodeName  string
	logLevel  string
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	host, _ := os.Hostname()
	host = strings.ToLower(host)
	fs := flag.NewFlagSet("sdnd", flag.ContinueOnError)
	fs.BoolVar(&o.dev, "dev", false, "run one server that bootstraps a single-voter cluster (plaintext gRPC, for trying sdn out)")
	fs.BoolVar(&o.server, "server", false, "run the server role (raft voter and API)")
	fs.BoolVar(&o.bootstrap, "bootstrap", false, "with --server: start a new cluster with this server as the only voter if it has no raft state")
	fs.StringVar(&o.dataDir, "data-dir", "/var/lib/sdnd", "directory for the raft log, snapshots and state")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:7420", "gRPC API address")
	fs.StringVar(&o.raftAddr, "raft-addr", "127.0.0.1:7421", "raft address")
	fs.StringVar(&o.advertise, "raft-advertise", "", "raft address peers dial (default: --raft-addr)")
	fs.StringVar(&o.nodeName, "node-name", host, "this host's name (also its raft server id)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.dev {
		o.server, o.bootstrap = true, true
	}
	if !o.server {
		return nil, errors.New("nothing to run: use --dev, or --server (the agent role arrives with the datapath)")
	}
	if o.nodeName == "" {
		return nil, errors.New("--node-name is empty and the hostname is unknown")
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "sdnd:", err)
		os.Exit(2)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "sdnd: --log-level:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		log.Error("sdnd stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o *options, log *slog.Logger) error {
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	dir, _ := filepath.Abs(o.dataDir)
	srv, err := cluster.NewServer(cluster.Config{
		DataDir: dir, ID: o.nodeName, RaftAddr: o.raftAddr, Advertise: o.advertise,
		Bootstrap: o.bootstrap, Logger: log,
	})
	if err != nil {
		return err
	}
	defer srv.Shutdown()

	lis, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen for the API on %s: %w", o.listen, err)
	}
	g := grpc.NewServer()
	a := api.New(srv, log)
	health := a.Install(g)
	health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := srv.WaitLeader(wctx); err == nil {
			health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
			log.Info("ready", "api", lis.Addr().String(), "leader", srv.Leader())
		}
	}()
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(lis) }()
	log.Info("sdnd started", "node", o.nodeName, "data_dir", dir, "api", lis.Addr().String(), "raft", o.raftAddr, "dev", o.dev)
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-errc:
		return fmt.Errorf("API server: %w", err)
	}
	health.Shutdown()
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		g.Stop()
	}
	return nil
}
