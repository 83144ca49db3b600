package main

import (
	"bytes"
	"strings"
	"testing"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func TestIPAMCompare(t *testing.T) {
	st := &ipamState{
		workloads: []*sdnv1.Workload{
			{Network: "n", Name: "a", Node: "h1", Ip: "10.0.0.2", CreateRevision: 3},
			{Network: "n", Name: "b", Node: "h1", Ip: "10.0.0.2", CreateRevision: 9},
			{Network: "n", Name: "c", Node: "h2", Ip: "10.0.1.2"},
			{Network: "n", Name: "d", Node: "h9", Ip: "10.0.2.2"},
			{Network: "n", Name: "e", Node: "h1", Ip: "10.0.0.3"},
		},
		nodes: map[string]*sdnv1.Node{"h1": {Name: "h1"}, "h2": {Name: "h2", DownSinceUnixMs: 1}},
		twice: map[string][]*sdnv1.Workload{},
	}
	st.compare()
	if len(st.twice["10.0.0.2"]) != 2 || len(st.twice) != 1 {
		t.Errorf("held twice: %v, want 10.0.0.2 by a and b", st.twice)
	}
	if len(st.hostGone) != 1 || st.hostGone[0].Name != "d" || len(st.hostDown) != 1 || st.hostDown[0].Name != "c" {
		t.Errorf("host gone %v, down %v; want d and c", st.hostGone, st.hostDown)
	}
	if st.problems != 3 {
		t.Errorf("problems %d, want 3", st.problems)
	}
	var b bytes.Buffer
	st.print(&b)
	if !strings.Contains(b.String(), "ipam check: 3 found: 5 workloads, 4 addresses; 1 held twice, 1 on hosts gone, 1 on hosts down") {
		t.Errorf("summary:\n%s", b.String())
	}
	clean := &ipamState{workloads: st.workloads[2:3], nodes: map[string]*sdnv1.Node{"h2": {Name: "h2"}}, twice: map[string][]*sdnv1.Workload{}}
	clean.compare()
	b.Reset()
	clean.print(&b)
	if clean.problems != 0 || !strings.Contains(b.String(), "ipam check: clean:") {
		t.Errorf("clean state: %d problems\n%s", clean.problems, b.String())
	}
}

func TestWorkloadStatus(t *testing.T) {
	nodes := map[string]*sdnv1.Node{"h1": {Name: "h1"}, "h2": {Name: "h2", DownSinceUnixMs: 1_700_000_000_000}}
	for _, tt := range []struct {
		w    *sdnv1.Workload
		want string
	}{
		{&sdnv1.Workload{Node: "h1"}, "ready"},
		{&sdnv1.Workload{Node: "h1", Pending: "no address yet"}, "no address yet"},
		{&sdnv1.Workload{Node: "h2"}, "host down since 2023-11-14T22:13:20Z"},
		{&sdnv1.Workload{Node: "h3"}, "host gone (see sdnctl ipam check)"},
	} {
		if got := workloadStatus(tt.w, nodes); got != tt.want {
			t.Errorf("status of a workload on %s: %q, want %q", tt.w.Node, got, tt.want)
		}
	}
}
