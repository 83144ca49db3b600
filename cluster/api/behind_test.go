package api

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/node/agent"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestFollowerCutOffEndsWatches: a follower that no longer hears from a
// leader stops serving watches after followerStaleAfter, saying so, and
// the agent asks to watch another server.
func TestFollowerCutOffEndsWatches(t *testing.T) {
	oldStale, oldProgress := followerStaleAfter, progressEvery
	followerStaleAfter, progressEvery = 500*time.Millisecond, 100*time.Millisecond
	t.Cleanup(func() { followerStaleAfter, progressEvery = oldStale, oldProgress })
	ms := startCluster(t, 3)
	ctx := tctx(t)
	f := followersOf(t, ms)[0]
	nodes := sdnv1.NewNodeServiceClient(f.conn)
	if _, err := nodes.Register(ctx, &sdnv1.RegisterNodeRequest{Name: "h1", UnderlayIp: "198.18.0.1", UnderlayMtu: 1500}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var avoided []string
	a, err := agent.New(f.conn, &recorder{}, agent.Config{Node: "h1", UnderlayIP: "198.18.0.1", UnderlayMTU: 1500,
		StatePath: filepath.Join(t.TempDir(), "desired.pb"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		AvoidServer: func(addr string) { mu.Lock(); avoided = append(avoided, addr); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(actx); close(done) }()
	defer func() { cancel(); <-done }()
	if err := a.WaitFor(ctx, func(m *model.Desired) bool { return m.Revision > 0 }); err != nil {
		t.Fatalf("the agent did not get its state: %v", err)
	}
	w := openWatch(t, &testServer{conn: f.conn}, "h1", 0, true)
	for ev := w.next(5 * time.Second); ev != nil && !ev.SnapshotDone; ev = w.next(5 * time.Second) {
	}
	for _, m := range ms {
		if m != f {
			m.stop()
		}
	}
	// The raw stream ends, saying why.
	ended := time.Now()
	for ev := w.next(10 * time.Second); ev != nil; ev = w.next(10 * time.Second) {
	}
	if time.Since(ended) > 9*time.Second {
		t.Fatal("the cut-off follower's watch did not end")
	}
	_, err = nodes.Watch(ctx, &sdnv1.WatchRequest{Node: "h1", AfterRevision: 1, Filtered: true})
	if err == nil {
		var s sdnv1.NodeService_WatchClient
		s, _ = nodes.Watch(ctx, &sdnv1.WatchRequest{Node: "h1", AfterRevision: 1, Filtered: true})
		_, err = s.Recv()
	}
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), model.ServerBehind) {
		t.Fatalf("a watch on the cut-off follower: %v; want Unavailable with %q", err, model.ServerBehind)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		n := len(avoided)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent did not ask to avoid the server that is behind")
		}
	}
}
