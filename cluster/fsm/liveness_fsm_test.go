package fsm

import (
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Host liveness and drain through the FSM: the commands the leader's
// liveness loop proposes and the ones `sdnctl node drain` sends.

const t0 = int64(1772366400000) // 2026-03-01T12:00:00Z, in commands as the leader's clock

func livenessFixture(t *testing.T) *testFSM {
	t.Helper()
	tf := newTestFSM(t)
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{
		Networks:  []*sdnv1.Network{{Name: "proj1"}},
		Workloads: []*sdnv1.Workload{{Name: "static", Network: "proj1", Node: "host2"}},
	})
	tf.mustApply(command.RegisterNode, register("host1", "198.18.0.1", 1500))
	tf.mustApply(command.RegisterNode, register("host2", "198.18.0.2", 1500))
	tf.mustApply(command.AttachWorkload, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{Name: "pod", Network: "proj1", Node: "host2",
		Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_CNI, ContainerId: "c1", Ifname: "eth0"}}})
	return tf
}

func (tf *testFSM) node(name string) *sdnv1.Node {
	var n *sdnv1.Node
	tf.view(func(tx *state.Tx) { n, _ = tx.Node(name) })
	return n
}

func (tf *testFSM) revision() uint64 {
	var r uint64
	tf.view(func(tx *state.Tx) { r = tx.Meta().Revision })
	return r
}

// TestNodeDownKeepsAddressesAndComesBack: marking a host down is one
// revision that changes only the node; its subnet and workloads stay;
// repeating it changes nothing; a registration (the rebooted agent) keeps
// it down, and marking it up is again one revision.
func TestNodeDownKeepsAddressesAndComesBack(t *testing.T) {
	tf := livenessFixture(t)
	before := tf.dump()
	host2 := tf.node("host2")
	rev := tf.revision()

	r := tf.mustApply(command.SetNodeLiveness, &sdnv1.SetNodeLivenessRequest{Name: "host2", Down: true, AtUnixMs: t0})
	if r.Revision != rev+1 || len(r.Changes) != 1 || r.Changes[0].Kind != "node" ||
		r.Changes[0].Details[0] != "status: ready -> down (since 2026-03-01T12:00:00Z)" {
		t.Fatalf("mark down: revision %d (was %d), changes %v", r.Revision, rev, r.Changes)
	}
	n := tf.node("host2")
	if n.DownSinceUnixMs != t0 || n.Subnet != host2.Subnet || n.GatewayIp != host2.GatewayIp {
		t.Fatalf("host2 after mark down: %v", n)
	}
	// Only the node changed: workloads keep their addresses.
	after := tf.dump()
	var changed []string
	for _, l := range after {
		if !strings.Contains(strings.Join(before, "\n"), l) {
			changed = append(changed, l)
		}
	}
	for _, l := range changed {
		if strings.HasPrefix(l, "meta ") {
			continue
		}
		if !strings.Contains(l, "host2") || strings.Contains(l, "workload") {
			t.Fatalf("mark down changed more than the node: %s", l)
		}
	}

	// The same decision again (a retried proposal) changes nothing.
	r = tf.mustApply(command.SetNodeLiveness, &sdnv1.SetNodeLivenessRequest{Name: "host2", Down: true, AtUnixMs: t0 + 5000})
	if r.Revision != rev+1 || len(r.Changes) != 0 || tf.node("host2").DownSinceUnixMs != t0 {
		t.Fatalf("second mark down: revision %d changes %v node %v", r.Revision, r.Changes, tf.node("host2"))
	}

	// The agent restarts and registers: same subnet, still down until
	// the leader sees its heartbeats.
	r = tf.mustApply(command.RegisterNode, register("host2", "198.18.0.2", 1500))
	if len(r.Changes) != 0 || r.Node.DownSinceUnixMs != t0 || r.Node.Subnet != host2.Subnet {
		t.Fatalf("registration of a down host: %v changes %v", r.Node, r.Changes)
	}

	r = tf.mustApply(command.SetNodeLiveness, &sdnv1.SetNodeLivenessRequest{Name: "host2", Down: false, AtUnixMs: t0 + 60000})
	if r.Revision != rev+2 || len(r.Changes) != 1 || r.Changes[0].Details[0] != "status: down (since 2026-03-01T12:00:00Z) -> ready" {
		t.Fatalf("mark up: revision %d changes %v", r.Revision, r.Changes)
	}
	if n := tf.node("host2"); n.DownSinceUnixMs != 0 {
		t.Fatalf("host2 still down: %v", n)
	}
	r = tf.mustApply(command.SetNodeLiveness, &sdnv1.SetNodeLivenessRequest{Name: "host2", Down: false, AtUnixMs: t0 + 61000})
	if r.Revision != rev+2 || len(r.Changes) != 0 {
		t.Fatalf("second mark up changed something: %v", r.Changes)
	}

	r = tf.apply(command.SetNodeLiveness, &sdnv1.SetNodeLivenessRequest{Name: "nobody", Down: true, AtUnixMs: t0})
	if r.Err == nil || r.Err.Code != CodeNotFound {
		t.Fatalf("unknown host: %v", r.Err)
	}
	r = tf.apply(command.SetNodeLiveness, &sdnv1.SetNodeLivenessRequest{Name: "host1", Down: true})
	if r.Err == nil || r.Err.Code != CodeInvalid {
		t.Fatalf("down without a time: %v", r.Err)
	}
}

