package leaks

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Service serves IPAMService over a Loop.
type Service struct {
	sdnv1.UnimplementedIPAMServiceServer
	l *Loop
}

// NewService returns the IPAM service of the loop's host.
func NewService(l *Loop) *Service { return &Service{l: l} }

// HostLeaks reports this host's gone attachments and leftovers.
func (s *Service) HostLeaks(ctx context.Context, _ *sdnv1.HostLeaksRequest) (*sdnv1.HostLeaksResponse, error) {
	rep, err := s.l.Report(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "host %s: %v", s.l.cfg.Node, err)
	}
	return rep, nil
}

// ReleaseHostLeaks makes a pass now.
func (s *Service) ReleaseHostLeaks(ctx context.Context, req *sdnv1.ReleaseHostLeaksRequest) (*sdnv1.ReleaseHostLeaksResponse, error) {
	out, err := s.l.Pass(ctx, req.DryRun)
	resp := &sdnv1.ReleaseHostLeaksResponse{Node: s.l.cfg.Node, Actions: out.Actions, Skipped: out.Skipped}
	if err != nil {
		// What was done is in the log; the caller learns what failed.
		return nil, status.Errorf(codes.Internal, "host %s: %d actions done, then: %v", s.l.cfg.Node, len(out.Actions), err)
	}
	return resp, nil
}
