package api

import (
	"context"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// ListPolicies shows what each policy selects and on how many of the
// hosts running those workloads it is realized; LabelWorkload changes
// what it selects.
func TestListPoliciesAndLabelWorkload(t *testing.T) {
	ts := startServer(t)
	setup(t, ts) // remote1 (app=remote1) on host2, whose agent runs
	ctx := context.Background()
	pc := sdnv1.NewPolicyServiceClient(ts.conn)
	nets := []*sdnv1.Network{{Name: "infra", Admin: true}, {Name: "proj1"}, {Name: "proj2"}}
	pol := &sdnv1.Policy{Name: "deny-remote", Network: "proj1", Workloads: &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": "remote1"}}, Isolate: []string{"ingress"}}
	cw := &sdnv1.Policy{Name: "cluster-wide", Workloads: &sdnv1.LabelSelector{MatchLabels: map[string]string{"tier": "x"}}}
	rev := mustApply(t, ts, &sdnv1.ApplyRequest{Networks: nets, Policies: []*sdnv1.Policy{pol, cw}})
	waitRealized(t, ts, rev)

	res, err := pc.ListPolicies(ctx, &sdnv1.ListPoliciesRequest{Network: "proj1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Policies) != 1 {
		t.Fatalf("proj1's policies: %v", res.Policies)
	}
	st := res.Policies[0].Status
	if !slices.Equal(st.Workloads, []string{"proj1/remote1"}) || st.Hosts != 1 || st.RealizedHosts != 1 {
		t.Fatalf("status %v", st)
	}
	if res, _ := pc.ListPolicies(ctx, &sdnv1.ListPoliciesRequest{Network: "-"}); len(res.GetPolicies()) != 1 || res.Policies[0].Name != "cluster-wide" || len(res.Policies[0].Status.Workloads) != 0 {
		t.Fatalf("cluster-wide policies: %v", res.GetPolicies())
	}

	// Relabel remote1: the cluster-wide policy selects it now.
	lr, err := pc.LabelWorkload(ctx, &sdnv1.LabelWorkloadRequest{Network: "proj1", Name: "remote1", Set: map[string]string{"tier": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if lr.Workload.Labels["tier"] != "x" || lr.Workload.Labels["app"] != "remote1" || lr.Revision <= rev {
		t.Fatalf("label answered %v at %d", lr.Workload, lr.Revision)
	}
	waitRealized(t, ts, lr.Revision)
	res, err = pc.ListPolicies(ctx, &sdnv1.ListPoliciesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Policies) != 2 || !slices.Equal(res.Policies[0].Status.Workloads, []string{"proj1/remote1"}) {
		t.Fatalf("all policies: %v", res.Policies)
	}
	_, err = pc.LabelWorkload(ctx, &sdnv1.LabelWorkloadRequest{Network: "proj1", Name: "nosuch", Set: map[string]string{"a": "b"}})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("label of a missing workload: %v", err)
	}

	// The lists.
	c := sdnv1.NewConfigServiceClient(ts.conn)
	lp, err := c.List(ctx, &sdnv1.ListRequest{Kind: "policies"})
	if err != nil || len(lp.Policies) != 2 {
		t.Fatalf("list policies: %v %v", lp, err)
	}
}
