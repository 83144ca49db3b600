package api

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/sdn-dev/sdn/cluster/command"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// rawWatch is a watch stream read by the test itself, as an agent would.
type rawWatch struct {
	t      *testing.T
	events chan *sdnv1.WatchEvent
}

func openWatch(t *testing.T, ts *testServer, node string, after uint64, filtered bool) *rawWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := sdnv1.NewNodeServiceClient(ts.conn).Watch(ctx, &sdnv1.WatchRequest{Node: node, AfterRevision: after, Filtered: filtered})
	if err != nil {
		t.Fatal(err)
	}
	w := &rawWatch{t: t, events: make(chan *sdnv1.WatchEvent, 1000)}
	go func(s grpc.ServerStreamingClient[sdnv1.WatchEvent]) {
		for {
			ev, err := s.Recv()
			if err != nil {
				close(w.events)
				return
			}
			w.events <- ev
		}
	}(s)
	return w
}

// next returns the next event, or nil after wait without one.
func (w *rawWatch) next(wait time.Duration) *sdnv1.WatchEvent {
	select {
	case ev := <-w.events:
		return ev
	case <-time.After(wait):
		return nil
	}
}

// until reads events up to one at revision rev or later and returns them.
func (w *rawWatch) until(rev uint64) []*sdnv1.WatchEvent {
	w.t.Helper()
	var out []*sdnv1.WatchEvent
	for {
		ev := w.next(10 * time.Second)
		if ev == nil {
			w.t.Fatalf("no event at revision %d within 10s; got %v", rev, out)
		}
		out = append(out, ev)
		if ev.Revision >= rev && (ev.Type != sdnv1.WatchEventType_WATCH_EVENT_TYPE_SNAPSHOT || ev.SnapshotDone) {
			return out
		}
	}
}

func register(t *testing.T, ts *testServer, node, ip string) uint64 {
	t.Helper()
	res, err := sdnv1.NewNodeServiceClient(ts.conn).Register(context.Background(), &sdnv1.RegisterNodeRequest{Name: node, UnderlayIp: ip, UnderlayMtu: 1500})
	if err != nil {
		t.Fatal(err)
	}
	return res.Revision
}

// TestFilteredWatchSendsOnlyWhatConcernsTheHost: a workload reaches its
// host only, a host's down mark reaches no one, a network every host;
// PROGRESS tells an idle host how far it is; a host behind gets several
// revisions in one message.
func TestFilteredWatchSendsOnlyWhatConcernsTheHost(t *testing.T) {
	old := progressEvery
	progressEvery = time.Second
	t.Cleanup(func() { progressEvery = old })
	ts := startServer(t)
	mustApply(t, ts, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}}})
	register(t, ts, "h1", "198.18.0.1")
	rev := register(t, ts, "h2", "198.18.0.2")
	w1, w2 := openWatch(t, ts, "h1", 0, true), openWatch(t, ts, "h2", 0, true)
	for _, w := range []*rawWatch{w1, w2} {
		// A snapshot first (maybe of a revision before rev, which the
		// feed had not taken yet: rev then follows as a delta).
		if evs := w.until(rev); evs[0].Type != sdnv1.WatchEventType_WATCH_EVENT_TYPE_SNAPSHOT {
			t.Fatalf("first: %v", evs[0])
		}
	}

	// A workload on h2: h2 receives it, h1 nothing.
	rev = attach(t, ts, "proj1", "web", "h2")
	if evs := w2.until(rev); len(evs) != 1 || evs[0].Type != sdnv1.WatchEventType_WATCH_EVENT_TYPE_DELTA || len(evs[0].Changes) != 1 || evs[0].Changes[0].Workload.GetNode() != "h2" {
		t.Fatalf("h2 got %v", evs)
	}
	// A down mark on h2: no host's flows change, no one hears of it.
	down, err := ts.raft.Propose(context.Background(), command.SetNodeLiveness, &sdnv1.SetNodeLivenessRequest{Name: "h2", Down: true, AtUnixMs: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	downAt := time.Now()
	// h1 hears nothing but a PROGRESS at the head, within one
	// progressEvery (a stream that told the position it had before
	// reading the feed took two).
	ev := w1.next(5 * time.Second)
	if ev == nil || ev.Type != sdnv1.WatchEventType_WATCH_EVENT_TYPE_PROGRESS || ev.Revision != down.Revision || len(ev.Changes) != 0 {
		t.Fatalf("h1 got %v; want only a PROGRESS at %d", ev, down.Revision)
	}
	if took := time.Since(downAt); took > progressEvery+200*time.Millisecond {
		t.Errorf("the PROGRESS came %s after the revision; want within %s", took, progressEvery)
	}
	if ev := w2.next(5 * time.Second); ev == nil || ev.Type != sdnv1.WatchEventType_WATCH_EVENT_TYPE_PROGRESS {
		t.Fatalf("h2 got %v; want a PROGRESS", ev)
	}

	// A new network: every host.
	rev = mustApply(t, ts, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}, {Name: "proj2"}}})
	for _, w := range []*rawWatch{w1, w2} {
		if evs := w.until(rev); len(evs) != 1 || len(evs[0].Changes) != 1 || evs[0].Changes[0].Network.GetName() != "proj2" {
			t.Fatalf("a new network: %v", evs)
		}
	}

	// A host that resumes from before: what concerned it since, in one
	// message at the last revision.
	attach(t, ts, "proj1", "db", "h1")
	attach(t, ts, "proj2", "other", "h2")
	rev = attach(t, ts, "proj2", "cache", "h1")
	w1.until(rev) // the feed has taken rev
	w3 := openWatch(t, ts, "h1", down.Revision, true)
	evs := w3.until(rev)
	if len(evs) != 1 || evs[0].Revision != rev || len(evs[0].Changes) != 3 {
		t.Fatalf("resume: %v; want one event at %d with the network, db and cache", evs, rev)
	}
}

// TestUnfilteredWatchKeepsTheOriginalProtocol: a watch that does not ask
// for filtering (an older agent) gets every revision, empty when nothing
// in it concerns the host, and whole nodes.
func TestUnfilteredWatchKeepsTheOriginalProtocol(t *testing.T) {
	ts := startServer(t)
	mustApply(t, ts, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}}})
	register(t, ts, "h1", "198.18.0.1")
	rev := register(t, ts, "h2", "198.18.0.2")
	w := openWatch(t, ts, "h1", rev, false)
	rev = attach(t, ts, "proj1", "web", "h2")
	evs := w.until(rev)
	if len(evs) != 1 || len(evs[0].Changes) != 1 || evs[0].Changes[0].Op != sdnv1.ChangeOp_CHANGE_OP_DELETE {
		t.Fatalf("another host's workload: %v; want a bare delete", evs)
	}
	down, err := ts.raft.Propose(context.Background(), command.SetNodeLiveness, &sdnv1.SetNodeLivenessRequest{Name: "h2", Down: true, AtUnixMs: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	evs = w.until(down.Revision)
	if len(evs) != 1 || evs[0].Changes[0].Node.GetDownSinceUnixMs() == 0 {
		t.Fatalf("a down mark: %v; want the whole node", evs)
	}
}
