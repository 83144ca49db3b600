package fsm

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// testFSM is an FSM fed raft entries the way raft feeds it.
type testFSM struct {
	t     testing.TB
	f     *FSM
	path  string
	index uint64
}

func newTestFSM(t testing.TB) *testFSM {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	f, err := OpenFSM(path, state.Options{NoSync: true}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &testFSM{t: t, f: f, path: path}
}

// apply encodes a command, applies it as the next raft entry and returns
// the result.
func (tf *testFSM) apply(typ command.Type, msg proto.Message) *Result {
	tf.t.Helper()
	data, err := command.Encode(typ, msg)
	if err != nil {
		tf.t.Fatal(err)
	}
	tf.index++
	return tf.f.Apply(Entry{Index: tf.index, Command: true, Data: data}).(*Result)
}

func (tf *testFSM) mustApply(typ command.Type, msg proto.Message) *Result {
	tf.t.Helper()
	r := tf.apply(typ, msg)
	if r.Err != nil {
		tf.t.Fatalf("%s refused: %v", typ, r.Err)
	}
	return r
}

func (tf *testFSM) dump() []string {
	var d []string
	tf.f.View(func(tx *state.Tx) error { d = tx.Dump(); return nil })
	return d
}

func (tf *testFSM) view(fn func(tx *state.Tx)) {
	tf.f.View(func(tx *state.Tx) error { fn(tx); return nil })
}

func register(name, ip string, mtu uint32) *sdnv1.RegisterNodeRequest {
	return &sdnv1.RegisterNodeRequest{Name: name, UnderlayIp: ip, UnderlayMtu: mtu}
}

func TestApplyConfigAllocatesAndQueries(t *testing.T) {
	tf := newTestFSM(t)
	r := tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{
		Cluster:  &sdnv1.ClusterSettings{Cidr: "10.128.0.0/14", HostPrefix: 23, Isolation: sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT},
		Networks: []*sdnv1.Network{{Name: "infra", Admin: true}, {Name: "proj1", Labels: map[string]string{"env": "prod"}}, {Name: "proj2"}},
	})
	if r.Revision != 1 || len(r.Changes) != 4 {
		t.Fatalf("revision %d, %d changes; want 1 and 4: %v", r.Revision, len(r.Changes), r.Changes)
	}
	tf.view(func(tx *state.Tx) {
		infra, _ := tx.Network("infra")
		p1, _ := tx.Network("proj1")
		p2, _ := tx.Network("proj2")
		if infra.Vnid != 0 || p1.Vnid == 0 || p2.Vnid == 0 || p1.Vnid == p2.Vnid {
			t.Fatalf("VNIDs infra=%d proj1=%d proj2=%d: admin must be 0, others distinct and non-zero", infra.Vnid, p1.Vnid, p2.Vnid)
		}
		if p1.Labels["env"] != "prod" || p1.ModRevision != 1 || p1.Origin.GetKind() != sdnv1.OriginKind_ORIGIN_KIND_HCL {
			t.Fatalf("proj1 = %v", p1)
		}
	})
	// The same apply again changes nothing and keeps the revision.
	r = tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{
		Cluster:  &sdnv1.ClusterSettings{Cidr: "10.128.0.0/14", HostPrefix: 23, Isolation: sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT},
		Networks: []*sdnv1.Network{{Name: "infra", Admin: true}, {Name: "proj1", Labels: map[string]string{"env": "prod"}}, {Name: "proj2"}},
	})
	if r.Revision != 1 || len(r.Changes) != 0 {
		t.Fatalf("idempotent apply: revision %d, changes %v", r.Revision, r.Changes)
	}
}

