package model

import (
	"testing"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func TestDesiredApplyAndRender(t *testing.T) {
	create, del := sdnv1.ChangeOp_CHANGE_OP_CREATE, sdnv1.ChangeOp_CHANGE_OP_DELETE
	d := NewDesired()
	d.Apply([]*sdnv1.ObjectChange{
		{Op: create, Kind: "workload", Name: "proj1/b", Workload: &sdnv1.Workload{Name: "b", Network: "proj1", Ip: "10.128.0.3"}},
		{Op: create, Kind: "network", Name: "proj2", Network: &sdnv1.Network{Name: "proj2", Vnid: 8}},
		{Op: create, Kind: "cluster", Name: "cluster", Cluster: &sdnv1.ClusterSettings{Cidr: "10.128.0.0/14"}},
		{Op: create, Kind: "network", Name: "proj1", Network: &sdnv1.Network{Name: "proj1", Vnid: 7}},
		{Op: create, Kind: "node", Name: "host1", Node: &sdnv1.Node{Name: "host1", Subnet: "10.128.0.0/23"}},
		{Op: create, Kind: "workload", Name: "proj1/a", Workload: &sdnv1.Workload{Name: "a", Network: "proj1", Ip: "10.128.0.2"}},
		// A kind this version does not know (a newer server's) is ignored.
		{Op: create, Kind: "gizmo", Name: "g"},
	}, 4)
	// Rendered in kind order, each kind in key order, as the servers'
	// snapshots are.
	want := []string{"cluster/cluster", "network/proj1", "network/proj2", "node/host1", "workload/proj1/a", "workload/proj1/b"}
	got := keys(d.Changes())
	if len(got) != len(want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("changes %v, want %v", got, want)
		}
	}

	d.Apply([]*sdnv1.ObjectChange{{Op: del, Kind: "workload", Name: "proj1/a"}, {Op: del, Kind: "cluster", Name: "cluster"}}, 5)
	if d.Revision != 5 || len(d.Workloads) != 1 || d.Workloads["proj1/b"] == nil || d.Cluster != nil {
		t.Fatalf("after deletes: rev %d, workloads %v, cluster %v", d.Revision, d.Workloads, d.Cluster)
	}

	// Equal compares objects and revision; a copy rebuilt from the rendered
	// changes is equal.
	again := NewDesired()
	again.Apply(d.Changes(), d.Revision)
	if !again.Equal(d) {
		t.Fatalf("rebuilt %v, want %v", keys(again.Changes()), keys(d.Changes()))
	}
	again.Revision++
	if again.Equal(d) {
		t.Fatal("states at different revisions are equal")
	}
}

func keys(cs []*sdnv1.ObjectChange) []string {
	var out []string
	for _, c := range cs {
		if c.Op != sdnv1.ChangeOp_CHANGE_OP_CREATE {
			out = append(out, "not a put: "+c.String())
		}
		out = append(out, c.Kind+"/"+c.Name)
	}
	return out
}

func TestParseKind(t *testing.T) {
	for in, want := range map[string]Kind{
		"cluster": KindCluster, "clusters": KindCluster, "network": KindNetwork, "networks": KindNetwork,
		"node": KindNode, "nodes": KindNode, "workload": KindWorkload, "workloads": KindWorkload,
		"": "", "Networks": "", "nodess": "", "server": "", "gizmo": "",
	} {
		got, ok := ParseKind(in)
		if got != want || ok != (want != "") {
			t.Errorf("ParseKind(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if KindNetwork.Plural() != "networks" || KindCluster.Plural() != "cluster" {
		t.Errorf("plurals: %q %q", KindNetwork.Plural(), KindCluster.Plural())
	}
}
