package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"github.com/sdn-dev/sdn/snapshot"
)

func saveSnapshot(t *testing.T, ts *testServer) []byte {
	t.Helper()
	st, err := sdnv1.NewSnapshotServiceClient(ts.conn).Save(context.Background(), &sdnv1.SaveSnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for i := 0; ; i++ {
		c, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if (c.Header != nil) != (i == 0) {
			t.Fatalf("chunk %d carries a header: %v", i, c.Header != nil)
		}
		b.Write(c.Data)
	}
	return b.Bytes()
}

func restoreSnapshot(ts *testServer, file []byte, force bool) (*sdnv1.RestoreSnapshotResponse, error) {
	st, err := sdnv1.NewSnapshotServiceClient(ts.conn).Restore(context.Background())
	if err != nil {
		return nil, err
	}
	first := true
	for len(file) > 0 || first {
		n := min(len(file), 1000)
		if err := st.Send(&sdnv1.RestoreSnapshotRequest{Force: force && first, Data: file[:n]}); err != nil {
			break // the server ended the call; CloseAndRecv says why
		}
		file, first = file[n:], false
	}
	return st.CloseAndRecv()
}

// listAll renders what List returns, without the revision.
func listAll(t *testing.T, ts *testServer) string {
	t.Helper()
	var b strings.Builder
	for _, kind := range []string{"networks", "nodes", "workloads"} {
		res, err := sdnv1.NewConfigServiceClient(ts.conn).List(context.Background(), &sdnv1.ListRequest{Kind: kind})
		if err != nil {
			t.Fatal(err)
		}
		res.Revision = 0
		for _, n := range res.Nodes {
			n.LastHeartbeatUnixMs = 0 // the leader's memory, not the state
		}
		// Objects written after a restore carry revisions past the gap.
		for _, w := range res.Workloads {
			w.CreateRevision, w.ModRevision = w.CreateRevision%1_000_000_000, w.ModRevision%1_000_000_000
		}
		j, _ := protojson.Marshal(res)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

func revisionOf(t *testing.T, ts *testServer) uint64 {
	res, err := sdnv1.NewConfigServiceClient(ts.conn).List(context.Background(), &sdnv1.ListRequest{Kind: "networks"})
	if err != nil {
		t.Fatal(err)
	}
	return res.Revision
}

// TestSnapshotSaveRestore: a saved file verifies and describes the state;
// damaged files and a restore over state without force are refused with
// nothing changed; a restore into an empty server reproduces the objects
// and continues at a revision past the saved one.
// nameCluster gives a test server's cluster an id, as its leader's first
// tick does in sdnd.
func nameCluster(t *testing.T, ts *testServer, id string) {
	t.Helper()
	if _, err := ts.raft.Propose(tctx(t), command.InitCluster|command.IgnoreUnknownFlag, &sdnv1.InitClusterRequest{ClusterId: id}); err != nil {
		t.Fatal(err)
	}
}

func clusterIDOf(t *testing.T, ts *testServer) string {
	t.Helper()
	st, err := sdnv1.NewStatusServiceClient(ts.conn).Status(tctx(t), &sdnv1.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return st.ClusterId
}

func TestSnapshotSaveRestore(t *testing.T) {
	a := startServer(t)
	nameCluster(t, a, "cluster-a")
	setup(t, a)
	attach(t, a, "proj2", "w1", "host2")
	file := saveSnapshot(t, a)
	h, err := snapshot.Verify(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if h.Networks != 3 || h.Nodes != 1 || h.Workloads != 2 || h.Revision != revisionOf(t, a) || h.RaftIndex == 0 || h.RaftTerm == 0 || h.ServerId != "s1" || h.CreatedUnixMs == 0 || h.ClusterId != "cluster-a" {
		t.Fatalf("header %v", h)
	}

	b := startServer(t)
	nameCluster(t, b, "cluster-b")
	mustApply(t, b, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "other"}}})
	before, beforeRev := listAll(t, b), revisionOf(t, b)
	unchanged := func(what string) {
		t.Helper()
		if got := listAll(t, b); got != before || revisionOf(t, b) != beforeRev {
			t.Fatalf("%s changed the state:\n%s\nwas\n%s", what, got, before)
		}
	}
	flipped := append([]byte(nil), file...)
	flipped[len(flipped)-100] ^= 1
	for _, c := range []struct {
		name  string
		file  []byte
		force bool
		code  codes.Code
		want  string
	}{
		{"a flipped bit", flipped, true, codes.InvalidArgument, "checksum mismatch"},
		{"a truncated file", file[:len(file)/2], true, codes.InvalidArgument, "truncated"},
		{"no file", nil, true, codes.InvalidArgument, "empty"},
		{"not a snapshot", []byte("{\"networks\": []}"), true, codes.InvalidArgument, "not an sdn snapshot"},
		{"a restore over state without force", file, false, codes.FailedPrecondition, "not empty (1 networks"},
	} {
		_, err := restoreSnapshot(b, c.file, c.force)
		if status.Code(err) != c.code || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: %v; want %s with %q", c.name, err, c.code, c.want)
		}
		unchanged(c.name)
	}

	res, err := restoreSnapshot(b, file, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.ReplacedNetworks != 1 || res.Header.Revision != h.Revision || res.Revision != h.Revision+1_000_000_000 {
		t.Fatalf("restore response %v", res)
	}
	if got, want := listAll(t, b), listAll(t, a); got != want {
		t.Fatalf("restored state:\n%s\nsaved:\n%s", got, want)
	}
	if rev := revisionOf(t, b); rev != res.Revision {
		t.Fatalf("revision after the restore %d, want %d", rev, res.Revision)
	}
	// The id travels with the state: the saved cluster's hosts follow it.
	if id := clusterIDOf(t, b); id != "cluster-a" {
		t.Fatalf("cluster id after the restore %q, want the saved cluster's", id)
	}
	// Writes go on, and allocate what the saved cluster would.
	wa, wb := attach(t, a, "proj1", "next", "host2"), attach(t, b, "proj1", "next", "host2")
	if wb != wa+1_000_000_000 {
		t.Fatalf("next write at revision %d on the restored server, %d on the saved one", wb, wa)
	}
	if got, want := listAll(t, b), listAll(t, a); got != want {
		t.Fatalf("after one more attach on each:\n%s\nvs\n%s", got, want)
	}
}

// TestAgentKeepsItsStateUntilRestore is disaster recovery seen from a host:
// its servers are gone and a new, empty cluster takes their place. The
// agent, ahead of that cluster, keeps what it runs (its watch is held, not
// answered with the empty state) until the snapshot is restored, then
// receives the restored state whole.
func TestAgentKeepsItsStateUntilRestore(t *testing.T) {
	defer func(d time.Duration) { catchUpWait = d }(catchUpWait)
	catchUpWait = 200 * time.Millisecond
	old := startServer(t)
	nameCluster(t, old, "cluster-old")
	setup(t, old)
	path := filepath.Join(t.TempDir(), "desired.pb")
	a, _, stop := runAgent(t, old, path)
	waitRegistered(t, old, "host1")
	rev := attach(t, old, "proj1", "local1", "host1")
	waitRealized(t, old, rev)
	file := saveSnapshot(t, old)
	rev = attach(t, old, "proj1", "after-the-backup", "host1")
	waitRealized(t, old, rev)
	stop()
	want := a.Desired()
	if want.ClusterID != "cluster-old" {
		t.Fatalf("the agent's state is of cluster %q, want cluster-old", want.ClusterID)
	}

	// The new cluster names itself at once; it takes the old cluster's
	// host in while it declares nothing, and gets the old id back from the
	// snapshot.
	fresh := startServer(t)
	nameCluster(t, fresh, "cluster-new")
	a2, rec, stop2 := runAgent(t, fresh, path)
	defer stop2()
	waitRegistered(t, fresh, "host1") // it registered again
	time.Sleep(4 * catchUpWait)
	if a2.Snapshots != 0 || !a2.Desired().Equal(want) {
		t.Fatalf("the agent took %d snapshots from the empty cluster; its state is at revision %d, was %d", a2.Snapshots, a2.Desired().Revision, want.Revision)
	}
	res, err := restoreSnapshot(fresh, file, false)
	if err != nil {
		t.Fatal(err)
	}
	// host2's agent still follows the old server: wait for host1 alone.
	st := sdnv1.NewStatusServiceClient(fresh.conn)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r, err := st.Status(context.Background(), &sdnv1.StatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		done := false
		for _, n := range r.Nodes {
			done = done || (n.Name == "host1" && n.RealizedRevision >= res.Revision)
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("host1 did not realize the restored revision %d: %v", res.Revision, r.Nodes)
		}
	}
	checkMirror(t, fresh, a2, rec)
	if a2.Snapshots != 1 {
		t.Fatalf("the agent took %d snapshots after the restore; want 1", a2.Snapshots)
	}
	if id := a2.Desired().ClusterID; id != "cluster-old" {
		t.Fatalf("the agent's cluster id after the restore %q", id)
	}
	var has bool
	a2.View(func(m *model.Desired) { _, has = m.Workloads["proj1/after-the-backup"] })
	if has {
		t.Fatal("the workload attached after the backup is still on the host")
	}
}
