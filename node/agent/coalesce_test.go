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

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// burstServer streams a burst of revisions to a watch, then idles, and
// records the reports.
type burstServer struct {
	sdnv1.UnimplementedNodeServiceServer
	revisions int

	mu      sync.Mutex
	reports []uint64
}

func (s *burstServer) Register(context.Context, *sdnv1.RegisterNodeRequest) (*sdnv1.RegisterNodeResponse, error) {
	return &sdnv1.RegisterNodeResponse{Node: &sdnv1.Node{Name: "h1"}}, nil
}

func (s *burstServer) ReportRealized(_ context.Context, r *sdnv1.ReportRealizedRequest) (*sdnv1.ReportRealizedResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reports = append(s.reports, r.Revision)
	return &sdnv1.ReportRealizedResponse{}, nil
}

func (s *burstServer) Watch(req *sdnv1.WatchRequest, stream grpc.ServerStreamingServer[sdnv1.WatchEvent]) error {
	for rev := req.AfterRevision + 1; rev <= uint64(s.revisions); rev++ {
		ev := &sdnv1.WatchEvent{Type: sdnv1.WatchEventType_WATCH_EVENT_TYPE_DELTA, Revision: rev}
		if err := stream.Send(ev); err != nil {
			return err
		}
	}
	<-stream.Context().Done()
	return nil
}

// slowRealizer takes a while per realize, like OVS does.
type slowRealizer struct{ countingRealizer }

func (r *slowRealizer) Realize(ctx context.Context, m *model.Desired) error {
	time.Sleep(5 * time.Millisecond)
	return r.countingRealizer.Realize(ctx, m)
}

// TestBurstIsRealizedOnce: an agent that receives many revisions at once
// applies them all and realizes a few times, not once per revision, and
// reports the last.
func TestBurstIsRealizedOnce(t *testing.T) {
	srv := &burstServer{revisions: 500}
	conn := serveNodes(t, srv)
	rz := &slowRealizer{}
	a, err := New(conn, rz, Config{Node: "h1", StatePath: filepath.Join(t.TempDir(), "desired.pb"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		srv.mu.Lock()
		n := len(srv.reports)
		last := uint64(0)
		if n > 0 {
			last = srv.reports[n-1]
		}
		srv.mu.Unlock()
		if last == 500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("last report %d, want 500", last)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	rz.mu.Lock()
	defer rz.mu.Unlock()
	if len(rz.revs) == 0 || rz.revs[len(rz.revs)-1] != 500 {
		t.Fatalf("realized %v", rz.revs)
	}
	if len(rz.revs) > 100 {
		t.Fatalf("%d realizes for 500 revisions received in a burst; they are not coalesced", len(rz.revs))
	}
	t.Logf("500 revisions realized in %d realizes", len(rz.revs))
}