func TestUnknownCommandTypes(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}}})
	before := tf.dump()
	// A newer server's command, marked skippable: skipped, index advances.
	const future command.Type = 999
	r := tf.apply(future|command.IgnoreUnknownFlag, &sdnv1.Network{Name: "from-the-future"})
	if r.Err != nil || r.Revision != 1 {
		t.Fatalf("skippable unknown command: %+v", r)
	}
	if after := tf.dump(); !slices.Equal(before, after) {
		t.Fatalf("skipped command changed the state:\n%v\n%v", before, after)
	}
	if got := tf.f.AppliedIndex(); got != tf.index {
		t.Fatalf("applied index %d, want %d", got, tf.index)
	}
	// Not skippable: the server must stop rather than diverge (and say
	// so, not panic).
	data, _ := command.Encode(future, &sdnv1.Network{Name: "x"})
	got := tf.f.Apply(Entry{Index: tf.index + 1, Command: true, Data: data})
	var ee *EntryError
	if err, ok := got.(error); !ok || !errors.As(err, &ee) || !ee.Unknown || ee.Index != tf.index+1 {
		t.Fatalf("unknown command without the skip flag: %v, want the FSM stopped at it", got)
	}
	if !strings.Contains(ee.Error(), "command type 999, unknown to this server and not marked skippable; upgrade sdnd") {
		t.Errorf("message: %s", ee)
	}
	if got := tf.f.AppliedIndex(); got != tf.index {
		t.Fatalf("applied index %d after the unknown command, want %d", got, tf.index)
	}
}

func TestReplayedEntriesAreSkipped(t *testing.T) {
	tf := newTestFSM(t)
	data, _ := command.Encode(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "a"}}})
	tf.f.Apply(Entry{Index: 5, Command: true, Data: data})
	data2, _ := command.Encode(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "b"}}, Prune: true})
	// Index 5 again (a replay after restart) must not apply the new payload.
	if r := tf.f.Apply(Entry{Index: 5, Command: true, Data: data2}); r != nil {
		t.Fatalf("replayed entry produced %v", r)
	}
	tf.view(func(tx *state.Tx) {
		if _, ok := tx.Network("a"); !ok {
			t.Fatal("replay overwrote the state")
		}
	})
}

func TestReopenAtSchemaVersion(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}, {Name: "proj2"}}})
	tf.mustApply(command.RegisterNode, register("host1", "198.18.0.1", 1500))
	tf.mustApply(command.AttachWorkload, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{Name: "w1", Network: "proj1", Node: "host1"}})
	before := tf.dump()
	tf.f.Close()
	f, err := OpenFSM(tf.path, state.Options{}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var after []string
	var schema uint32
	f.View(func(tx *state.Tx) error { after = tx.Dump(); schema = tx.Meta().Schema; return nil })
	if schema != state.SchemaVersion {
		t.Fatalf("schema %d, want %d", schema, state.SchemaVersion)
	}
	if !slices.Equal(before, after) {
		t.Fatalf("state changed across reopen:\n%v\n%v", before, after)
	}
	// The rebuilt allocators continue: the next workload gets a new address.
	tf.f = f
	r := tf.mustApply(command.AttachWorkload, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{Name: "w2", Network: "proj1", Node: "host1"}})
	var w1 *sdnv1.Workload
	f.View(func(tx *state.Tx) error { w1, _ = tx.Workload("proj1", "w1"); return nil })
	if r.Workload.Ip == w1.Ip {
		t.Fatalf("address %s handed out twice after reopen", w1.Ip)
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := state.Open(path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.ForceSchema(state.SchemaVersion + 1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = state.Open(path, state.Options{})
	if err == nil || !strings.Contains(err.Error(), "newer sdnd") {
		t.Fatalf("opening a newer schema: %v", err)
	}
}

func TestRegisterNodeMTUAndPending(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{
		Networks:  []*sdnv1.Network{{Name: "proj1"}},
		Workloads: []*sdnv1.Workload{{Name: "db1", Network: "proj1", Node: "host1"}},
	})
	tf.view(func(tx *state.Tx) {
		w, _ := tx.Workload("proj1", "db1")
		if w.Pending == "" || w.Ip != "" {
			t.Fatalf("workload on an unregistered host: %v", w)
		}
	})
	r := tf.mustApply(command.RegisterNode, register("host1", "198.18.0.1", 1500))
	if r.Node.Subnet != "10.128.0.0/23" || r.Node.GatewayIp != "10.128.0.1" || r.Cluster.EffectiveMtu != 1450 {
		t.Fatalf("host1 = %v, cluster = %v", r.Node, r.Cluster)
	}
	tf.view(func(tx *state.Tx) {
		w, _ := tx.Workload("proj1", "db1")
		if w.Pending != "" || w.Ip == "" || w.Mac == "" {
			t.Fatalf("workload not placed when its host registered: %v", w)
		}
	})
	// A smaller underlay is refused with what to do.
	r = tf.apply(command.RegisterNode, register("host2", "198.18.0.2", 1400))
	if r.Err == nil || r.Err.Code != CodeConflict || !strings.Contains(r.Err.Error(), "less than the cluster MTU 1450") || !strings.Contains(r.Err.Error(), "1500 or more") {
		t.Fatalf("small underlay: %v", r.Err)
	}
	// Registering again (agent restart) keeps the subnet.
	r2 := tf.mustApply(command.RegisterNode, register("host1", "198.18.0.1", 1500))
	if r2.Node.Subnet != "10.128.0.0/23" || len(r2.Changes) != 0 {
		t.Fatalf("re-registration: %v changes %v", r2.Node, r2.Changes)
	}
}

func TestApplyIsAtomic(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}}})
	tf.mustApply(command.RegisterNode, register("host1", "198.18.0.1", 1500))
	before := tf.dump()
	r := tf.apply(command.ApplyConfig, &sdnv1.ApplyRequest{
		Networks:  []*sdnv1.Network{{Name: "proj1"}, {Name: "proj2"}, {Name: "proj3"}},
		Workloads: []*sdnv1.Workload{{Name: "ok", Network: "proj2", Node: "host1"}, {Name: "bad", Network: "nope", Node: "host1"}},
	})
	if r.Err == nil || r.Err.Code != CodeNotFound || !strings.Contains(r.Err.Error(), `unknown network "nope"`) {
		t.Fatalf("unknown network: %v", r.Err)
	}
	if after := tf.dump(); !slices.Equal(before, after) {
		t.Fatalf("a refused apply changed the state:\n%v\n%v", before, after)
	}
	// The allocators were not disturbed: the next VNID is the one the
	// refused apply would have taken.
	r = tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}, {Name: "proj2"}}})
	tf.view(func(tx *state.Tx) {
		p1, _ := tx.Network("proj1")
		p2, _ := tx.Network("proj2")
		if p2.Vnid != p1.Vnid+1 {
			t.Fatalf("VNIDs %d, %d: the refused apply leaked an allocation", p1.Vnid, p2.Vnid)
		}
	})
}

