package api

import (
	"context"
	"net/netip"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Attach adds a workload (CNI ADD, `sdnctl attach`) and returns what the
// host needs to plumb its interface.
func (s *Server) Attach(ctx context.Context, req *sdnv1.AttachWorkloadRequest) (*sdnv1.AttachWorkloadResponse, error) {
	res, err := s.propose(ctx, command.AttachWorkload, req)
	if err != nil {
		return nil, err
	}
	w := res.Workload
	out := &sdnv1.AttachWorkloadResponse{Workload: w, Revision: res.Revision}
	err = s.cluster.FSM().View(func(tx *state.Tx) error {
		n, ok := tx.Node(w.Node)
		if !ok {
			return status.Errorf(codes.NotFound, "host %q vanished while attaching", w.Node)
		}
		out.GatewayIp = n.GatewayIp
		if p, err := netip.ParsePrefix(n.Subnet); err == nil {
			out.PrefixLength = uint32(p.Bits())
		}
		if c := tx.Cluster(); c != nil {
			out.Mtu = c.EffectiveMtu
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Detach removes a workload; removing one that is gone succeeds.
func (s *Server) Detach(ctx context.Context, req *sdnv1.DetachWorkloadRequest) (*sdnv1.DetachWorkloadResponse, error) {
	res, err := s.propose(ctx, command.DetachWorkload, req)
	if err != nil {
		return nil, err
	}
	return &sdnv1.DetachWorkloadResponse{Removed: res.Removed, Revision: res.Revision}, nil
}
