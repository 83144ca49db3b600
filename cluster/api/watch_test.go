package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/cluster/feed"
	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/node/agent"
	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// recorder is the datapath's stand-in for control-plane tests: it keeps the
// last state it was asked to realize.
type recorder struct {
	mu   sync.Mutex
	last *model.Desired
}

func (r *recorder) Realize(_ context.Context, m *model.Desired) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = m
	return nil
}

// serverView builds, from List (not Watch), what a host should hold: as a
// filtered watch sends it (nodes and groups cut to what agents use).
func serverView(t *testing.T, ts *testServer, node string) *model.Desired {
	t.Helper()
	c := sdnv1.NewConfigServiceClient(ts.conn)
	ctx := context.Background()
	m := model.NewDesired()
	var rev uint64
	for _, kind := range []string{"cluster", "networks", "nodes", "workloads", "policies", "addressgroups"} {
		res, err := c.List(ctx, &sdnv1.ListRequest{Kind: kind})
		if err != nil {
			t.Fatal(err)
		}
		rev = res.Revision
		var ch []*sdnv1.ObjectChange
		if res.Cluster != nil && res.Cluster.ModRevision != 0 {
			ch = append(ch, &sdnv1.ObjectChange{Kind: "cluster", Name: "cluster", Cluster: res.Cluster})
		}
		for _, n := range res.Networks {
			ch = append(ch, &sdnv1.ObjectChange{Kind: "network", Name: n.Name, Network: n})
		}
		for _, n := range res.Nodes {
			n.LastHeartbeatUnixMs = 0 // the leader's memory, not the watched state
			ch = append(ch, &sdnv1.ObjectChange{Kind: "node", Name: n.Name, Node: feed.AgentNode(n)})
		}
		for _, w := range res.Workloads {
			if w.Node == node { // other hosts' workloads are not sent
				ch = append(ch, &sdnv1.ObjectChange{Kind: "workload", Name: w.Network + "/" + w.Name, Workload: w})
			}
		}
		for _, p := range res.Policies {
			// Only the policies that select one of its workloads.
			for _, w := range m.Workloads {
				if w.Node == node && policy.Selects(p, w, m.Networks[w.Network]) {
					ch = append(ch, &sdnv1.ObjectChange{Kind: "policy", Name: model.PolicyKey(p), Policy: p})
					break
				}
			}
		}
		for _, g := range res.AddressGroups {
			if slices.Contains(g.Nodes, node) { // only the groups its policies use
				ch = append(ch, &sdnv1.ObjectChange{Kind: "addressgroup", Name: g.Name, AddressGroup: feed.AgentGroup(g)})
			}
		}
		m.Apply(ch, rev)
	}
	return m
}

// waitRealized waits, through the API, until every host realized rev.
func waitRealized(t *testing.T, ts *testServer, rev uint64) {
	t.Helper()
	st, err := sdnv1.NewStatusServiceClient(ts.conn).WaitRealized(context.Background(), &sdnv1.WaitRealizedRequest{Revision: rev, TimeoutMs: 20000})
	if err != nil {
		t.Fatal(err)
	}
	for {
		p, err := st.Recv()
		if err != nil {
			t.Fatalf("waiting for revision %d: %v", rev, err)
		}
		if p.Done {
			return
		}
	}
}

