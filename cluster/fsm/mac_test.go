package fsm

import (
	"slices"
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func attachReq(name, node, ip, mac string) *sdnv1.AttachWorkloadRequest {
	return &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{Name: name, Network: "p", Node: node, Ip: ip, Mac: mac}}
}

// Two workloads on one host never share a MAC: an explicit MAC another
// workload of the host has is refused (attach, apply, and a workload placed
// when its host registers stays pending), one of another host is fine, and
// a MAC of the range sdn derives from addresses belongs to its address.
func TestWorkloadMACsDistinctPerHost(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "p"}, {Name: "q"}}})
	tf.mustApply(command.RegisterNode, register("n1", "198.18.0.1", 1500))
	tf.mustApply(command.RegisterNode, register("n2", "198.18.0.2", 1500))
	const mac = "02:00:00:00:00:01"
	tf.mustApply(command.AttachWorkload, attachReq("a", "n1", "", mac))

	refused := func(what string, r *Result, want string) {
		t.Helper()
		if r.Err == nil || r.Err.Code != CodeConflict || !strings.Contains(r.Err.Error(), want) {
			t.Fatalf("%s: %v; want a conflict saying %q", what, r.Err, want)
		}
	}
	before := tf.dump()
	refused("same MAC, same host", tf.apply(command.AttachWorkload, attachReq("b", "n1", "", "02:00:00:00:00:01")),
		"mac 02:00:00:00:00:01 is already workload p/a's on host n1")
	// Another network on the same host: still the same host's ports.
	r := tf.apply(command.AttachWorkload, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{Name: "c", Network: "q", Node: "n1", Mac: "02:00:00:00:00:01"}})
	refused("same MAC, other network, same host", r, "already workload p/a's on host n1")
	r = tf.apply(command.AttachWorkload, attachReq("d", "n1", "10.128.0.20", "0a:58:0a:80:00:05"))
	if r.Err == nil || r.Err.Code != CodeInvalid || r.Err.Violations[0].Field != "mac" ||
		!strings.Contains(r.Err.Error(), "mac 0a:58:0a:80:00:05 is the MAC sdn derives for address 10.128.0.5") {
		t.Fatalf("derived MAC of another address: %v", r.Err)
	}
	if after := tf.dump(); !slices.Equal(before, after) {
		t.Fatal("a refused attach changed the state")
	}
	// The derived MAC of its own address, and the same MAC on another host.
	tf.mustApply(command.AttachWorkload, attachReq("e", "n1", "10.128.0.20", "0a:58:0a:80:00:14"))
	tf.mustApply(command.AttachWorkload, attachReq("f", "n2", "", mac))

	// HCL: two workloads of one apply on one host with one MAC.
	r = tf.apply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "p"}, {Name: "q"}}, Workloads: []*sdnv1.Workload{
		{Name: "h1", Network: "p", Node: "n2", Mac: "02:00:00:00:00:09"}, {Name: "h2", Network: "q", Node: "n2", Mac: "02:00:00:00:00:09"}}})
	refused("same MAC twice in an apply", r, "mac 02:00:00:00:00:09 is already workload p/h1's on host n2")
	// Changing a placed workload's MAC to one its host has is refused too.
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "p"}, {Name: "q"}}, Workloads: []*sdnv1.Workload{
		{Name: "h1", Network: "p", Node: "n2", Mac: "02:00:00:00:00:09"}}})
	r = tf.apply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "p"}, {Name: "q"}}, Workloads: []*sdnv1.Workload{
		{Name: "h1", Network: "p", Node: "n2", Mac: mac}}})
	refused("MAC changed to another workload's", r, "mac 02:00:00:00:00:01 is already workload p/f's on host n2")

	// Workloads waiting for a host: the first placed gets the MAC, the
	// second waits with the reason.
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "p"}, {Name: "q"}}, Workloads: []*sdnv1.Workload{
		{Name: "h1", Network: "p", Node: "n2", Mac: "02:00:00:00:00:09"},
		{Name: "w1", Network: "p", Node: "n3", Mac: "02:00:00:00:00:07"}, {Name: "w2", Network: "q", Node: "n3", Mac: "02:00:00:00:00:07"}}})
	tf.mustApply(command.RegisterNode, register("n3", "198.18.0.3", 1500))
	tf.view(func(tx *state.Tx) {
		w1, _ := tx.Workload("p", "w1")
		w2, _ := tx.Workload("q", "w2")
		if w1.Pending != "" || w1.Mac != "02:00:00:00:00:07" || !strings.Contains(w2.Pending, "already workload p/w1's on host n3") || w2.Ip != "" {
			t.Fatalf("after n3 registered: w1 %v, w2 %v", w1, w2)
		}
	})
	if err := tf.f.CheckAllocators(); err != nil {
		t.Fatal(err)
	}

	// A detached workload's MAC is free again.
	tf.mustApply(command.DetachWorkload, &sdnv1.DetachWorkloadRequest{Network: "p", Name: "a"})
	tf.mustApply(command.AttachWorkload, attachReq("b", "n1", "", mac))
	if err := tf.f.CheckAllocators(); err != nil {
		t.Fatal(err)
	}
}
