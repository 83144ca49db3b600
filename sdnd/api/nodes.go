package api

import (
	"context"

	"github.com/sdn-dev/sdn/cluster/command"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Register adds a host, or refreshes a host that registers again.
func (s *Server) Register(ctx context.Context, req *sdnv1.RegisterNodeRequest) (*sdnv1.RegisterNodeResponse, error) {
	res, err := s.propose(ctx, command.RegisterNode, req)
	if err != nil {
		return nil, err
	}
	return &sdnv1.RegisterNodeResponse{Node: res.Node, Cluster: res.Cluster, Revision: res.Revision}, nil
}

// Remove decommissions a host.
func (s *Server) Remove(ctx context.Context, req *sdnv1.RemoveNodeRequest) (*sdnv1.RemoveNodeResponse, error) {
	res, err := s.propose(ctx, command.RemoveNode, req)
	if err != nil {
		return nil, err
	}
	s.realized.Forget(req.Name)
	return &sdnv1.RemoveNodeResponse{Revision: res.Revision}, nil
}

// ReportRealized records the revision a host's datapath matches.
func (s *Server) ReportRealized(ctx context.Context, req *sdnv1.ReportRealizedRequest) (*sdnv1.ReportRealizedResponse, error) {
	if req.Node == "" {
		return nil, status.Error(codes.InvalidArgument, "report names no node")
	}
	s.realized.Report(req.Node, req.Revision, req.Error, s.now())
	return &sdnv1.ReportRealizedResponse{}, nil
}