func TestDryRunChangesNothing(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.RegisterNode, register("host1", "198.18.0.1", 1500))
	before := tf.dump()
	req := &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}}, Workloads: []*sdnv1.Workload{{Name: "w", Network: "proj1", Node: "host1"}}}
	res, err := tf.f.DryRun(command.ApplyConfig, req)
	if err != nil || res.Err != nil || len(res.Changes) != 2 {
		t.Fatalf("dry run: %v %v %v", err, res.Err, res.Changes)
	}
	if after := tf.dump(); !slices.Equal(before, after) {
		t.Fatal("dry run changed the state")
	}
	tf.mustApply(command.ApplyConfig, req)
	tf.view(func(tx *state.Tx) {
		w, _ := tx.Workload("proj1", "w")
		if w.Ip != "10.128.0.2" {
			t.Fatalf("after a dry run the first workload got %s, want 10.128.0.2 (dry run leaked an allocation)", w.Ip)
		}
	})
}

func TestDeleteNetworkWithWorkloadsRefused(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}}})
	tf.mustApply(command.RegisterNode, register("host1", "198.18.0.1", 1500))
	tf.mustApply(command.AttachWorkload, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{Name: "w1", Network: "proj1", Node: "host1"}})
	r := tf.apply(command.Delete, &sdnv1.DeleteRequest{Kind: "network", Name: "proj1"})
	if r.Err == nil || r.Err.Code != CodeConflict || !strings.Contains(r.Err.Error(), "proj1/w1") {
		t.Fatalf("delete network with workloads: %v", r.Err)
	}
	// Prune refuses too, and a CNI workload is never pruned.
	r = tf.apply(command.ApplyConfig, &sdnv1.ApplyRequest{Prune: true})
	if r.Err == nil || !strings.Contains(r.Err.Error(), "cannot prune") {
		t.Fatalf("prune of a network with workloads: %v", r.Err)
	}
	tf.mustApply(command.DetachWorkload, &sdnv1.DetachWorkloadRequest{Network: "proj1", Name: "w1"})
	tf.mustApply(command.Delete, &sdnv1.DeleteRequest{Kind: "network", Name: "proj1"})
}