// TestReleaseNode: the leader's release removes a host still down since
// the time it saw (subnet free, attached workloads gone, declared ones
// pending), and refuses, changing nothing, when the host came back or went
// down again later.
func TestReleaseNode(t *testing.T) {
	tf := livenessFixture(t)
	sub := tf.node("host2").Subnet
	tf.mustApply(command.SetNodeLiveness, &sdnv1.SetNodeLivenessRequest{Name: "host2", Down: true, AtUnixMs: t0})
	tf.mustApply(command.SetNodeLiveness, &sdnv1.SetNodeLivenessRequest{Name: "host2", Down: false, AtUnixMs: t0 + 1000})
	tf.mustApply(command.SetNodeLiveness, &sdnv1.SetNodeLivenessRequest{Name: "host2", Down: true, AtUnixMs: t0 + 2000})

	before := tf.dump()
	for _, since := range []int64{t0, 0} { // decided before it came back; never down
		r := tf.apply(command.ReleaseNode, &sdnv1.ReleaseNodeRequest{Name: "host2", DownSinceUnixMs: since})
		if r.Err == nil || r.Err.Code != CodeConflict || !strings.Contains(r.Err.Error(), "came back") {
			t.Fatalf("release with a stale down-since %d: %v", since, r.Err)
		}
	}
	if d := diffLines(before, tf.dump()); d != "" {
		t.Fatalf("refused releases changed the state:\n%s", d)
	}
	up := tf.apply(command.ReleaseNode, &sdnv1.ReleaseNodeRequest{Name: "host1", DownSinceUnixMs: t0})
	if up.Err == nil || up.Err.Code != CodeConflict {
		t.Fatalf("release of an up host: %v", up.Err)
	}

	r := tf.mustApply(command.ReleaseNode, &sdnv1.ReleaseNodeRequest{Name: "host2", DownSinceUnixMs: t0 + 2000})
	var ops []string
	for _, c := range r.Changes {
		ops = append(ops, opSymbol(c.Op)+c.Kind+" "+c.Name)
	}
	if got, want := strings.Join(ops, ", "), "-workload proj1/pod, ~workload proj1/static, -node host2"; got != want {
		t.Fatalf("release changes: %s, want %s", got, want)
	}
	tf.view(func(tx *state.Tx) {
		if _, ok := tx.Node("host2"); ok {
			t.Fatal("host2 still registered")
		}
		if w, _ := tx.Workload("proj1", "static"); w.Pending == "" || w.Ip != "" {
			t.Fatalf("declared workload after release: %v", w)
		}
	})
	// The subnet is free: with next-fit it is not handed out at once, but
	// a full cycle of registrations reaches it again; here it is enough
	// that the allocators match the store.
	if err := checkPoolsMatchStore(tf.f); err != nil {
		t.Fatalf("after release of %s: %v", sub, err)
	}
}

func opSymbol(op sdnv1.ChangeOp) string {
	return map[sdnv1.ChangeOp]string{sdnv1.ChangeOp_CHANGE_OP_CREATE: "+", sdnv1.ChangeOp_CHANGE_OP_UPDATE: "~", sdnv1.ChangeOp_CHANGE_OP_DELETE: "-"}[op]
}

