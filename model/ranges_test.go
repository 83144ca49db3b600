package model

import (
	"testing"

	"google.golang.org/protobuf/proto"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func TestAttachRanges(t *testing.T) {
	rng := func(line int32) *sdnv1.SourceRange { return &sdnv1.SourceRange{File: "a.hcl", StartLine: line} }
	req := &sdnv1.ApplyRequest{
		Cluster: &sdnv1.ClusterSettings{Ranges: map[string]*sdnv1.SourceRange{"": rng(1), "cidr": rng(2)}},
		Networks: []*sdnv1.Network{
			{Name: "p1", Ranges: map[string]*sdnv1.SourceRange{"": rng(10), "labels": rng(11)}},
			{Name: "p1", Ranges: map[string]*sdnv1.SourceRange{"": rng(90)}}, // declared twice: the first counts
		},
		Workloads: []*sdnv1.Workload{{Network: "p1", Name: "w", Ranges: map[string]*sdnv1.SourceRange{"": rng(20), "ip": rng(21)}}},
	}
	for _, tc := range []struct {
		kind, name, field string
		want              int32 // start line; 0: none
	}{
		{"cluster", "", "cidr", 2},
		{"cluster", "", "mtu", 1}, // no range for the field: the block's
		{"network", "p1", "labels", 11},
		{"network", "p1", "", 10},
		{"network", "p2", "", 0}, // not in the request
		{"workload", "p1/w", "ip", 21},
		{"workload", "p1/w", "node", 20},
		{"workload", "w", "", 0}, // workloads are network/name
	} {
		v := &sdnv1.Violation{Kind: tc.kind, Name: tc.name, Field: tc.field}
		AttachRanges([]*sdnv1.Violation{v}, req)
		if got := v.GetRange().GetStartLine(); got != tc.want {
			t.Errorf("%s %q field %q: range at line %d, want %d", tc.kind, tc.name, tc.field, got, tc.want)
		}
	}
	kept := &sdnv1.Violation{Kind: "network", Name: "p1", Range: rng(99)}
	AttachRanges([]*sdnv1.Violation{kept}, req)
	if kept.Range.StartLine != 99 {
		t.Errorf("a violation's own range was replaced by line %d", kept.Range.StartLine)
	}
	stripped := proto.Clone(req).(*sdnv1.ApplyRequest)
	ClearRanges(stripped)
	if stripped.Cluster.Ranges != nil || stripped.Networks[0].Ranges != nil || stripped.Workloads[0].Ranges != nil {
		t.Fatalf("ClearRanges left ranges: %v", stripped)
	}
	if req.Networks[0].Ranges == nil {
		t.Fatal("ClearRanges of a clone changed the original")
	}
}
