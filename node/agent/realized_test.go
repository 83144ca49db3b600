package agent

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestRealizedServedByTheWatchRealize: a caller that changed the host
// before publishing (CNI ADD's order) is served by the watch path's
// realize of its revision, with no realize of its own; a revision realized
// before the caller's change, or a failed realize, costs one full realize
// (Sync); a revision that never comes is a timeout saying so.
func TestRealizedServedByTheWatchRealize(t *testing.T) {
	rz := &changeRealizer{}
	a, err := New(unreachable(t), rz, Config{Node: "h1", StatePath: filepath.Join(t.TempDir(), "desired.pb")})
	if err != nil {
		t.Fatal(err)
	}
	plugged := time.Now()
	done := make(chan error, 1)
	go func() { done <- a.Realized(context.Background(), 5, plugged) }()
	select {
	case err := <-done:
		t.Fatalf("Realized returned %v before revision 5 was realized", err)
	case <-time.After(30 * time.Millisecond):
	}
	a.realizeMu.Lock()
	a.update(func() { a.desired.Apply(nil, 5) })
	a.realize(context.Background()) // the watch path
	a.realizeMu.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rz.mu.Lock()
	changes, fulls := len(rz.changes), len(rz.revs)
	rz.mu.Unlock()
	if changes != 1 || fulls != 0 {
		t.Fatalf("%d change realizes and %d full ones; want the watch path's alone (1, 0)", changes, fulls)
	}

	// Revision 5 was realized before this caller's change: one more.
	if err := a.Realized(context.Background(), 5, time.Now()); err != nil {
		t.Fatal(err)
	}
	rz.mu.Lock()
	fulls = len(rz.revs)
	rz.mu.Unlock()
	if fulls != 1 {
		t.Fatalf("%d full realizes for a revision realized before the change; want 1", fulls)
	}

	// The last realize failed: Realized realizes again and says why.
	rz.mu.Lock()
	rz.err = errors.New("boom")
	rz.mu.Unlock()
	a.realizeMu.Lock()
	a.update(func() { a.desired.Apply(nil, 6) })
	a.storeReport(&sdnv1.ReportRealizedRequest{Node: "h1", Revision: 6, Error: "boom"}, time.Now())
	a.realizeMu.Unlock()
	if err := a.Realized(context.Background(), 6, plugged); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Realized after a failed realize: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := a.Realized(ctx, 9, plugged); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "revision 9 (last realized 6)") {
		t.Fatalf("Realized for a revision that never comes: %v", err)
	}
}
