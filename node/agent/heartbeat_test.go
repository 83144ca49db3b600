package agent

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// beatServer is a NodeService that counts registrations and heartbeats and
// forgets the host on request (as a removal or a release would).
type beatServer struct {
	sdnv1.UnimplementedNodeServiceServer
	mu         sync.Mutex
	registered bool
	registers  int
	beats      int
	realized   *sdnv1.ReportRealizedRequest // the last heartbeat's
}

func (s *beatServer) Register(_ context.Context, req *sdnv1.RegisterNodeRequest) (*sdnv1.RegisterNodeResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.registered = true
	s.registers++
	return &sdnv1.RegisterNodeResponse{Node: &sdnv1.Node{Name: req.Name}}, nil
}

func (s *beatServer) Heartbeat(_ context.Context, req *sdnv1.HeartbeatRequest) (*sdnv1.HeartbeatResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.registered {
		return nil, status.Errorf(codes.NotFound, "host %s is not registered", req.Node)
	}
	s.beats++
	s.realized = req.Realized
	return &sdnv1.HeartbeatResponse{}, nil
}

func (s *beatServer) Watch(_ *sdnv1.WatchRequest, stream grpc.ServerStreamingServer[sdnv1.WatchEvent]) error {
	<-stream.Context().Done()
	return stream.Context().Err()
}

func (s *beatServer) ReportRealized(context.Context, *sdnv1.ReportRealizedRequest) (*sdnv1.ReportRealizedResponse, error) {
	return &sdnv1.ReportRealizedResponse{}, nil
}

func (s *beatServer) counts() (registers, beats int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.registers, s.beats
}

// TestHeartbeatsAndRegisterAgain: a running agent heartbeats every
// interval, and registers again when the servers no longer know its host.
func TestHeartbeatsAndRegisterAgain(t *testing.T) {
	srv := &beatServer{}
	conn := serveNodes(t, srv)
	a, err := New(conn, &flakyRealizer{}, Config{Node: "h1", StatePath: filepath.Join(t.TempDir(), "desired.pb"),
		HeartbeatInterval: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.Run(ctx)
	wait := func(what string, cond func(registers, beats int) bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if cond(srv.counts()) {
				return
			}
			if time.Now().After(deadline) {
				r, b := srv.counts()
				t.Fatalf("timed out waiting for %s (%d registrations, %d heartbeats)", what, r, b)
			}
		}
	}
	wait("heartbeats", func(r, b int) bool { return r == 1 && b >= 3 })
	srv.mu.Lock()
	srv.registered = false // the host was removed
	srv.mu.Unlock()
	wait("a second registration", func(r, b int) bool { return r == 2 })
	_, b := srv.counts()
	wait("heartbeats again", func(r, b2 int) bool { return b2 >= b+3 })
}

// TestHeartbeatCarriesLastReport: every heartbeat relays the agent's latest
// realize outcome, so a leader just elected learns it within one
// heartbeat.
func TestHeartbeatCarriesLastReport(t *testing.T) {
	srv := &beatServer{}
	conn := serveNodes(t, srv)
	// A persisted state at revision 4: the agent realizes it at start.
	statePath := filepath.Join(t.TempDir(), "desired.pb")
	m := model.NewDesired()
	m.Apply(nil, 4)
	if err := SaveDesired(statePath, m); err != nil {
		t.Fatal(err)
	}
	a, err := New(conn, &flakyRealizer{}, Config{Node: "h1", StatePath: statePath,
		HeartbeatInterval: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.Run(ctx)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		srv.mu.Lock()
		got := srv.realized
		srv.mu.Unlock()
		if got != nil {
			if got.Revision != 4 || got.Error != "" {
				t.Fatalf("heartbeat relayed %v; want revision 4 without error", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no heartbeat relayed the realized revision")
		}
	}
}
