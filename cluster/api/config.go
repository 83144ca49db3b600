package api

import (
	"context"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/fsm"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Apply commits (or with dry_run, plans) a declarative change.
func (s *Server) Apply(ctx context.Context, req *sdnv1.ApplyRequest) (*sdnv1.ApplyResponse, error) {
	cmd := stripInput(req)
	var res *fsm.Result
	var err error
	if req.DryRun {
		if err := s.read(ctx, false); err != nil {
			return nil, err
		}
		res, err = s.cluster.FSM().DryRun(command.ApplyConfig, cmd)
		if err == nil && res.Err != nil {
			err = res.Err
		}
	} else {
		res, err = s.cluster.Propose(ctx, command.ApplyConfig, cmd)
	}
	if err != nil {
		attachRanges(err, req)
		return nil, toStatus(err)
	}
	return &sdnv1.ApplyResponse{Revision: res.Revision, Changes: res.Changes}, nil
}

// stripInput clears input-only fields before a request goes into the log.
func stripInput(req *sdnv1.ApplyRequest) *sdnv1.ApplyRequest {
	req = proto.Clone(req).(*sdnv1.ApplyRequest)
	model.ClearRanges(req)
	req.DryRun = false
	return req
}

// attachRanges points each violation at the source text the request said
// the object or attribute came from (older sdnctl sends its ranges; a
// newer one keeps them and attaches them itself).
func attachRanges(err error, req *sdnv1.ApplyRequest) {
	if ce, ok := err.(*fsm.Error); ok {
		model.AttachRanges(ce.Violations, req)
	}
}

// Delete removes one object.
func (s *Server) Delete(ctx context.Context, req *sdnv1.DeleteRequest) (*sdnv1.DeleteResponse, error) {
	kind, _ := model.ParseKind(req.Kind)
	if kind == model.KindNode {
		// The same guard as `sdnctl node remove`, which alone can force.
		if _, err := s.removable(req.Name, false, "or remove it anyway with `sdnctl node remove --force "+req.Name+"`"); err != nil {
			return nil, err
		}
	}
	res, err := s.propose(ctx, command.Delete, req)
	if err != nil {
		return nil, err
	}
	if kind == model.KindNode {
		s.realized.Forget(req.Name)
	}
	return &sdnv1.DeleteResponse{Revision: res.Revision}, nil
}