func mustApply(t *testing.T, ts *testServer, req *sdnv1.ApplyRequest) uint64 {
	t.Helper()
	res, err := sdnv1.NewConfigServiceClient(ts.conn).Apply(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res.Revision
}

func attach(t *testing.T, ts *testServer, network, name, node string) uint64 {
	t.Helper()
	res, err := sdnv1.NewWorkloadServiceClient(ts.conn).Attach(context.Background(), &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{
		Name: name, Network: network, Node: node, Labels: map[string]string{"app": name},
		Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_CNI, ContainerId: name, Ifname: "eth0"}}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Revision
}

// runAgent starts an agent for host1 with its state at statePath.
func runAgent(t *testing.T, ts *testServer, statePath string) (*agent.Agent, *recorder, func()) {
	return runHostAgent(t, ts, "host1", "198.18.0.1", statePath)
}

func runHostAgent(t *testing.T, ts *testServer, node, ip, statePath string) (*agent.Agent, *recorder, func()) {
	t.Helper()
	rec := &recorder{}
	a, err := agent.New(ts.conn, rec, agent.Config{Node: node, UnderlayIP: ip, UnderlayMTU: 1500, StatePath: statePath,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	return a, rec, func() { cancel(); <-done }
}

func waitRegistered(t *testing.T, ts *testServer, node string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		res, err := sdnv1.NewConfigServiceClient(ts.conn).List(context.Background(), &sdnv1.ListRequest{Kind: "nodes"})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range res.Nodes {
			if n.Name == node {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("host %s never registered", node)
}

func checkMirror(t *testing.T, ts *testServer, a *agent.Agent, rec *recorder) {
	t.Helper()
	want := serverView(t, ts, "host1")
	got := a.Desired()
	// A filtered watch leaves a host at the last revision that concerned
	// it (or a later one a PROGRESS told).
	if got.Revision > want.Revision {
		t.Fatalf("agent state at revision %d, past the server's %d", got.Revision, want.Revision)
	}
	same := func(d *model.Desired) bool {
		return slices.EqualFunc(d.Changes(), want.Changes(), func(x, y *sdnv1.ObjectChange) bool { return proto.Equal(x, y) })
	}
	if !same(got) {
		t.Fatalf("agent state at revision %d differs from the server's at %d:\n got %v\nwant %v", got.Revision, want.Revision, got.Changes(), want.Changes())
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !same(rec.last) {
		t.Fatal("the realizer was not handed the final state")
	}
}

func setup(t *testing.T, ts *testServer) uint64 {
	mustApply(t, ts, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "infra", Admin: true}, {Name: "proj1"}, {Name: "proj2"}}})
	// A second host with its own agent, so host1 sees remote workloads.
	_, _, stop := runHostAgent(t, ts, "host2", "198.18.0.2", filepath.Join(t.TempDir(), "host2.pb"))
	t.Cleanup(stop)
	waitRegistered(t, ts, "host2")
	return attach(t, ts, "proj1", "remote1", "host2")
}

func TestWatchResumesAfterDisconnect(t *testing.T) {
	ts := startServer(t)
	setup(t, ts)
	path := filepath.Join(t.TempDir(), "desired.pb")
	a, rec, stop := runAgent(t, ts, path)
	waitRegistered(t, ts, "host1")
	rev := attach(t, ts, "proj1", "local1", "host1")
	waitRealized(t, ts, rev)
	checkMirror(t, ts, a, rec)
	stop()

	// Changes while the agent is away: creates, updates, deletes.
	for i := 0; i < 5; i++ {
		attach(t, ts, "proj2", fmt.Sprintf("w%d", i), "host1")
	}
	if _, err := sdnv1.NewWorkloadServiceClient(ts.conn).Detach(context.Background(), &sdnv1.DetachWorkloadRequest{Network: "proj1", Name: "local1"}); err != nil {
		t.Fatal(err)
	}
	rev = mustApply(t, ts, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "infra", Admin: true}, {Name: "proj1", Labels: map[string]string{"env": "prod"}}, {Name: "proj2"}, {Name: "proj3"}}})

	a2, rec2, stop2 := runAgent(t, ts, path)
	defer stop2()
	if a2.Desired().Revision == 0 {
		t.Fatal("the restarted agent did not load its persisted state")
	}
	waitRealized(t, ts, rev)
	checkMirror(t, ts, a2, rec2)
	if a2.Snapshots != 0 || a2.Deltas == 0 {
		t.Fatalf("resume took %d snapshots and %d deltas; want deltas only", a2.Snapshots, a2.Deltas)
	}
}

