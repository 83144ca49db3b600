package cnisrv

import (
	"context"
	"errors"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// CNIGC is a CNI GC: it releases every attachment of this host in the
// request's network that a CNI ADD made (origin CNI) and that is not in
// the runtime's list of valid attachments, as DEL would: detach by owner on
// the servers, unplug the port, delete the veth pair. It goes on past a
// failed release and returns every error; what it released is in the
// answer either way (as "network/name").
//
// The spec has the runtime hold back ADD and DEL while it runs GC; another
// runtime on the same host attaching to the same network does not, and its
// attachments are not in this runtime's list: such a network must set
// "disableGC" in all but one runtime's configuration (cni package comment).
func (s *Server) CNIGC(ctx context.Context, req *sdnv1.CNIGCRequest) (*sdnv1.CNIGCResponse, error) {
	if req.Network == "" {
		return nil, errorf(codes.InvalidArgument, "CNI GC without a network")
	}
	valid := map[[2]string]bool{}
	for _, a := range req.ValidAttachments {
		valid[[2]string{a.GetContainerId(), a.GetIfname()}] = true
	}
	var stale []*sdnv1.CNIRequest
	var names []string
	s.cfg.Agent.View(func(m *model.Desired) {
		for _, w := range m.Workloads {
			o := w.GetOrigin()
			if w.Node != s.cfg.Node || w.Network != req.Network || o.GetKind() != sdnv1.OriginKind_ORIGIN_KIND_CNI ||
				o.GetContainerId() == "" || valid[[2]string{o.GetContainerId(), o.GetIfname()}] {
				continue
			}
			stale = append(stale, &sdnv1.CNIRequest{ContainerId: o.ContainerId, Ifname: o.Ifname, Network: w.Network, Name: w.Name})
		}
	})
	slices.SortFunc(stale, func(a, b *sdnv1.CNIRequest) int { return strings.Compare(a.Name, b.Name) })
	var errs []error
	for _, r := range stale {
		if err := s.release(ctx, r); err != nil {
			errs = append(errs, err)
			continue
		}
		names = append(names, model.WorkloadKey(r.Network, r.Name))
	}
	s.log.Info("CNI GC", "network", req.Network, "valid", len(req.ValidAttachments), "released", names, "failed", len(errs))
	if len(errs) > 0 {
		return &sdnv1.CNIGCResponse{Released: names}, toStatus(errors.Join(errs...))
	}
	return &sdnv1.CNIGCResponse{Released: names}, nil
}

// release removes one stale attachment under its container's lock.
func (s *Server) release(ctx context.Context, r *sdnv1.CNIRequest) error {
	unlock, err := s.locks.lock(ctx, r.ContainerId)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := s.remove(ctx, r); err != nil {
		s.log.Warn("GC: release failed", "container", r.ContainerId, "ifname", r.Ifname, "workload", model.WorkloadKey(r.Network, r.Name), "err", err)
		return err
	}
	s.log.Info("GC: released a stale attachment", "container", r.ContainerId, "ifname", r.Ifname, "workload", model.WorkloadKey(r.Network, r.Name))
	return nil
}
