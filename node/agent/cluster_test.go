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

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// clusterServer is a NodeService of cluster id that sends a full state of
// one network at revision 7, and records registrations.
type clusterServer struct {
	sdnv1.UnimplementedNodeServiceServer
	id string

	mu        sync.Mutex
	registers []*sdnv1.RegisterNodeRequest
}

func (s *clusterServer) Register(_ context.Context, req *sdnv1.RegisterNodeRequest) (*sdnv1.RegisterNodeResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.registers = append(s.registers, req)
	return &sdnv1.RegisterNodeResponse{Node: &sdnv1.Node{Name: req.Name}, ClusterId: s.id}, nil
}

func (s *clusterServer) Heartbeat(context.Context, *sdnv1.HeartbeatRequest) (*sdnv1.HeartbeatResponse, error) {
	return &sdnv1.HeartbeatResponse{}, nil
}

func (s *clusterServer) ReportRealized(context.Context, *sdnv1.ReportRealizedRequest) (*sdnv1.ReportRealizedResponse, error) {
	return &sdnv1.ReportRealizedResponse{}, nil
}

func (s *clusterServer) Watch(req *sdnv1.WatchRequest, stream grpc.ServerStreamingServer[sdnv1.WatchEvent]) error {
	ev := &sdnv1.WatchEvent{Type: sdnv1.WatchEventType_WATCH_EVENT_TYPE_SNAPSHOT, Revision: 7, SnapshotDone: true, ClusterId: s.id,
		Changes: []*sdnv1.ObjectChange{{Op: sdnv1.ChangeOp_CHANGE_OP_CREATE, Kind: "network", Name: "other", Network: &sdnv1.Network{Name: "other"}}}}
	if err := stream.Send(ev); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

func runClusterAgent(t *testing.T, srv *clusterServer, statePath string, rz Realizer) (*Agent, chan error) {
	t.Helper()
	conn := serveNodes(t, srv)
	a, err := New(conn, rz, Config{Node: "h1", StatePath: statePath, HeartbeatInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return a, done
}

// TestAgentRefusesAnotherCluster: an agent holding cluster A's state that
// is pointed at cluster B's servers says so when registering, refuses B's
// state, stops, and leaves its host and saved state as they were.
func TestAgentRefusesAnotherCluster(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "desired.pb")
	m := model.NewDesired()
	m.Apply([]*sdnv1.ObjectChange{{Op: sdnv1.ChangeOp_CHANGE_OP_CREATE, Kind: "network", Name: "mine", Network: &sdnv1.Network{Name: "mine"}}}, 4)
	m.ClusterID = "A"
	if err := SaveDesired(statePath, m); err != nil {
		t.Fatal(err)
	}
	srv := &clusterServer{id: "B"}
	rz := &countingRealizer{}
	_, done := runClusterAgent(t, srv, statePath, rz)
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent kept following another cluster's servers")
	}
	var wrong *WrongClusterError
	if !errors.As(err, &wrong) || wrong.Have != "A" || wrong.Servers != "B" {
		t.Fatalf("Run ended with %v; want a WrongClusterError A/B", err)
	}
	rz.mu.Lock()
	revs := append([]uint64(nil), rz.revs...)
	rz.mu.Unlock()
	if len(revs) != 1 || revs[0] != 4 {
		t.Fatalf("realized %v; want only the saved revision 4", revs)
	}
	saved, lerr := LoadDesired(statePath)
	if lerr != nil || saved.Revision != 4 || saved.ClusterID != "A" || saved.Networks["mine"] == nil {
		t.Fatalf("saved state after the refusal: %+v %v", saved, lerr)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.registers) == 0 || srv.registers[0].ClusterId != "A" {
		t.Fatalf("registrations %v; want the host's cluster id A sent", srv.registers)
	}
}

// TestAgentLearnsItsCluster: an agent without a cluster id (a new host,
// or state from before ids) takes the servers' and saves it.
func TestAgentLearnsItsCluster(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "desired.pb")
	srv := &clusterServer{id: "B"}
	a, done := runClusterAgent(t, srv, statePath, &countingRealizer{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.WaitFor(ctx, func(m *model.Desired) bool { return m.Revision == 7 }); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		saved, err := LoadDesired(statePath)
		if err == nil && saved.Revision == 7 {
			if saved.ClusterID != "B" {
				t.Fatalf("saved cluster id %q, want B", saved.ClusterID)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("state never saved at revision 7: %+v %v", saved, err)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("agent stopped: %v", err)
	default:
	}
}
