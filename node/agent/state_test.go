package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func TestDesiredSaveLoad(t *testing.T) {
	m := model.NewDesired()
	create, del := sdnv1.ChangeOp_CHANGE_OP_CREATE, sdnv1.ChangeOp_CHANGE_OP_DELETE
	m.Apply([]*sdnv1.ObjectChange{
		{Op: create, Kind: "cluster", Name: "cluster", Cluster: &sdnv1.ClusterSettings{Cidr: "10.128.0.0/14"}},
		{Op: create, Kind: "network", Name: "proj1", Network: &sdnv1.Network{Name: "proj1", Vnid: 7}},
		{Op: create, Kind: "node", Name: "host1", Node: &sdnv1.Node{Name: "host1", Subnet: "10.128.0.0/23"}},
		{Op: create, Kind: "workload", Name: "proj1/a", Workload: &sdnv1.Workload{Name: "a", Network: "proj1", Ip: "10.128.0.2"}},
		{Op: create, Kind: "workload", Name: "proj1/b", Workload: &sdnv1.Workload{Name: "b", Network: "proj1", Ip: "10.128.0.3"}},
	}, 4)
	m.Apply([]*sdnv1.ObjectChange{{Op: del, Kind: "workload", Name: "proj1/a"}}, 5)
	if m.Revision != 5 || len(m.Workloads) != 1 || m.Workloads["proj1/b"] == nil {
		t.Fatalf("desired state after delete: rev %d, workloads %v", m.Revision, m.Workloads)
	}
	path := filepath.Join(t.TempDir(), "sub", "desired.pb")
	if err := SaveDesired(path, m); err != nil {
		t.Fatal(err)
	}
	got, err := LoadDesired(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(m) {
		t.Fatalf("loaded %v, saved %v", got.Changes(), m.Changes())
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Fatal("temporary file left behind")
	}
	// A missing file is an empty desired state; a corrupt one is an error that says
	// what to do.
	empty, err := LoadDesired(filepath.Join(t.TempDir(), "none.pb"))
	if err != nil || empty.Revision != 0 {
		t.Fatalf("missing file: %v %v", empty, err)
	}
	os.WriteFile(path, []byte("\xff\xff\xff"), 0o600)
	if _, err := LoadDesired(path); err == nil || !strings.Contains(err.Error(), "remove the file") {
		t.Fatalf("corrupt file: %v", err)
	}
}
