package fsm

import (
	"testing"

	"github.com/sdn-dev/sdn/cluster/command"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// The Docker driver's workloads are owned by their endpoint id as CNI's
// are by container and interface: Join asks Attach again and must get the
// same workload, DeleteEndpoint detaches by owner.
func TestDockerAttachIsIdempotentPerOwner(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}}})
	tf.mustApply(command.RegisterNode, register("host1", "198.18.0.1", 1500))
	req := &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{Name: "docker-4b4b4b4b4b4b", Network: "proj1", Node: "host1",
		Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_DOCKER, ContainerId: "4b4b", Ifname: "docker"}}}
	a := tf.mustApply(command.AttachWorkload, req)
	b := tf.mustApply(command.AttachWorkload, req)
	if a.Workload.Ip != b.Workload.Ip || b.Revision != a.Revision || b.Workload.Origin.Kind != sdnv1.OriginKind_ORIGIN_KIND_DOCKER {
		t.Fatalf("repeated attach: %v then %v", a.Workload, b.Workload)
	}
	d := tf.mustApply(command.DetachWorkload, &sdnv1.DetachWorkloadRequest{ContainerId: "4b4b", Ifname: "docker"})
	if !d.Removed {
		t.Fatal("detach by owner removed nothing")
	}
}
