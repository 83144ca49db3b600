package cnisrv

import (
	"context"
	"net/netip"

	"google.golang.org/grpc/codes"

	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// CNIDel detaches the container's workload and removes its interface. It
// succeeds when there is nothing left to remove; it fails (and the runtime
// retries) when a step could not run, e.g. the servers are unreachable.
func (s *Server) CNIDel(ctx context.Context, req *sdnv1.CNIRequest) (*sdnv1.CNIDelResponse, error) {
	if err := checkRequest(req, false); err != nil {
		return nil, err
	}
	unlock, err := s.locks.lock(ctx, req.ContainerId)
	if err != nil {
		return nil, err
	}
	defer unlock()
	removed, err := s.remove(ctx, req)
	if err != nil {
		s.log.Warn("DEL failed", "container", req.ContainerId, "ifname", req.Ifname, "err", err)
		return nil, toStatus(err)
	}
	s.log.Info("workload deleted", "container", req.ContainerId, "ifname", req.Ifname, "was_attached", removed)
	return &sdnv1.CNIDelResponse{Removed: removed}, nil
}

// CNICheck compares the container's interface with its workload in this
// host's desired state.
func (s *Server) CNICheck(ctx context.Context, req *sdnv1.CNIRequest) (*sdnv1.CNICheckResponse, error) {
	if err := checkRequest(req, true); err != nil {
		return nil, err
	}
	nsPath, err := netnsPath(ctx, req)
	if err != nil {
		return nil, err
	}
	unlock, err := s.locks.lock(ctx, req.ContainerId)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var (
		w    *sdnv1.Workload
		node *sdnv1.Node
		mtu  uint32
		rev  uint64
	)
	s.cfg.Agent.View(func(m *model.Desired) {
		rev = m.Revision
		node = m.Nodes[s.cfg.Node]
		if m.Cluster != nil {
			mtu = m.Cluster.EffectiveMtu
		}
		w = localWorkload(m, s.cfg.Node, req.ContainerId, req.Ifname)
	})
	switch {
	case w == nil:
		return nil, errorf(codes.NotFound, "no workload is attached for container %s interface %s on host %s (desired state revision %d); was ADD run?",
			req.ContainerId, req.Ifname, s.cfg.Node, rev)
	case w.Network != req.Network:
		return nil, errorf(codes.FailedPrecondition, "container %s interface %s is attached to network %s, not %s", req.ContainerId, req.Ifname, w.Network, req.Network)
	case w.Origin.GetNetns() != "" && w.Origin.GetNetns() != req.Netns:
		return nil, errorf(codes.FailedPrecondition, "container %s interface %s was added in network namespace %s, not %s", req.ContainerId, req.Ifname, w.Origin.GetNetns(), req.Netns)
	case node == nil:
		return nil, errorf(codes.Unavailable, "host %s is not in the desired state (revision %d)", s.cfg.Node, rev)
	}
	subnet, err := netip.ParsePrefix(node.Subnet)
	if err != nil {
		return nil, errorf(codes.Internal, "host %s's block %q: %v", s.cfg.Node, node.Subnet, err)
	}
	spec, err := s.spec(req, nsPath, w, uint32(subnet.Bits()), node.GatewayIp, mtu)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := link.CheckWorkload(spec); err != nil {
		return nil, errorf(codes.FailedPrecondition, "%v", err)
	}
	return &sdnv1.CNICheckResponse{}, nil
}
