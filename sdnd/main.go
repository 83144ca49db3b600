// Command sdnd is the sdn daemon. It runs two roles, alone or together:
//
//   - server: holds the desired state in raft (hashicorp/raft, with its log
//     and the state on bbolt) and serves the gRPC API that sdnctl, agents
//     and the CNI plugin use;
//   - agent: registers this host with the servers, follows their watch
//     stream, programs this host's Open vSwitch (datapath/host), and serves
//     the CNI plugin on a root-only unix socket (node/cnisrv).
//
// `sdnd --dev` runs one server that bootstraps a single-voter cluster by
// itself, the default a newcomer starts with; `sdnd --dev --agent
// --underlay-iface eth0` makes the same process this host's agent too.
//
// A production cluster has 3 or 5 servers. Each has one cluster address
// (--raft-addr, by default its first host:port --listen) that carries both
// raft and the API; any server answers any call, forwarding writes and
// linearizable reads to the leader. Agents list several servers and move
// to the next when one fails.
//
// Usage:
//
//	sdnd --dev [--agent --underlay-iface IFACE] [--data-dir DIR] [--listen ADDR] ...
//	sdnd --server --node-name NAME --listen ADDR[,ADDR] [--raft-addr ADDR] [--raft-advertise ADDR]
//	     with one of: --bootstrap                     a new single-voter cluster
//	                  --peers ID=ADDR,ID=ADDR,...     the whole cluster, same list on every server
//	                  --bootstrap-expect N --join ADDR,...   servers find each other
//	                  --join ADDR,...                 be added to a running cluster
//	sdnd --agent --servers ADDR[,ADDR] --underlay-iface IFACE [--datapath netdev|system]
//	     [--heartbeat-interval 5s]      servers mark a host down after --node-down-after (30s)
//	                                    without a heartbeat; the leader holds heartbeats in memory
//	sdnd --config FILE   (HCL attributes named like the flags; flags win)
//
// Every connection is mutual TLS (--tls-ca, --tls-cert, --tls-key; see
// docs/security.md and package pki): between servers (raft and the API),
// from agents and from sdnctl; the API admits each call by the role of the
// caller's certificate. --server and --agent refuse to start without TLS
// files unless plaintext is asked for: --dev (one server, trying sdn out)
// or --insecure-plaintext. The CNI plugin's unix socket is root only and
// needs no TLS. `sdnctl tls init` and `sdnctl tls issue` make the CA and
// the certificates; `sdnd tls` did too and now only says to run sdnctl
// (exit code 2).
//
// SIGTERM or SIGINT stops it gracefully: the CNI service finishes what it
// is doing, the agent stops following (the host keeps its flows), and the
// server hands leadership to another voter if it leads, then stops raft.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"

	"github.com/sdn-dev/sdn/node"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "tls" {
		fmt.Fprintln(os.Stderr, tlsMoved(os.Args[2:]))
		os.Exit(2)
	}
	o, err := parseFlags(os.Args[1:], machineEnv())
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "sdnd:", err)
		os.Exit(2)
	}
	sec, err := security(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdnd:", err)
		os.Exit(1)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: o.logLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, sec, log); err != nil {
		log.Error("sdnd stopped", "err", err)
		os.Exit(1)
	}
}

// tlsMoved is what `sdnd tls VERB ...` says: the commands that make the
// certificates are sdnctl's, so sdnd keeps one command line, its flags.
func tlsMoved(args []string) string {
	verb := "init"
	if len(args) > 0 && (args[0] == "issue" || args[0] == "list") {
		verb = args[0]
	}
	return fmt.Sprintf("sdnd tls has moved to sdnctl: run \"sdnctl tls %s ...\" (same flags; \"sdnctl tls --help\" lists them)", verb)
}

// run starts the roles o asks for and runs until ctx ends or a role fails;
// the agent stops before the server it may be talking to.
func run(ctx context.Context, o *options, sec connSecurity, log *slog.Logger) error {
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	failed := make(chan error, 2)
	switch {
	case sec.tls():
		log.Info("mutual TLS on every connection", "identity", sec.self.String(), "ca", o.tlsCA)
	case sec.plaintext != "--dev":
		log.Warn("plaintext gRPC and raft (" + sec.plaintext + "): no connection is authenticated; whoever reaches the API can read and change the whole network")
	}
	if o.server {
		s, err := startServer(ctx, o, sec, log, failed)
		if err != nil {
			return err
		}
		defer s.stop()
	}
	if o.agent {
		a, err := node.Start(ctx, hostConfig(o, sec, log.With("role", "agent")), failed)
		if err != nil {
			return err
		}
		defer a.Stop()
	}
	log.Info("sdnd started", "node", o.nodeName, "server", o.server, "agent", o.agent, "dev", o.dev, "data_dir", o.dataDir)
	select {
	case <-ctx.Done():
		log.Info("shutting down")
		return nil
	case err := <-failed:
		return err
	}
}

// hostConfig is the host role's configuration from sdnd's options.
func hostConfig(o *options, sec connSecurity, log *slog.Logger) node.Config {
	c := node.Config{
		NodeName: o.nodeName, DataDir: o.dataDir, UnderlayIface: o.underlayIface,
		Servers: o.servers, DialOptions: sec.dialOptions(), Datapath: o.datapath,
		OVSRunDir: o.ovsRunDir, OVSDBDir: o.ovsDBDir, CNISocket: o.cniSocket, DockerSocket: o.dockerSocket,
		HeartbeatInterval: o.heartbeatInterval, AlsoServer: o.server, Logger: log,
		DatapathListen: o.datapathListen, DatapathTLS: sec.hostServiceTLS,
	}
	if sec.tls() && !o.server {
		// A server's own state holds the revocations; an agent asks.
		c.Started = func(ctx context.Context, conn *grpc.ClientConn) {
			pollRevoked(ctx, sdnv1.NewClusterServiceClient(conn), sec, log)
		}
	}
	return c
}
