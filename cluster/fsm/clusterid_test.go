package fsm

import (
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func (tf *testFSM) clusterID() string {
	var id string
	tf.view(func(tx *state.Tx) { id = tx.ClusterID() })
	return id
}

// TestInitClusterOnce: the first InitCluster committed names the cluster;
// a later one changes nothing; neither moves the revision.
func TestInitClusterOnce(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}}})
	before := tf.revision()
	if r := tf.apply(command.InitCluster|command.IgnoreUnknownFlag, &sdnv1.InitClusterRequest{}); r.Err == nil {
		t.Fatal("an empty cluster id was taken")
	}
	tf.mustApply(command.InitCluster|command.IgnoreUnknownFlag, &sdnv1.InitClusterRequest{ClusterId: "first"})
	tf.mustApply(command.InitCluster|command.IgnoreUnknownFlag, &sdnv1.InitClusterRequest{ClusterId: "second"})
	if got := tf.clusterID(); got != "first" {
		t.Fatalf("cluster id %q, want the first one committed", got)
	}
	if got := tf.revision(); got != before {
		t.Fatalf("revision %d after InitCluster, want %d unchanged", got, before)
	}
}

// TestRegisterRefusesAnotherCluster: a host holding another cluster's
// state is refused once this cluster declares something, with what to do;
// a new cluster (waiting for a restore) takes it, and so does its own.
func TestRegisterRefusesAnotherCluster(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.InitCluster|command.IgnoreUnknownFlag, &sdnv1.InitClusterRequest{ClusterId: "B"})
	req := register("h1", "198.18.0.1", 1500)
	req.ClusterId = "A"
	tf.mustApply(command.RegisterNode, req) // nothing declared yet: a cluster awaiting a restore
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}}})
	before := tf.dump()
	req2 := register("h2", "198.18.0.2", 1500)
	req2.ClusterId = "A"
	r := tf.apply(command.RegisterNode, req2)
	if r.Err == nil || r.Err.Code != CodeConflict || !strings.Contains(r.Err.Error(), "host h2 holds the state of cluster A, but these servers are cluster B") ||
		!strings.Contains(r.Err.Error(), "desired.pb") {
		t.Fatalf("registration from another cluster: %+v", r.Err)
	}
	if after := tf.dump(); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatal("a refused registration changed the state")
	}
	req2.ClusterId = "B"
	tf.mustApply(command.RegisterNode, req2)
	req3 := register("h3", "198.18.0.3", 1500) // no id: a new host, or one from before ids
	tf.mustApply(command.RegisterNode, req3)
}