func TestPruneRemovesOnlyHCLObjects(t *testing.T) {
	tf := newTestFSM(t)
	hcl := &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_HCL, File: "a.hcl"}
	tf.mustApply(command.RegisterNode, register("host1", "198.18.0.1", 1500))
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{
		Networks:  []*sdnv1.Network{{Name: "keep", Origin: hcl}, {Name: "gone", Origin: hcl}},
		Workloads: []*sdnv1.Workload{{Name: "static", Network: "gone", Node: "host1", Origin: hcl}},
	})
	tf.mustApply(command.AttachWorkload, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{Name: "pod", Network: "keep", Node: "host1",
		Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_CNI, ContainerId: "c1", Ifname: "eth0"}}})
	r := tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "keep", Origin: hcl}}, Prune: true})
	var got []string
	for _, c := range r.Changes {
		got = append(got, fmt.Sprintf("%v %s %s", c.Op, c.Kind, c.Name))
	}
	want := []string{"CHANGE_OP_DELETE workload gone/static", "CHANGE_OP_DELETE network gone"}
	if !slices.Equal(got, want) {
		t.Fatalf("prune changes %v, want %v", got, want)
	}
	tf.view(func(tx *state.Tx) {
		if _, ok := tx.Workload("keep", "pod"); !ok {
			t.Fatal("prune removed a CNI workload")
		}
		if _, ok := tx.Node("host1"); !ok {
			t.Fatal("prune removed a host")
		}
	})
}

func TestAttachIsIdempotentPerOwner(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}}})
	tf.mustApply(command.RegisterNode, register("host1", "198.18.0.1", 1500))
	req := &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{Name: "pod", Network: "proj1", Node: "host1",
		Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_CNI, ContainerId: "c1", Ifname: "eth0"}}}
	a := tf.mustApply(command.AttachWorkload, req)
	b := tf.mustApply(command.AttachWorkload, req)
	if a.Workload.Ip != b.Workload.Ip || b.Revision != a.Revision {
		t.Fatalf("retried ADD: %v then %v", a.Workload, b.Workload)
	}
	d := tf.mustApply(command.DetachWorkload, &sdnv1.DetachWorkloadRequest{ContainerId: "c1", Ifname: "eth0"})
	if !d.Removed {
		t.Fatal("detach by owner removed nothing")
	}
	d = tf.mustApply(command.DetachWorkload, &sdnv1.DetachWorkloadRequest{ContainerId: "c1", Ifname: "eth0"})
	if d.Removed || d.Err != nil {
		t.Fatalf("second DEL: %+v", d)
	}
}

func TestSubnetExhaustion(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Cluster: &sdnv1.ClusterSettings{Cidr: "10.128.0.0/22", HostPrefix: 23}})
	tf.mustApply(command.RegisterNode, register("n1", "198.18.0.1", 1500))
	tf.mustApply(command.RegisterNode, register("n2", "198.18.0.2", 1500))
	r := tf.apply(command.RegisterNode, register("n3", "198.18.0.3", 1500))
	want := `node n3: allocate a subnet: cluster CIDR 10.128.0.0/22 is full (2 of 2 /23s used); widen cluster.cidr or remove stale nodes`
	if r.Err == nil || r.Err.Code != CodeExhausted || r.Err.Error() != want {
		t.Fatalf("exhausted subnets:\n got %v\nwant %s", r.Err, want)
	}
	// The CIDR cannot change under registered hosts.
	r = tf.apply(command.ApplyConfig, &sdnv1.ApplyRequest{Cluster: &sdnv1.ClusterSettings{Cidr: "10.128.0.0/14", HostPrefix: 23}})
	if r.Err == nil || !strings.Contains(r.Err.Error(), "while 2 hosts hold subnets") {
		t.Fatalf("cidr change under hosts: %v", r.Err)
	}
}

