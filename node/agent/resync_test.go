package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// flakyRealizer records how often it was asked to realize, and fails
// while failing is set.
type flakyRealizer struct {
	mu      sync.Mutex
	calls   int
	failing bool
}

func (r *flakyRealizer) Realize(context.Context, *model.Desired) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.failing {
		return errors.New("ovs-vswitchd is restarting")
	}
	return nil
}

func (r *flakyRealizer) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// TestResyncWithoutChanges: with no server reachable and no change, the
// agent still makes the host match its persisted state every interval, so
// what was lost underneath (a restarted ovs-vswitchd) comes back.
func TestResyncWithoutChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "desired.pb")
	m := model.NewDesired()
	m.Apply([]*sdnv1.ObjectChange{{Op: sdnv1.ChangeOp_CHANGE_OP_CREATE, Kind: "network", Name: "p", Network: &sdnv1.Network{Name: "p"}}}, 3)
	if err := SaveDesired(path, m); err != nil {
		t.Fatal(err)
	}
	// Nothing listens there: the agent never reaches a server.
	conn, err := grpc.NewClient("unix:///nonexistent/sdn.sock", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := &flakyRealizer{failing: true}
	a, err := New(conn, r, Config{Node: "h1", StatePath: path, ResyncInterval: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for r.count() < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	r.mu.Lock()
	r.failing = false
	r.mu.Unlock()
	n := r.count()
	for r.count() < n+2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if r.count() < n+2 {
		t.Fatalf("realized %d times; the agent stopped resyncing", r.count())
	}
	a.realizeMu.Lock()
	defer a.realizeMu.Unlock()
	if last := a.lastReport.Load(); last == nil || last.Error != "" || last.Revision != 3 {
		t.Fatalf("last report %v: want revision 3 without error once the realizer recovered", a.lastReport.Load())
	}
}

// unreachable is a client connection to a server that is not there: calls
// fail (the agent logs and carries on), as when every server is down.
func unreachable(t *testing.T) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("unix:///nonexistent/sdn.sock", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
