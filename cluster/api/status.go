package api

import (
	"context"
	"fmt"
	"time"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Status reports, per host, the desired revision against the realized
// one, and its liveness: state, last heartbeat (the leader's memory), down
// since, drained. It is answered by the leader after a read barrier: a
// deposed leader that has not noticed yet (cut off from the others) must
// not show its stale desired revision and reports. It carries the latest
// comparison of the servers' states, or a new one when asked
// (statecheck.go).
func (s *Server) Status(ctx context.Context, req *sdnv1.StatusRequest) (*sdnv1.StatusResponse, error) {
	if err := s.read(ctx, false); err != nil {
		return nil, err
	}
	out := &sdnv1.StatusResponse{StateCheck: s.checks.last.Load()}
	if req.CheckState {
		rep, err := s.checkStates(ctx, s.now())
		if err != nil {
			return nil, err
		}
		out.StateCheck = rep
	}
	var nodes []*sdnv1.Node
	err := s.cluster.FSM().View(func(tx *state.Tx) error {
		m := tx.Meta()
		out.Revision, out.CompactedRevision, out.ClusterId = m.Revision, m.Compacted, tx.ClusterID()
		nodes = tx.Nodes()
		return nil
	})
	if err != nil {
		return nil, toStatus(err)
	}
	for _, n := range nodes {
		ns := &sdnv1.NodeStatus{Name: n.Name, State: nodeState(n), DownSinceUnixMs: n.DownSinceUnixMs, Drained: n.Drained}
		if r, ok := s.realized.Get(n.Name); ok {
			ns.RealizedRevision, ns.Error = r.Revision, r.Error
			ns.LastReportUnixMs = r.At.UnixMilli()
		}
		// A filtered watch leaves a host at the last revision that
		// concerned it: current says whether that is all it needs.
		ns.Current = s.realized.Realized(n.Name, out.Revision)
		ns.NeededRevision = s.realized.Needed(n.Name, out.Revision)
		if t, ok := s.live.LastHeartbeat(n.Name); ok {
			ns.LastHeartbeatUnixMs = t.UnixMilli()
		}
		out.Nodes = append(out.Nodes, ns)
	}
	return out, nil
}

// nodeState is a stored host's state as Status shows it.
func nodeState(n *sdnv1.Node) sdnv1.NodeState {
	switch {
	case n.DownSinceUnixMs != 0:
		return sdnv1.NodeState_NODE_STATE_DOWN
	case n.Drained:
		return sdnv1.NodeState_NODE_STATE_DRAINED
	}
	return sdnv1.NodeState_NODE_STATE_READY
}

// waitLeaderCheck is how often a WaitRealized stream checks that its
// server still leads.
const waitLeaderCheck = 500 * time.Millisecond

// waitPace is the shortest time between two looks of a WaitRealized
// stream at the hosts.
const waitPace = 20 * time.Millisecond

// waitTimedOut is how a WaitRealized stream ends when its time is up (or
// its caller left).
func waitTimedOut(callerCtx context.Context, pending []string, hosts int, rev uint64, timeout time.Duration) error {
	if callerCtx.Err() != nil {
		return callerCtx.Err()
	}
	return status.Error(codes.DeadlineExceeded, fmt.Sprintf("%d of %d hosts have not realized revision %d after %s: %s", len(pending), hosts, rev, timeout, joinMax(pending, 10)))
}

// hostsUpDown lists the registered hosts, up and down: from the watch
// feed's memory when there is one (reading 5,000 nodes from the store
// takes milliseconds).
func (s *Server) hostsUpDown() (up, down []string, err error) {
	if s.feed != nil {
		rev, up, down := s.feed.Hosts()
		if head, _ := s.cluster.Hub().Wait(); rev >= head {
			return up, down, nil
		}
		// The feed has not taken the last revision yet: the store.
	}
	err = s.cluster.FSM().View(func(tx *state.Tx) error {
		for _, n := range tx.Nodes() {
			if n.DownSinceUnixMs != 0 {
				down = append(down, n.Name)
			} else {
				up = append(up, n.Name)
			}
		}
		return nil
	})
	return up, down, toStatus(err)
}

// WaitRealized streams progress until every registered host has realized
// the revision, or the timeout passes.
func (s *Server) WaitRealized(req *sdnv1.WaitRealizedRequest, stream grpc.ServerStreamingServer[sdnv1.WaitRealizedProgress]) error {
	timeout := time.Duration(req.TimeoutMs) * time.Millisecond
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(stream.Context(), timeout)
	defer cancel()
	if err := s.read(ctx, false); err != nil {
		return err
	}
	var last *sdnv1.WaitRealizedProgress
	// Realized revisions live in the leader's memory: a server that stops
	// leading ends the stream, and the caller asks the new leader.
	lead := time.NewTicker(waitLeaderCheck)
	defer lead.Stop()
	for {
		if !s.cluster.IsLeader() {
			return status.Error(codes.Unavailable, "this server stopped leading while waiting for hosts to realize the revision; ask the new leader")
		}
		changed := s.realized.Changed()
		_, revChanged := s.cluster.Hub().Wait()
		if s.cluster.Hub().Closed() {
			return status.Error(codes.Unavailable, "server shutting down; ask another server")
		}
		// Hosts marked down are not waited for: they get the revision
		// when they come back.
		hosts, down, err := s.hostsUpDown()
		if err != nil {
			return err
		}
		pending := s.realized.Pending(hosts, req.Revision)
		p := &sdnv1.WaitRealizedProgress{Realized: uint32(len(hosts) - len(pending)), Total: uint32(len(hosts)), Pending: pending, Done: len(pending) == 0, Down: down}
		if last == nil || p.Realized != last.Realized || p.Total != last.Total || len(p.Down) != len(last.Down) || p.Done {
			if err := stream.Send(p); err != nil {
				return err
			}
			last = p
		}
		if p.Done {
			return nil
		}
		select {
		case <-changed:
		case <-revChanged:
		case <-lead.C:
		case <-ctx.Done():
			return waitTimedOut(stream.Context(), pending, len(hosts), req.Revision, timeout)
		}
		// Reports arrive by the thousand in a burst: look again at most
		// every waitPace, not once per report.
		select {
		case <-time.After(waitPace):
		case <-ctx.Done():
			return waitTimedOut(stream.Context(), pending, len(hosts), req.Revision, timeout)
		}
	}
}

// Compact drops watch history up to a revision.
func (s *Server) Compact(ctx context.Context, req *sdnv1.CompactRequest) (*sdnv1.CompactResponse, error) {
	res, err := s.propose(ctx, command.Compact, req)
	if err != nil {
		return nil, err
	}
	return &sdnv1.CompactResponse{CompactedRevision: res.Compacted}, nil
}

func joinMax(items []string, n int) string {
	s := ""
	for i, it := range items {
		if i == n {
			return s + fmt.Sprintf(", and %d more", len(items)-n)
		}
		if i > 0 {
			s += ", "
		}
		s += it
	}
	return s
}