func TestNamesAreChecked(t *testing.T) {
	tf := newTestFSM(t)
	for _, c := range []struct {
		typ  command.Type
		msg  proto.Message
		want string
	}{
		{command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "Bad_Name"}}}, `network name "Bad_Name"`},
		{command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "ok", Labels: map[string]string{"-x": "y"}}}}, `label key "-x"`},
		{command.RegisterNode, register("Host_1", "198.18.0.1", 1500), `node name "Host_1"`},
	} {
		r := tf.apply(c.typ, c.msg)
		if r.Err == nil || !strings.Contains(r.Err.Error(), c.want) {
			t.Errorf("%v: got %v, want an error containing %q", c.msg, r.Err, c.want)
		}
	}
	// Host names may be DNS subdomains (FQDNs).
	tf.mustApply(command.RegisterNode, register("rack2.dc1", "198.18.0.9", 1500))
}

// TestPendingWorkloadPlacedOnReapply: a static workload left waiting
// because its host's block was full gets its address when the same files
// are applied again after room was made.
func TestPendingWorkloadPlacedOnReapply(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Cluster: &sdnv1.ClusterSettings{Cidr: "10.128.0.0/16", HostPrefix: 29}, Networks: []*sdnv1.Network{{Name: "p"}}})
	var ws []*sdnv1.Workload
	for i := 0; i < 6; i++ {
		ws = append(ws, &sdnv1.Workload{Name: fmt.Sprintf("w%d", i), Network: "p", Node: "h1"})
	}
	req := &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "p"}}, Workloads: ws}
	tf.mustApply(command.ApplyConfig, req)
	tf.mustApply(command.RegisterNode, register("h1", "198.18.0.1", 1500))
	pending := func() []string {
		var p []string
		tf.view(func(tx *state.Tx) {
			for _, w := range tx.Workloads("p") {
				if w.Pending != "" {
					p = append(p, w.Name+": "+w.Pending)
				}
			}
		})
		return p
	}
	if p := pending(); len(p) != 1 || !strings.Contains(p[0], "is full") {
		t.Fatalf("pending after registration: %v", p)
	}
	// Re-applying while still full is not an error: it keeps waiting.
	tf.mustApply(command.ApplyConfig, req)
	// Make room, re-apply the same files: the waiting workload is placed.
	tf.mustApply(command.Delete, &sdnv1.DeleteRequest{Kind: "workload", Name: "p/w0"})
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "p"}}, Workloads: ws[1:]})
	if p := pending(); len(p) != 0 {
		t.Fatalf("still pending after room was made: %v", p)
	}
}

// TestBatchEntryAppliesEachCommand: a Batch entry applies its commands in
// order, each on its own: a refused one changes nothing and the others
// apply.
func TestBatchEntryAppliesEachCommand(t *testing.T) {
	tf := newTestFSM(t)
	enc := func(typ command.Type, req *sdnv1.RegisterNodeRequest) []byte {
		b, err := command.Encode(typ, req)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	data := command.EncodeBatch([][]byte{
		enc(command.RegisterNode, register("h1", "198.18.0.1", 1500)),
		enc(command.RegisterNode, register("h2", "198.18.0.1", 1500)), // h1's address: refused
		enc(command.RegisterNode, register("h3", "198.18.0.3", 1500)),
		command.EncodeBatch(nil), // nested: refused
	})
	tf.index++
	out := tf.f.Apply(Entry{Index: tf.index, Command: true, Data: data})
	rs, ok := out.([]*Result)
	if !ok || len(rs) != 4 {
		t.Fatalf("batch result %T %v", out, out)
	}
	if rs[0].Err != nil || rs[2].Err != nil || rs[1].Err == nil || rs[3].Err == nil {
		t.Fatalf("results: %v %v %v %v", rs[0].Err, rs[1].Err, rs[2].Err, rs[3].Err)
	}
	if rs[0].Revision != 1 || rs[2].Revision != 2 {
		t.Fatalf("revisions %d and %d, want 1 and 2", rs[0].Revision, rs[2].Revision)
	}
	if e, c := tf.f.Counts(); e != 1 || c != 4 {
		t.Fatalf("counts %d entries %d commands", e, c)
	}
	tf.view(func(tx *state.Tx) {
		if len(tx.Nodes()) != 2 {
			t.Fatalf("nodes %v", tx.Nodes())
		}
	})
}
