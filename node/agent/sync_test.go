package agent

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/model"
)

// countingRealizer records the revisions it was asked to realize.
type countingRealizer struct {
	mu   sync.Mutex
	revs []uint64
	err  error
}

func (r *countingRealizer) Realize(_ context.Context, m *model.Desired) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revs = append(r.revs, m.Revision)
	return r.err
}

func TestSyncWaitsForRevisionThenRealizes(t *testing.T) {
	rz := &countingRealizer{}
	a, err := New(unreachable(t), rz, Config{Node: "h1", StatePath: filepath.Join(t.TempDir(), "desired.pb")})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Sync(context.Background(), 3) }()
	for rev := uint64(1); rev <= 3; rev++ {
		select {
		case err := <-done:
			t.Fatalf("Sync returned %v at revision %d, before revision 3 arrived", err, rev-1)
		case <-time.After(20 * time.Millisecond):
		}
		a.realizeMu.Lock()
		a.update(func() { a.desired.Apply(nil, rev) })
		a.realizeMu.Unlock()
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rz.mu.Lock()
	got := rz.revs
	rz.mu.Unlock()
	if len(got) != 1 || got[0] != 3 {
		t.Fatalf("realized revisions %v, want [3]", got)
	}

	// A realize error is Sync's error; a revision that never comes is a
	// timeout that says what it waited for.
	rz.err = errors.New("boom")
	if err := a.Sync(context.Background(), 2); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Sync with failing realizer: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err = a.Sync(ctx, 9)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "revision 9 from the servers (have 3)") {
		t.Fatalf("Sync for a revision that never comes: %v", err)
	}
}

// changeRealizer counts full and change realizes.
type changeRealizer struct {
	countingRealizer
	changes []uint64
}

func (r *changeRealizer) RealizeChange(_ context.Context, m *model.Desired) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, m.Revision)
	return nil
}

// TestWatchRealizesChanges: a revision from the watch goes through
// RealizeChange when the realizer has it; Sync (a CNI ADD) realizes fully.
func TestWatchRealizesChanges(t *testing.T) {
	rz := &changeRealizer{}
	a, err := New(unreachable(t), rz, Config{Node: "h1", StatePath: filepath.Join(t.TempDir(), "desired.pb")})
	if err != nil {
		t.Fatal(err)
	}
	a.realizeMu.Lock()
	a.update(func() { a.desired.Apply(nil, 4) })
	rep := a.realize(context.Background())
	a.realizeMu.Unlock()
	if rep.Error != "" || rep.Revision != 4 {
		t.Fatalf("report %v", rep)
	}
	if err := a.Sync(context.Background(), 4); err != nil {
		t.Fatal(err)
	}
	rz.mu.Lock()
	defer rz.mu.Unlock()
	if len(rz.changes) != 1 || rz.changes[0] != 4 || len(rz.revs) != 1 || rz.revs[0] != 4 {
		t.Fatalf("change realizes %v, full realizes %v; want [4] and [4]", rz.changes, rz.revs)
	}
}
