package cluster

import (
	"bytes"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/fsm"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// testFSM is an FSM fed raft entries through raftFSM, the way raft feeds
// it. (Package fsm's tests have their own, without raft.)
type testFSM struct {
	t     testing.TB
	f     *fsm.FSM
	index uint64
}

func newTestFSM(t testing.TB) *testFSM {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	f, err := fsm.OpenFSM(path, state.Options{NoSync: true}, NewHub(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &testFSM{t: t, f: f}
}

// apply encodes a command, applies it as the next raft entry and returns
// the result.
func (tf *testFSM) apply(typ command.Type, msg proto.Message) *fsm.Result {
	tf.t.Helper()
	data, err := command.Encode(typ, msg)
	if err != nil {
		tf.t.Fatal(err)
	}
	tf.index++
	return raftFSM{f: tf.f}.Apply(&raft.Log{Index: tf.index, Term: 1, Type: raft.LogCommand, Data: data}).(*fsm.Result)
}

func (tf *testFSM) mustApply(typ command.Type, msg proto.Message) *fsm.Result {
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

func register(name, ip string, mtu uint32) *sdnv1.RegisterNodeRequest {
	return &sdnv1.RegisterNodeRequest{Name: name, UnderlayIp: ip, UnderlayMtu: mtu}
}

// diffLines shows the lines only in a or only in b.
func diffLines(a, b []string) string {
	var out []string
	for _, l := range a {
		if !slices.Contains(b, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range b {
		if !slices.Contains(a, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRaftFSMEntries: raftFSM hands the FSM raft's entries as they are: a
// command applies, a configuration entry only moves the applied index, a
// batch applies in order, and an entry at or below the applied index (a
// replay) is skipped; the hub hears of each new revision.
func TestRaftFSMEntries(t *testing.T) {
	hub := NewHub()
	f, err := fsm.OpenFSM(filepath.Join(t.TempDir(), "state.db"), state.Options{NoSync: true}, hub, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := raftFSM{f: f}
	enc := func(name, ip string) []byte {
		b, err := command.Encode(command.RegisterNode, register(name, ip, 1500))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	_, changed := hub.Wait()
	res, ok := r.Apply(&raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: enc("h1", "198.18.0.1")}).(*fsm.Result)
	if !ok || res.Err != nil || res.Revision != 1 {
		t.Fatalf("command entry: %v", res)
	}
	select {
	case <-changed:
	default:
		t.Fatal("the hub did not hear of revision 1")
	}
	if rev, _ := hub.Wait(); rev != 1 {
		t.Fatalf("hub at revision %d, want 1", rev)
	}
	if out := r.Apply(&raft.Log{Index: 2, Term: 1, Type: raft.LogConfiguration, Data: []byte("not a command")}); out != nil {
		t.Fatalf("a configuration entry produced %v", out)
	}
	if got := f.AppliedIndex(); got != 2 {
		t.Fatalf("applied index %d after a configuration entry, want 2", got)
	}
	out := r.ApplyBatch([]*raft.Log{
		{Index: 2, Term: 1, Type: raft.LogCommand, Data: enc("h9", "198.18.0.9")}, // a replay: skipped
		{Index: 3, Term: 1, Type: raft.LogCommand, Data: enc("h2", "198.18.0.2")},
		{Index: 4, Term: 1, Type: raft.LogCommand, Data: enc("h3", "198.18.0.3")},
	})
	if len(out) != 3 || out[0] != nil || out[1].(*fsm.Result).Revision != 2 || out[2].(*fsm.Result).Revision != 3 {
		t.Fatalf("batch: %v", out)
	}
	var nodes []string
	f.View(func(tx *state.Tx) error {
		for _, n := range tx.Nodes() {
			nodes = append(nodes, n.Name)
		}
		return nil
	})
	if !slices.Equal(nodes, []string{"h1", "h2", "h3"}) || f.AppliedIndex() != 4 {
		t.Fatalf("nodes %v at applied index %d", nodes, f.AppliedIndex())
	}
}

// bufSink is a raft.SnapshotSink over memory.
type bufSink struct {
	bytes.Buffer
	closed, canceled bool
}

func (s *bufSink) ID() string    { return "test" }
func (s *bufSink) Close() error  { s.closed = true; return nil }
func (s *bufSink) Cancel() error { s.canceled = true; return nil }

var _ raft.SnapshotSink = (*bufSink)(nil)

// TestRaftFSMSnapshot: a raft snapshot persists the state file into the
// sink and closes it; restoring it gives another FSM the same state.
func TestRaftFSMSnapshot(t *testing.T) {
	a := newTestFSM(t)
	a.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "p"}}})
	a.mustApply(command.RegisterNode, register("h1", "198.18.0.1", 1500))
	snap, err := raftFSM{f: a.f}.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	sink := &bufSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	if !sink.closed || sink.canceled {
		t.Fatalf("snapshot sink closed=%v canceled=%v", sink.closed, sink.canceled)
	}
	b := newTestFSM(t)
	if err := (raftFSM{f: b.f}).Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if want, got := a.dump(), b.dump(); !slices.Equal(want, got) {
		t.Fatalf("restored state differs:\n%s", diffLines(want, got))
	}
	if got := b.f.AppliedIndex(); got != 2 {
		t.Fatalf("restored applied index %d, want 2", got)
	}
}
