package api

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/cluster/command"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestLivenessAndDrainAPI: heartbeats (known hosts only) show in Status
// and in linearizable node lists; drain refuses attaches with what to do;
// removing an up host needs force; a down host is not waited for.
func TestLivenessAndDrainAPI(t *testing.T) {
	ts := startServer(t)
	ctx := context.Background()
	nodes := sdnv1.NewNodeServiceClient(ts.conn)
	cfg := sdnv1.NewConfigServiceClient(ts.conn)
	st := sdnv1.NewStatusServiceClient(ts.conn)
	wl := sdnv1.NewWorkloadServiceClient(ts.conn)
	if _, err := cfg.Apply(ctx, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}}}); err != nil {
		t.Fatal(err)
	}
	for i, h := range []string{"host1", "host2"} {
		if _, err := nodes.Register(ctx, &sdnv1.RegisterNodeRequest{Name: h, UnderlayIp: "198.18.0." + string(rune('1'+i)), UnderlayMtu: 1500}); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := nodes.Heartbeat(ctx, &sdnv1.HeartbeatRequest{Node: "nobody"}); status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "registers it again") {
		t.Fatalf("heartbeat of an unknown host: %v", err)
	}
	before := time.Now().Add(-time.Second).UnixMilli()
	if _, err := nodes.Heartbeat(ctx, &sdnv1.HeartbeatRequest{Node: "host1"}); err != nil {
		t.Fatal(err)
	}
	s, err := st.Status(ctx, &sdnv1.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := s.Nodes[0]; n.Name != "host1" || n.State != sdnv1.NodeState_NODE_STATE_READY || n.LastHeartbeatUnixMs < before {
		t.Fatalf("status of host1: %v", n)
	}
	l, err := cfg.List(ctx, &sdnv1.ListRequest{Kind: "nodes"})
	if err != nil {
		t.Fatal(err)
	}
	if l.Nodes[0].LastHeartbeatUnixMs < before {
		t.Fatalf("linearizable list: host1 %v", l.Nodes[0])
	}
	if l, _ := cfg.List(ctx, &sdnv1.ListRequest{Kind: "nodes", Stale: true}); l.Nodes[0].LastHeartbeatUnixMs != 0 {
		t.Fatalf("a stale list carries heartbeats: %v", l.Nodes[0])
	}

	// Drain.
	d, err := nodes.Drain(ctx, &sdnv1.DrainNodeRequest{Name: "host2", Drain: true})
	if err != nil || !d.Changed {
		t.Fatalf("drain: %v %v", d, err)
	}
	_, err = wl.Attach(ctx, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{Name: "w", Network: "proj1", Node: "host2"}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "sdnctl node undrain host2") {
		t.Fatalf("attach on a drained host: %v", err)
	}
	if s, _ := st.Status(ctx, &sdnv1.StatusRequest{}); s.Nodes[1].State != sdnv1.NodeState_NODE_STATE_DRAINED || !s.Nodes[1].Drained {
		t.Fatalf("status of drained host2: %v", s.Nodes[1])
	}
	if d, err := nodes.Drain(ctx, &sdnv1.DrainNodeRequest{Name: "host2", Drain: true}); err != nil || d.Changed {
		t.Fatalf("second drain: %v %v", d, err)
	}
	if _, err := nodes.Drain(ctx, &sdnv1.DrainNodeRequest{Name: "host2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := wl.Attach(ctx, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{Name: "w", Network: "proj1", Node: "host2"}}); err != nil {
		t.Fatalf("attach after undrain: %v", err)
	}
	if d, err := nodes.Drain(ctx, &sdnv1.DrainNodeRequest{Name: "host2", Drain: true}); err != nil || d.Workloads != 1 {
		t.Fatalf("drain with a workload there: %v %v", d, err)
	}

	// Remove: an up host needs force.
	_, err = nodes.Remove(ctx, &sdnv1.RemoveNodeRequest{Name: "host2"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "host host2 is up") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("remove of an up host: %v", err)
	}
	// `sdnctl delete node` has the same guard, and points at the force.
	_, err = cfg.Delete(ctx, &sdnv1.DeleteRequest{Kind: "node", Name: "host2"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "host host2 is up") || !strings.Contains(err.Error(), "sdnctl node remove --force host2") {
		t.Fatalf("delete of an up host: %v", err)
	}
	// Down hosts are not waited for, and are removed without force.
	if _, err := ts.raft.Propose(ctx, command.SetNodeLiveness, &sdnv1.SetNodeLivenessRequest{Name: "host2", Down: true, AtUnixMs: time.Now().UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	if s, _ := st.Status(ctx, &sdnv1.StatusRequest{}); s.Nodes[1].State != sdnv1.NodeState_NODE_STATE_DOWN || s.Nodes[1].DownSinceUnixMs == 0 {
		t.Fatalf("status of down host2: %v", s.Nodes[1])
	}
	if _, err := nodes.ReportRealized(ctx, &sdnv1.ReportRealizedRequest{Node: "host1", Revision: 100}); err != nil {
		t.Fatal(err)
	}
	wr, err := st.WaitRealized(ctx, &sdnv1.WaitRealizedRequest{Revision: 100, TimeoutMs: 5000})
	if err != nil {
		t.Fatal(err)
	}
	p, err := wr.Recv()
	if err != nil || !p.Done || p.Total != 1 || len(p.Down) != 1 || p.Down[0] != "host2" {
		t.Fatalf("wait with host2 down: %v %v", p, err)
	}
	r, err := nodes.Remove(ctx, &sdnv1.RemoveNodeRequest{Name: "host2"})
	if err != nil || r.Subnet == "" || len(r.Changes) != 2 {
		t.Fatalf("remove of down host2: %v %v", r, err)
	}
	r, err = nodes.Remove(ctx, &sdnv1.RemoveNodeRequest{Name: "host1", Force: true})
	if err != nil || r.Subnet == "" {
		t.Fatalf("forced remove of up host1: %v %v", r, err)
	}
	if _, err := nodes.Remove(ctx, &sdnv1.RemoveNodeRequest{Name: "host1", Force: true}); status.Code(err) != codes.NotFound {
		t.Fatalf("remove of a removed host: %v", err)
	}
}
