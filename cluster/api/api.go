// Package api serves sdn's gRPC API on top of a cluster.Server: it
// converts requests into commands (package command) that the raft server
// proposes and the state machine (package fsm) applies, maps refusals to
// gRPC statuses, reads the state for List and Watch, and keeps the agents'
// realization reports. It holds no state of its own beyond those reports.
// sdnd wires it: the listeners, TLS and the gRPC server are its.
//
// Any server answers any call: a follower forwards writes, linearizable
// reads and realization reports to the leader (routes.go says which call
// goes where; forward.go does it, a little within the caller's deadline,
// and again to the next leader if the one it went to fell silent), and
// serves watches and stale reads from its own state. Who may call what is
// roles.go's (authz.go checks it). The ClusterService (cluster.go) lists
// and changes the raft servers.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sdn-dev/sdn/cluster"
	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/feed"
	"github.com/sdn-dev/sdn/cluster/fsm"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Server implements the sdn v1 services.
type Server struct {
	sdnv1.UnimplementedConfigServiceServer
	sdnv1.UnimplementedNodeServiceServer
	sdnv1.UnimplementedWorkloadServiceServer
	sdnv1.UnimplementedStatusServiceServer
	sdnv1.UnimplementedClusterServiceServer
	sdnv1.UnimplementedSnapshotServiceServer
	sdnv1.UnimplementedPolicyServiceServer
	sdnv1.UnimplementedNameServiceServer

	cluster    *cluster.Server
	realized   *cluster.Realization
	live       *cluster.Liveness
	peers      *Peers
	hostDial   []grpc.DialOption
	formation  Formation
	leaderWait time.Duration
	authz      bool
	log        *slog.Logger
	now        func() time.Time
	chunkSize  int         // changes in one watch snapshot chunk, at most
	chunkBytes int         // and bytes
	checks     stateChecks // statecheck.go
	// feed serves filtered watches (nil without a raft server, or when it
	// could not load: every watch is then served the original way).
	feed          *feed.Feed
	snapshotSlots chan struct{}
	// relays holds, on a follower, the heartbeats and reports agents gave
	// it until they are relayed to the leader (relay.go).
	relays *relayer
	// started is when the API was made (a follower that never heard from a
	// leader counts its silence from then).
	started time.Time
}

// Options are the API's settings beyond the raft server.
type Options struct {
	// Peers reaches the other servers (forwarding, members, joins); nil
	// makes a pool with plaintext connections (tests, a single server).
	Peers *Peers
	// Formation answers Hello while this server forms a cluster
	// (--bootstrap-expect, --join); nil when it does not.
	Formation Formation
	// LeaderWait bounds how long a call that needs the leader waits for
	// an election; 0 means 5 s.
	LeaderWait time.Duration
	// Liveness holds the hosts' heartbeats (this server's, while it
	// leads); the caller runs its loop (cluster.Server.RunLiveness). nil
	// makes one with the default down-after time that nothing acts on.
	Liveness *cluster.Liveness
	// HostDialOptions are how this server dials hosts' datapath services
	// (node/dpsvc) for traces and rule counters; the API adds
	// grpc.WithAuthority(NODE) per host. nil: plaintext.
	HostDialOptions []grpc.DialOption
	// Authorize admits each call by the role of the caller's certificate
	// (authz.go, roles.go); for a grpc.Server with mutual TLS. False:
	// plaintext, every call admitted.
	Authorize bool
}

// Formation is the cluster-forming side of a server (cluster/join): it
// learns of the servers a Hello names, and tells which it knows and how
// many it expects.
type Formation interface {
	Learn(peers []cluster.Peer) (expect int, known []cluster.Peer)
}

