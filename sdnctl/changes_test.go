package main

import (
	"bytes"
	"testing"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

const (
	opCreate = sdnv1.ChangeOp_CHANGE_OP_CREATE
	opUpdate = sdnv1.ChangeOp_CHANGE_OP_UPDATE
	opDelete = sdnv1.ChangeOp_CHANGE_OP_DELETE
)

func TestWritePlanAndApplied(t *testing.T) {
	mixed := []*sdnv1.Change{
		{Op: opCreate, Kind: "network", Name: "proj1"},
		{Op: opUpdate, Kind: "network", Name: "proj2", Details: []string{
			`labels.env: "dev" -> "prod"`,
			`admin: false -> true`,
		}},
		{Op: opUpdate, Kind: "cluster", Name: "cluster", Details: []string{"mtu: 0 -> 1400"}},
		{Op: opCreate, Kind: "workload", Name: "proj1/web1"},
		{Op: opDelete, Kind: "workload", Name: "proj1/db1"},
	}
	tests := []struct {
		name        string
		resp        *sdnv1.ApplyResponse
		plan, apply string
	}{
		{
			name:  "no changes",
			resp:  &sdnv1.ApplyResponse{Revision: 12},
			plan:  "No changes. The cluster matches the files (revision 12).\n",
			apply: "No changes. The cluster matches the files (revision 12).\n",
		},
		{
			name: "mixed",
			resp: &sdnv1.ApplyResponse{Revision: 13, Changes: mixed},
			plan: `+ network proj1
~ network proj2
    labels.env: "dev" -> "prod"
    admin: false -> true
~ cluster
    mtu: 0 -> 1400
+ workload proj1/web1
- workload proj1/db1

Plan: 2 to create, 2 to update, 1 to delete.
`,
			apply: `+ network proj1
~ network proj2
    labels.env: "dev" -> "prod"
    admin: false -> true
~ cluster
    mtu: 0 -> 1400
+ workload proj1/web1
- workload proj1/db1

Applied at revision 13: 2 created, 2 updated, 1 deleted.
`,
		},
		{
			name:  "unknown op from a newer server",
			resp:  &sdnv1.ApplyResponse{Revision: 3, Changes: []*sdnv1.Change{{Op: 9, Kind: "service", Name: "s"}}},
			plan:  "? service s\n\nPlan: 0 to create, 0 to update, 0 to delete.\n",
			apply: "? service s\n\nApplied at revision 3: 0 created, 0 updated, 0 deleted.\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var plan, apply bytes.Buffer
			writePlan(&plan, tt.resp)
			writeApplied(&apply, tt.resp)
			if got := plan.String(); got != tt.plan {
				t.Errorf("plan output:\n%s\nwant:\n%s", got, tt.plan)
			}
			if got := apply.String(); got != tt.apply {
				t.Errorf("apply output:\n%s\nwant:\n%s", got, tt.apply)
			}
		})
	}
}

func TestCount(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want string
	}{{0, "0 networks"}, {1, "1 network"}, {3, "3 networks"}} {
		if got := count(tt.n, "network"); got != tt.want {
			t.Errorf("count(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestProgressLine(t *testing.T) {
	many := make([]string, 12)
	for i := range many {
		many[i] = "h" + string(rune('a'+i))
	}
	tests := []struct {
		p    *sdnv1.WaitRealizedProgress
		want string
	}{
		{&sdnv1.WaitRealizedProgress{Realized: 2, Total: 3, Pending: []string{"host3"}},
			"waiting for hosts to realize revision 13: 2/3 realized (pending: host3)"},
		{&sdnv1.WaitRealizedProgress{Realized: 0, Total: 2, Pending: []string{"host1", "host2"}},
			"waiting for hosts to realize revision 13: 0/2 realized (pending: host1, host2)"},
		{&sdnv1.WaitRealizedProgress{Realized: 0, Total: 12, Pending: many},
			"waiting for hosts to realize revision 13: 0/12 realized (pending: ha, hb, hc, hd, he, hf, hg, hh, hi, hj and 2 more)"},
	}
	for _, tt := range tests {
		if got := progressLine(13, tt.p); got != tt.want {
			t.Errorf("progressLine:\n got %q\nwant %q", got, tt.want)
		}
	}
}