func TestWatchResumesAfterCompaction(t *testing.T) {
	ts := startServer(t)
	setup(t, ts)
	path := filepath.Join(t.TempDir(), "desired.pb")
	a, rec, stop := runAgent(t, ts, path)
	waitRegistered(t, ts, "host1")
	rev := attach(t, ts, "proj1", "local1", "host1")
	waitRealized(t, ts, rev)
	checkMirror(t, ts, a, rec)
	stop()

	attach(t, ts, "proj2", "later", "host1")
	rev = attach(t, ts, "proj2", "later2", "host2")
	res, err := sdnv1.NewStatusServiceClient(ts.conn).Compact(context.Background(), &sdnv1.CompactRequest{Revision: rev})
	if err != nil || res.CompactedRevision != rev {
		t.Fatalf("compact: %v %v", res, err)
	}
	a2, rec2, stop2 := runAgent(t, ts, path)
	defer stop2()
	waitRealized(t, ts, rev)
	checkMirror(t, ts, a2, rec2)
	// The filtered watch is served from the server's feed, whose memory
	// keeps more than the store's compacted history: no snapshot.
	if a2.Snapshots != 0 {
		t.Fatalf("after compaction the agent took %d snapshots; want none (the feed still holds the revisions)", a2.Snapshots)
	}
}

// TestSnapshotChunks checks a state larger than one chunk (by count, and
// by bytes) arrives whole.
func TestSnapshotChunks(t *testing.T) {
	for _, tc := range []struct{ size, bytes int }{{3, 1 << 20}, {500, 300}} {
		t.Run(fmt.Sprintf("%d changes or %d bytes", tc.size, tc.bytes), func(t *testing.T) { snapshotChunks(t, tc.size, tc.bytes) })
	}
}

func snapshotChunks(t *testing.T, size, bytes int) {
	ts := startServer(t)
	ts.api.chunkSize, ts.api.chunkBytes = size, bytes
	setup(t, ts)
	var rev uint64
	for i := 0; i < 10; i++ {
		rev = attach(t, ts, "proj1", fmt.Sprintf("w%d", i), "host2")
	}
	var chunks []*sdnv1.WatchEvent
	if err := ts.raft.FSM().View(func(tx *state.Tx) error { chunks = ts.api.snapshot(tx, "host2", "test"); return nil }); err != nil {
		t.Fatal(err)
	}
	changes := 0
	for i, c := range chunks {
		if len(c.Changes) == 0 || len(c.Changes) > size || (len(c.Changes) > 1 && proto.Size(c) > bytes+100) || c.SnapshotDone != (i == len(chunks)-1) {
			t.Fatalf("chunk %d of %d: %d changes in %d bytes, done %v", i, len(chunks), len(c.Changes), proto.Size(c), c.SnapshotDone)
		}
		changes += len(c.Changes)
	}
	if changes < 12 || len(chunks) < 3 {
		t.Fatalf("%d changes in %d chunks", changes, len(chunks))
	}
	a, rec, stop := runAgent(t, ts, filepath.Join(t.TempDir(), "desired.pb"))
	defer stop()
	waitRegistered(t, ts, "host1")
	waitRealized(t, ts, rev+1)
	checkMirror(t, ts, a, rec)
}

// TestWatchSendsOnlyLocalWorkloads: a host gets its own workloads, not
// other hosts'; a workload moved to another host leaves its mirror.
func TestWatchSendsOnlyLocalWorkloads(t *testing.T) {
	ts := startServer(t)
	setup(t, ts) // remote1 on host2
	a, rec, stop := runAgent(t, ts, filepath.Join(t.TempDir(), "desired.pb"))
	defer stop()
	waitRegistered(t, ts, "host1")
	nets := []*sdnv1.Network{{Name: "infra", Admin: true}, {Name: "proj1"}, {Name: "proj2"}}
	rev := mustApply(t, ts, &sdnv1.ApplyRequest{Networks: nets, Workloads: []*sdnv1.Workload{{Name: "db", Network: "proj1", Node: "host1"}}})
	waitRealized(t, ts, rev)
	checkMirror(t, ts, a, rec)
	has := func(key string) bool {
		var ok bool
		a.View(func(m *model.Desired) { _, ok = m.Workloads[key] })
		return ok
	}
	if !has("proj1/db") || has("proj1/remote1") {
		t.Fatal("host1 should hold its own workload db and not host2's remote1")
	}
	rev = mustApply(t, ts, &sdnv1.ApplyRequest{Networks: nets, Workloads: []*sdnv1.Workload{{Name: "db", Network: "proj1", Node: "host2"}}})
	waitRealized(t, ts, rev)
	checkMirror(t, ts, a, rec)
	if has("proj1/db") {
		t.Fatal("db moved to host2 but host1 still holds it")
	}
}

