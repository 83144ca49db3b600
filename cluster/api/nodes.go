package api

import (
	"context"
	"fmt"
	"time"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Register adds a host, or refreshes a host that registers again. A
// registration is a sign of life.
func (s *Server) Register(ctx context.Context, req *sdnv1.RegisterNodeRequest) (*sdnv1.RegisterNodeResponse, error) {
	// The host is alive before its registration commits: heard from
	// only after, a registration that took long under load could find
	// it marked down already (silent since this leadership began).
	s.live.Heartbeat(req.Name)
	res, err := s.propose(ctx, command.RegisterNode, req)
	if err != nil {
		return nil, err
	}
	s.live.Heartbeat(req.Name)
	out := &sdnv1.RegisterNodeResponse{Node: res.Node, Cluster: res.Cluster, Revision: res.Revision}
	if err := s.cluster.FSM().View(func(tx *state.Tx) error { out.ClusterId = tx.ClusterID(); return nil }); err != nil {
		return nil, toStatus(err)
	}
	return out, nil
}

// Remove decommissions a host: its subnet is released, the workloads
// attached there removed, those declared in HCL for it pending again. A
// host that is up (not marked down) is removed only with force: its
// workloads may still run, and its agent would register it again.
func (s *Server) Remove(ctx context.Context, req *sdnv1.RemoveNodeRequest) (*sdnv1.RemoveNodeResponse, error) {
	node, err := s.removable(req.Name, req.Force, "or remove it anyway with --force")
	if err != nil {
		return nil, err
	}
	// force is the API's decision, never part of the command.
	res, err := s.propose(ctx, command.RemoveNode, &sdnv1.RemoveNodeRequest{Name: req.Name})
	if err != nil {
		return nil, err
	}
	s.realized.Forget(req.Name)
	return &sdnv1.RemoveNodeResponse{Revision: res.Revision, Changes: res.Changes, Subnet: node.GetSubnet()}, nil
}

// removable returns the host about to be removed (nil if unknown, and the
// command then says so) or refuses when it is up and force is not given;
// orForce ends the refusal with how to override it.
func (s *Server) removable(name string, force bool, orForce string) (*sdnv1.Node, error) {
	var (
		node      *sdnv1.Node
		workloads int
	)
	err := s.cluster.FSM().View(func(tx *state.Tx) error {
		node, _ = tx.Node(name)
		for _, w := range tx.Workloads("") {
			if w.Node == name {
				workloads++
			}
		}
		return nil
	})
	if err != nil {
		return nil, toStatus(err)
	}
	if node != nil && node.DownSinceUnixMs == 0 && !force {
		return nil, status.Errorf(codes.FailedPrecondition,
			"host %s is up (%s): removing it releases its subnet %s and the addresses of its %d workloads while they may still run, and its agent would register it again; drain it (`sdnctl node drain %s`), stop its agent and let it be marked down (after %s without a heartbeat), %s",
			name, s.heardFrom(name), node.Subnet, workloads, name, s.live.DownAfter(), orForce)
	}
	return node, nil
}

// heardFrom says when the leader last heard from a host.
func (s *Server) heardFrom(host string) string {
	t, ok := s.live.LastHeartbeat(host)
	if !ok {
		return "not heard from since this leader took over"
	}
	return fmt.Sprintf("last heartbeat %s ago", s.now().Sub(t).Round(100*time.Millisecond))
}

// ReportRealized records the revision a host's datapath matches (in the
// leader's memory; a follower relays it). A report is a sign of life too.
func (s *Server) ReportRealized(ctx context.Context, req *sdnv1.ReportRealizedRequest) (*sdnv1.ReportRealizedResponse, error) {
	if req.Node == "" {
		return nil, status.Error(codes.InvalidArgument, "report names no node")
	}
	if !s.cluster.IsLeader() {
		// A follower relays it, with others, at once (relay.go).
		if err := s.relays.admit(req.Node); err != nil {
			return nil, err
		}
		s.relays.add(&sdnv1.HostSignal{Node: req.Node, Alive: true, Report: req}, true)
		return &sdnv1.ReportRealizedResponse{}, nil
	}
	s.realized.Report(req.Node, req.Revision, req.Error, s.now())
	s.live.Heartbeat(req.Node)
	return &sdnv1.ReportRealizedResponse{}, nil
}

// Heartbeat records, in the leader's memory only, that a host's agent is
// alive; a follower relays it there. A host that is not registered gets
// NotFound, and its agent registers again.
func (s *Server) Heartbeat(ctx context.Context, req *sdnv1.HeartbeatRequest) (*sdnv1.HeartbeatResponse, error) {
	if req.Node == "" {
		return nil, status.Error(codes.InvalidArgument, "heartbeat names no node")
	}
	// The feed's memory first; the store for a host it does not know (yet).
	known := s.feed != nil && s.feed.HasHost(req.Node)
	if !known {
		if err := s.cluster.FSM().View(func(tx *state.Tx) error { _, known = tx.Node(req.Node); return nil }); err != nil {
			return nil, toStatus(err)
		}
	}
	if !known {
		return nil, status.Errorf(codes.NotFound, "host %s is not registered (it was removed, or released after being down longer than the cluster's node_release_after); its agent registers it again", req.Node)
	}
	if !s.cluster.IsLeader() {
		// A follower relays heartbeats to the leader in batches, once a
		// second (relay.go): at 5,000 hosts that is what keeps them cheap.
		if err := s.relays.admit(req.Node); err != nil {
			return nil, err
		}
		s.relays.add(&sdnv1.HostSignal{Node: req.Node, Alive: true, Learned: req.Realized}, false)
		return &sdnv1.HeartbeatResponse{}, nil
	}
	s.live.Heartbeat(req.Node)
	if rep := req.Realized; rep != nil {
		s.realized.Learn(req.Node, rep.Revision, rep.Error, s.now())
	}
	return &sdnv1.HeartbeatResponse{}, nil
}

// Drain refuses new workloads on a host (or accepts them again); the
// workloads already there keep running.
func (s *Server) Drain(ctx context.Context, req *sdnv1.DrainNodeRequest) (*sdnv1.DrainNodeResponse, error) {
	res, err := s.propose(ctx, command.DrainNode, req)
	if err != nil {
		return nil, err
	}
	out := &sdnv1.DrainNodeResponse{Revision: res.Revision, Changed: len(res.Changes) > 0}
	err = s.cluster.FSM().View(func(tx *state.Tx) error {
		for _, w := range tx.Workloads("") {
			if w.Node == req.Name {
				out.Workloads++
			}
		}
		return nil
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return out, nil
}
