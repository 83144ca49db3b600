package api

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestRelayerMerges: what waits for a relay keeps, per host, the newest
// report and the highest learned revision; a failed batch goes back under
// what came since.
func TestRelayerMerges(t *testing.T) {
	r := newRelayer()
	rep := func(rev uint64) *sdnv1.ReportRealizedRequest { return &sdnv1.ReportRealizedRequest{Revision: rev} }
	r.add(&sdnv1.HostSignal{Node: "h1", Alive: true, Learned: rep(7)}, false)
	r.add(&sdnv1.HostSignal{Node: "h1", Report: rep(9)}, true)
	r.add(&sdnv1.HostSignal{Node: "h1", Learned: rep(5)}, false)
	batch := r.take()
	if len(batch) != 1 || !batch[0].Alive || batch[0].Report.Revision != 9 || batch[0].Learned.Revision != 7 {
		t.Fatalf("merged: %v", batch)
	}
	r.add(&sdnv1.HostSignal{Node: "h1", Report: rep(11)}, false)
	r.requeue(batch, errors.New("leader gone"))
	again := r.take()
	if len(again) != 1 || again[0].Report.Revision != 11 || !again[0].Alive {
		t.Fatalf("requeued under a newer report: %v", again)
	}
	if err := r.admit("h1"); err != nil {
		t.Fatalf("admit right after a failure: %v", err)
	}
	// A signal relayed late carries how long ago the host was heard.
	r.add(&sdnv1.HostSignal{Node: "h3", Alive: true}, false)
	r.heard["h3"] = time.Now().Add(-1500 * time.Millisecond)
	for _, sig := range r.take() {
		if sig.Node == "h3" && (sig.AgeMs < 1500 || sig.AgeMs > 2500) {
			t.Fatalf("age of a heartbeat heard 1.5 s ago: %d ms", sig.AgeMs)
		}
	}
	r.failed = time.Now().Add(-relayFailing - time.Second)
	if err := r.admit("h1"); status.Code(err) != codes.Unavailable {
		t.Fatalf("admit after failing for %s: %v", relayFailing, err)
	}
	r.relayed([]string{"h2"})
	if err := r.admit("h2"); status.Code(err) != codes.NotFound {
		t.Fatalf("a host the leader does not know: %v", err)
	}
	if err := r.admit("h2"); err != nil {
		t.Fatalf("NotFound is said once: %v", err)
	}
}

// TestFollowerRelaysHeartbeats: heartbeats and reports given to a follower
// reach the leader's memory.
func TestFollowerRelaysHeartbeats(t *testing.T) {
	ms := startCluster(t, 3)
	ctx := tctx(t)
	f := followersOf(t, ms)[0]
	nodes := sdnv1.NewNodeServiceClient(f.conn)
	reg, err := nodes.Register(ctx, &sdnv1.RegisterNodeRequest{Name: "h1", UnderlayIp: "198.18.0.1", UnderlayMtu: 1500})
	if err != nil {
		t.Fatal(err)
	}
	leader := leaderOf(t, ms)
	before, _ := leader.api.live.LastHeartbeat("h1")
	time.Sleep(10 * time.Millisecond)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var rev uint64
		f.raft.FSM().View(func(tx *state.Tx) error { rev = tx.Meta().Revision; return nil })
		if rev >= reg.Revision {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the follower did not apply revision %d", reg.Revision)
		}
	}
	if _, err := nodes.Heartbeat(ctx, &sdnv1.HeartbeatRequest{Node: "h1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes.ReportRealized(ctx, &sdnv1.ReportRealizedRequest{Node: "h1", Revision: reg.Revision}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * relayEvery)
	for {
		at, _ := leader.api.live.LastHeartbeat("h1")
		rep, ok := leader.api.realized.Get("h1")
		if at.After(before) && ok && rep.Revision == reg.Revision {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the leader did not hear h1 through the follower: heartbeat %v (before %v), report %+v", at, before, rep)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A host the leader does not know is named back.
	res, err := leader.api.Relay(context.Background(), &sdnv1.RelayRequest{Signals: []*sdnv1.HostSignal{{Node: "ghost", Alive: true}, {Node: "h1", Alive: true}}})
	if err != nil || len(res.Unknown) != 1 || res.Unknown[0] != "ghost" {
		t.Fatalf("relay with an unknown host: %v %v", res, err)
	}
}
