package api

import (
	"context"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// ListPolicies answers the policies (of one network, the cluster-wide ones
// with network "-", or all) with their status: the workloads each
// selects, the hosts running them, and how many of those reported a
// realized revision at least the policy's last change (the leader's
// reports, like Status). With counters set, the hosts' per-rule counters
// are added (policyCounters).
func (s *Server) ListPolicies(ctx context.Context, req *sdnv1.ListPoliciesRequest) (*sdnv1.ListPoliciesResponse, error) {
	if err := s.read(ctx, false); err != nil {
		return nil, err
	}
	out := &sdnv1.ListPoliciesResponse{}
	err := s.cluster.FSM().View(func(tx *state.Tx) error {
		out.Revision = tx.Meta().Revision
		nets := map[string]*sdnv1.Network{}
		for _, n := range tx.Networks() {
			nets[n.Name] = n
		}
		workloads := tx.Workloads("")
		for _, p := range tx.Policies() {
			if req.Network != "" && p.Network != req.Network && !(req.Network == "-" && p.Network == "") {
				continue
			}
			out.Policies = append(out.Policies, s.withStatus(p, nets, workloads))
		}
		return nil
	})
	if err != nil {
		return nil, toStatus(err)
	}
	if req.Counters {
		s.policyCounters(ctx, out)
	}
	return out, nil
}

// withStatus fills in a policy's status: selected workloads (with an
// address or not), the hosts of those that have one, and how many of the
// hosts realized the policy's revision.
func (s *Server) withStatus(p *sdnv1.Policy, nets map[string]*sdnv1.Network, workloads []*sdnv1.Workload) *sdnv1.Policy {
	p = proto.Clone(p).(*sdnv1.Policy)
	st := &sdnv1.PolicyStatus{}
	hosts := map[string]bool{}
	for _, w := range workloads {
		if !policy.Selects(p, w, nets[w.Network]) {
			continue
		}
		st.Workloads = append(st.Workloads, model.WorkloadKey(w.Network, w.Name))
		if w.Pending == "" && w.Node != "" {
			hosts[w.Node] = true
		}
	}
	st.Hosts = uint32(len(hosts))
	for _, h := range slices.Sorted(maps.Keys(hosts)) {
		if s.realized.Realized(h, p.ModRevision) {
			st.RealizedHosts++
		}
	}
	p.Status = st
	return p
}

// LabelWorkload sets and removes a running workload's labels (one
// revision) and answers the workload as it is now.
func (s *Server) LabelWorkload(ctx context.Context, req *sdnv1.LabelWorkloadRequest) (*sdnv1.LabelWorkloadResponse, error) {
	res, err := s.propose(ctx, command.LabelWorkload, req)
	if err != nil {
		return nil, err
	}
	return &sdnv1.LabelWorkloadResponse{Revision: res.Revision, Workload: res.Workload}, nil
}