// TestWatchSendsGroupsToTheHostsThatNeedThem: a policy reaches only the
// hosts where it selects a workload, and an address group only the hosts
// whose workloads the policies that use it select; a host that stops being
// one drops both.
func TestWatchSendsGroupsToTheHostsThatNeedThem(t *testing.T) {
	ts := startServer(t)
	setup(t, ts) // remote1 (app=remote1) on host2
	a, rec, stop := runAgent(t, ts, filepath.Join(t.TempDir(), "desired.pb"))
	defer stop()
	waitRegistered(t, ts, "host1")
	nets := []*sdnv1.Network{{Name: "infra", Admin: true}, {Name: "proj1"}, {Name: "proj2"}}
	pol := &sdnv1.Policy{Name: "web", Network: "proj1", Workloads: &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Isolate: []string{"ingress"},
		Ingress: []*sdnv1.PolicyRule{{Peers: []*sdnv1.PolicyPeer{{Workloads: &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": "remote1"}}}}}}}
	web := &sdnv1.Workload{Name: "web", Network: "proj1", Node: "host1", Labels: map[string]string{"app": "web"}, NamedPorts: []*sdnv1.NamedPort{{Name: "http", Port: 80}}}
	rev := mustApply(t, ts, &sdnv1.ApplyRequest{Networks: nets, Workloads: []*sdnv1.Workload{web}, Policies: []*sdnv1.Policy{pol}})
	waitRealized(t, ts, rev)
	checkMirror(t, ts, a, rec)
	var groups, policies int
	view := func() {
		a.View(func(m *model.Desired) { groups, policies = len(m.AddressGroups), len(m.Policies) })
	}
	if view(); groups != 1 || policies != 1 {
		t.Fatalf("host1 (runs web, selected) holds %d groups and %d policies; want 1 and 1", groups, policies)
	}
	// host2's view from the API: neither (web, selected, is on host1).
	if v := serverView(t, ts, "host2"); len(v.AddressGroups) != 0 || len(v.Policies) != 0 {
		t.Fatalf("host2 should get no policy and no group: %d groups, %d policies", len(v.AddressGroups), len(v.Policies))
	}
	// web moves to host2: host1 no longer needs the group and drops it.
	web.Node = "host2"
	rev = mustApply(t, ts, &sdnv1.ApplyRequest{Networks: nets, Workloads: []*sdnv1.Workload{web}, Policies: []*sdnv1.Policy{pol}})
	waitRealized(t, ts, rev)
	checkMirror(t, ts, a, rec)
	if view(); groups != 0 || policies != 0 {
		t.Fatalf("after web left host1: %d groups, %d policies; want 0 and 0", groups, policies)
	}
	var g []*sdnv1.AddressGroup
	ts.raft.FSM().View(func(tx *state.Tx) error { g = tx.AddressGroups(); return nil })
	if len(g) != 1 || !slices.Equal(g[0].Nodes, []string{"host2"}) {
		t.Fatalf("stored groups %v", g)
	}
}

// filterEvent alone: a group change is a bare delete for a host outside
// its nodes, whole for one inside; policies pass.
func TestFilterEventGroups(t *testing.T) {
	g := &sdnv1.AddressGroup{Name: "g1", Nodes: []string{"h1"}, Members: []*sdnv1.GroupMember{{Ip: "10.0.0.1"}}}
	ev := &sdnv1.WatchEvent{Revision: 5, Changes: []*sdnv1.ObjectChange{
		{Op: sdnv1.ChangeOp_CHANGE_OP_UPDATE, Kind: "addressgroup", Name: "g1", AddressGroup: g},
		{Op: sdnv1.ChangeOp_CHANGE_OP_CREATE, Kind: "policy", Name: "p", Policy: &sdnv1.Policy{Name: "p"}},
	}}
	if c := filterEvent(ev, "h1").Changes; c[0].AddressGroup == nil || c[1].Policy == nil {
		t.Fatalf("h1 got %v", c)
	}
	if c := filterEvent(ev, "h2").Changes; c[0].AddressGroup != nil || c[0].Op != sdnv1.ChangeOp_CHANGE_OP_DELETE || c[1].Policy == nil {
		t.Fatalf("h2 got %v", c)
	}
}
