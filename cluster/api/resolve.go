package api

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// ResolveName serves sdnv1.NameService: the hosts' DNS servers (node/dns)
// ask it for workload names, which their agents do not hold (an agent
// holds its own host's workloads only). It answers a workload's address
// by network and name from this server's own state, without asking the
// leader (routes.go: local): the hosts cache answers for seconds, so a
// follower's state a few entries behind is as good, and a host keeps
// resolving names while the cluster has no leader.
func (s *Server) ResolveName(ctx context.Context, req *sdnv1.ResolveNameRequest) (*sdnv1.ResolveNameResponse, error) {
	if req.GetNetwork() == "" || req.GetName() == "" {
		return nil, status.Errorf(codes.InvalidArgument, "resolve %q: a network and a name are both needed", model.WorkloadKey(req.GetNetwork(), req.GetName()))
	}
	out := &sdnv1.ResolveNameResponse{}
	err := s.cluster.FSM().View(func(tx *state.Tx) error {
		out.Revision = tx.Meta().Revision
		if w, ok := tx.Workload(req.Network, req.Name); ok {
			out.Found, out.Ip, out.Node = true, w.GetIp(), w.GetNode()
		}
		return nil
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return out, nil
}
