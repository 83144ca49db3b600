package api

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestRequestTooLarge: a request past model.MaxRequestBytes is refused in
// words (not gRPC's "received message larger than max"), through a
// follower too, and changes nothing.
func TestRequestTooLarge(t *testing.T) {
	ms := startCluster(t, 3)
	ctx := tctx(t)
	req := &sdnv1.ApplyRequest{}
	for i := 0; proto.Size(req) <= model.MaxRequestBytes; i++ {
		req.Networks = append(req.Networks, &sdnv1.Network{Name: "n" + strings.Repeat("x", i%50), Labels: map[string]string{"k": strings.Repeat("v", 1<<20)}})
	}
	for _, m := range []*member{leaderOf(t, ms), followersOf(t, ms)[0]} {
		c := sdnv1.NewConfigServiceClient(m.conn)
		_, err := c.Apply(ctx, req)
		want := "this ConfigService/Apply request is 16777624 bytes, more than the 16777216 bytes a server takes in one call (docs/design.md, \"Message sizes and paging\"); nothing was changed. Send it in parts: for an apply, split the objects over several files and apply them separately (without --prune, which would delete what the other parts declare)"
		if status.Code(err) != codes.ResourceExhausted || status.Convert(err).Message() != want {
			t.Fatalf("apply of %d bytes to %s: %v\nwant ResourceExhausted: %s", proto.Size(req), m.id, err, want)
		}
		l, err := c.List(ctx, &sdnv1.ListRequest{Kind: "networks"})
		if err != nil || len(l.Networks) != 0 {
			t.Fatalf("after the refusal: %v %v", l, err)
		}
	}
}

// TestAgentTakesARevisionOverFourMiB: one apply of 40,000 workloads on a
// host is one watch event of some 5 MB for its agent, past gRPC's
// default 4 MiB; the agent takes it (and does not retry it for ever).
func TestAgentTakesARevisionOverFourMiB(t *testing.T) {
	ts := startServer(t)
	mustApply(t, ts, &sdnv1.ApplyRequest{Cluster: &sdnv1.ClusterSettings{Cidr: "10.0.0.0/12", HostPrefix: 16}, Networks: []*sdnv1.Network{{Name: "proj1"}}})
	a, rec, stop := runAgent(t, ts, filepath.Join(t.TempDir(), "desired.pb"))
	defer stop()
	waitRegistered(t, ts, "host1")
	req := &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}}}
	for i := range 40000 {
		req.Workloads = append(req.Workloads, &sdnv1.Workload{Network: "proj1", Name: fmt.Sprintf("w-%05d", i), Node: "host1", Labels: map[string]string{"app": "web", "tier": "frontend"}})
	}
	rev := mustApply(t, ts, req)
	var ev *sdnv1.WatchEvent
	err := ts.raft.FSM().View(func(tx *state.Tx) error {
		tx.ChangesAfter(rev-1, func(e *sdnv1.WatchEvent) bool { ev = filterEvent(e, "host1"); return false })
		return nil
	})
	if err != nil || proto.Size(ev) <= 4<<20 {
		t.Fatalf("the apply's watch event is %d bytes (%v), not past 4 MiB", proto.Size(ev), err)
	}
	waitRealized(t, ts, rev)
	checkMirror(t, ts, a, rec)
}