// New returns the API over a raft server.
func New(c *cluster.Server, log *slog.Logger, opts Options) *Server {
	if opts.Peers == nil {
		opts.Peers = NewPeers(grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if opts.HostDialOptions == nil {
		opts.HostDialOptions = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	if opts.LeaderWait <= 0 {
		opts.LeaderWait = defaultLeaderWait
	}
	if opts.Liveness == nil {
		opts.Liveness = cluster.NewLiveness(0, nil)
	}
	if c != nil {
		opts.Liveness.UseTerm(c.Term)
	}
	if unsafeFollowerReads {
		log.Warn("UNSAFE, FOR TESTS ONLY: " + UnsafeFollowerReadsEnv + "=1: followers answer linearizable reads from their own state, which may be stale; unset it")
	}
	s := &Server{cluster: c, realized: cluster.NewRealization(), live: opts.Liveness, peers: opts.Peers, hostDial: opts.HostDialOptions, formation: opts.Formation,
		leaderWait: opts.LeaderWait, authz: opts.Authorize, log: log, now: time.Now, chunkSize: 500, chunkBytes: 1 << 20,
		snapshotSlots: make(chan struct{}, snapshotSlots), relays: newRelayer(), started: time.Now()}
	if c != nil {
		go s.runRelay()
		f, err := feed.New(c.FSM(), c.Hub(), feed.Options{Log: log, OnRevision: func(rev uint64, aud feed.Audience, reset bool) {
			s.realized.Need(rev, aud.All, aud.Hosts, reset)
		}})
		if err != nil {
			log.Error("the watch feed did not start; every watch is served unfiltered", "err", err)
		}
		s.feed = f
	}
	return s
}

// Install adds the services, gRPC health and reflection to g, which must
// have been made with ServerOptions.
func (s *Server) Install(g *grpc.Server) *health.Server {
	sdnv1.RegisterConfigServiceServer(g, s)
	sdnv1.RegisterNodeServiceServer(g, s)
	sdnv1.RegisterWorkloadServiceServer(g, s)
	sdnv1.RegisterStatusServiceServer(g, s)
	sdnv1.RegisterClusterServiceServer(g, s)
	sdnv1.RegisterSnapshotServiceServer(g, s)
	sdnv1.RegisterPolicyServiceServer(g, s)
	sdnv1.RegisterNameServiceServer(g, s)
	h := health.NewServer()
	healthpb.RegisterHealthServer(g, h)
	reflection.Register(g)
	return h
}

// propose commits a command and maps refusals to gRPC statuses.
func (s *Server) propose(ctx context.Context, typ command.Type, msg proto.Message) (*fsm.Result, error) {
	res, err := s.cluster.Propose(ctx, typ, msg)
	if err != nil {
		return nil, toStatus(err)
	}
	return res, nil
}

// toStatus maps cluster errors to gRPC statuses; refusals carry their
// violations as an ApplyError detail.
func toStatus(err error) error {
	var ce *fsm.Error
	var nl *cluster.ErrNotLeader
	var de *cluster.DiskError
	switch {
	case errors.As(err, &ce):
		code := codes.InvalidArgument
		switch ce.Code {
		case fsm.CodeConflict:
			code = codes.FailedPrecondition
		case fsm.CodeNotFound:
			code = codes.NotFound
		case fsm.CodeExhausted:
			code = codes.ResourceExhausted
		}
		st := status.New(code, ce.Error())
		if d, derr := st.WithDetails(&sdnv1.ApplyError{Violations: ce.Violations}); derr == nil {
			st = d
		}
		return st.Err()
	case errors.As(err, &nl):
		return status.Error(codes.Unavailable, nl.Error())
	case errors.As(err, &de):
		// gRPC's own description of ResourceExhausted: "perhaps the
		// entire file system is out of space".
		return status.Error(codes.ResourceExhausted, de.Error())
	case errors.Is(err, cluster.ErrRestoreInProgress):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Internal, err.Error())
}

// read makes the next state read linearizable unless stale is allowed.
func (s *Server) read(ctx context.Context, stale bool) error {
	if stale || (unsafeFollowerReads && !s.cluster.IsLeader()) {
		return nil
	}
	if err := s.cluster.ReadBarrier(ctx); err != nil {
		return toStatus(fmt.Errorf("linearizable read: %w", err))
	}
	return nil
}
