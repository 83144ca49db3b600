package api

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestRealizedAcrossLeaderChange: realized revisions live in the leader's
// memory. A WaitRealized stream (forwarded by a follower) ends Unavailable
// when its leader hands over, instead of waiting on a memory no longer
// fed; the new leader learns the host's realized revision from the next
// heartbeat, which carries the agent's latest report, and a report proper
// always wins over what a heartbeat relayed.
func TestRealizedAcrossLeaderChange(t *testing.T) {
	ms := startCluster(t, 3)
	ctx := tctx(t)
	old := leaderOf(t, ms)
	f := followersOf(t, ms)[0]
	nodes := sdnv1.NewNodeServiceClient(f.conn)
	statusOf := sdnv1.NewStatusServiceClient(f.conn)

	reg, err := nodes.Register(ctx, &sdnv1.RegisterNodeRequest{Name: "h1", UnderlayIp: "198.18.0.1", UnderlayMtu: 1500})
	if err != nil {
		t.Fatal(err)
	}
	rev := reg.Revision
	ws, err := statusOf.WaitRealized(ctx, &sdnv1.WaitRealizedRequest{Revision: rev, TimeoutMs: 15000})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := ws.Recv(); err != nil || p.Done || len(p.Pending) != 1 {
		t.Fatalf("first progress: %v %v; want h1 pending", p, err)
	}
	newID, err := old.raft.TransferLeadership(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p, err := ws.Recv()
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("after the leader handed over to %s the stream gave %v %v; want Unavailable", newID, p, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the stream ended %v after the handover", took)
	}

	// The new leader has no report of h1: a heartbeat's relayed report
	// fills the gap.
	if _, err := nodes.Heartbeat(ctx, &sdnv1.HeartbeatRequest{Node: "h1", Realized: &sdnv1.ReportRealizedRequest{Revision: rev}}); err != nil {
		t.Fatal(err)
	}
	ws, err = statusOf.WaitRealized(ctx, &sdnv1.WaitRealizedRequest{Revision: rev, TimeoutMs: 5000})
	if err != nil {
		t.Fatal(err)
	}
	// A follower relays the heartbeat within relayEvery: wait for done.
	for {
		p, err := ws.Recv()
		if err != nil {
			t.Fatalf("asked again on the new leader: %v; want h1 realized from its heartbeat", err)
		}
		if p.Done {
			if p.Realized != 1 {
				t.Fatalf("done with %v", p)
			}
			break
		}
	}

	realizedOf := func() uint64 {
		t.Helper()
		st, err := statusOf.Status(ctx, &sdnv1.StatusRequest{})
		if err != nil || len(st.Nodes) != 1 {
			t.Fatalf("status: %v %v", st, err)
		}
		return st.Nodes[0].RealizedRevision
	}
	// A report proper moves it on; a heartbeat relaying an older report
	// (sent before that report arrived) does not move it back.
	if _, err := nodes.ReportRealized(ctx, &sdnv1.ReportRealizedRequest{Node: "h1", Revision: rev + 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes.Heartbeat(ctx, &sdnv1.HeartbeatRequest{Node: "h1", Realized: &sdnv1.ReportRealizedRequest{Revision: rev, Error: "stale"}}); err != nil {
		t.Fatal(err)
	}
	// Through a follower both are relayed: give them two relays' time.
	deadline := time.Now().Add(2*relayEvery + time.Second)
	for got := realizedOf(); got != rev+5; got = realizedOf() {
		if time.Now().After(deadline) {
			t.Fatalf("realized revision %d after a stale heartbeat; want %d from the report", got, rev+5)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * relayEvery) // and the stale one does not move it back
	if got := realizedOf(); got != rev+5 {
		t.Fatalf("realized revision %d after a stale heartbeat; want %d from the report", got, rev+5)
	}
}