// TestDrainRefusesNewWorkloadsOnly: a drained host refuses new workloads
// (attach and HCL), with a message that says what to do; retried ADDs of
// workloads already there, workloads already there, and other hosts are
// untouched; undrain accepts again. Drain survives a registration.
func TestDrainRefusesNewWorkloadsOnly(t *testing.T) {
	tf := livenessFixture(t)
	rev := tf.revision()
	r := tf.mustApply(command.DrainNode, &sdnv1.DrainNodeRequest{Name: "host2", Drain: true})
	if r.Revision != rev+1 || len(r.Changes) != 1 || r.Changes[0].Details[0] != "drained: false -> true" {
		t.Fatalf("drain: revision %d changes %v", r.Revision, r.Changes)
	}
	if r := tf.mustApply(command.DrainNode, &sdnv1.DrainNodeRequest{Name: "host2", Drain: true}); len(r.Changes) != 0 || r.Revision != rev+1 {
		t.Fatalf("second drain changed something: %v", r.Changes)
	}
	r = tf.apply(command.AttachWorkload, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{Name: "new", Network: "proj1", Node: "host2",
		Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_CNI, ContainerId: "c2", Ifname: "eth0"}}})
	if r.Err == nil || r.Err.Code != CodeConflict || !strings.Contains(r.Err.Error(), "host host2 is drained") ||
		!strings.Contains(r.Err.Error(), "sdnctl node undrain host2") {
		t.Fatalf("attach on a drained host: %v", r.Err)
	}
	// A runtime retrying the ADD of a workload already there gets it.
	r = tf.mustApply(command.AttachWorkload, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{Name: "pod", Network: "proj1", Node: "host2",
		Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_CNI, ContainerId: "c1", Ifname: "eth0"}}})
	if r.Workload == nil || r.Workload.Ip == "" {
		t.Fatalf("retried ADD on a drained host: %v", r.Workload)
	}
	// HCL: a new workload there is refused; the one declared before
	// stays (re-applying it changes nothing).
	r = tf.apply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}}, Workloads: []*sdnv1.Workload{
		{Name: "static", Network: "proj1", Node: "host2"}, {Name: "static2", Network: "proj1", Node: "host2"}}})
	if r.Err == nil || len(r.Err.Violations) != 1 || r.Err.Violations[0].Name != "proj1/static2" || r.Err.Violations[0].Field != "node" {
		t.Fatalf("HCL workload on a drained host: %v", r.Err)
	}
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}}, Workloads: []*sdnv1.Workload{
		{Name: "static", Network: "proj1", Node: "host2"}, {Name: "static2", Network: "proj1", Node: "host1"}}})
	// Moving a declared workload onto the drained host is refused too.
	r = tf.apply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}}, Workloads: []*sdnv1.Workload{
		{Name: "static", Network: "proj1", Node: "host2"}, {Name: "static2", Network: "proj1", Node: "host2"}}})
	if r.Err == nil || !strings.Contains(r.Err.Error(), "drained") {
		t.Fatalf("moving a workload onto a drained host: %v", r.Err)
	}
	tf.view(func(tx *state.Tx) {
		for _, key := range []string{"pod", "static"} {
			w, _ := tx.Workload("proj1", key)
			if w == nil || w.Node != "host2" || w.Ip == "" {
				t.Fatalf("workload %s on the drained host: %v", key, w)
			}
		}
	})

	// The agent restarts: still drained.
	if n := tf.mustApply(command.RegisterNode, register("host2", "198.18.0.2", 1500)).Node; !n.Drained {
		t.Fatalf("registration undrained the host: %v", n)
	}
	tf.mustApply(command.DrainNode, &sdnv1.DrainNodeRequest{Name: "host2", Drain: false})
	tf.mustApply(command.AttachWorkload, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{Name: "new", Network: "proj1", Node: "host2",
		Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_CNI, ContainerId: "c2", Ifname: "eth0"}}})

	if r := tf.apply(command.DrainNode, &sdnv1.DrainNodeRequest{Name: "nobody", Drain: true}); r.Err == nil || r.Err.Code != CodeNotFound {
		t.Fatalf("drain of an unknown host: %v", r.Err)
	}
}
