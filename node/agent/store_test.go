package agent

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// workloadDelta is a delta event creating workload proj1/name at rev.
func workloadDelta(rev uint64, name string) *sdnv1.WatchEvent {
	return &sdnv1.WatchEvent{Type: sdnv1.WatchEventType_WATCH_EVENT_TYPE_DELTA, Revision: rev, Changes: []*sdnv1.ObjectChange{{
		Op: sdnv1.ChangeOp_CHANGE_OP_CREATE, Kind: "workload", Name: "proj1/" + name,
		Workload: &sdnv1.Workload{Name: name, Network: "proj1", Node: "host1", Ip: "10.128.0.9"},
	}}}
}

// baseState is a small state at revision 4.
func baseState() *model.Desired {
	d := model.NewDesired()
	d.Apply([]*sdnv1.ObjectChange{
		{Op: sdnv1.ChangeOp_CHANGE_OP_CREATE, Kind: "network", Name: "proj1", Network: &sdnv1.Network{Name: "proj1", Vnid: 7}},
	}, 4)
	d.ClusterID = "c1"
	return d
}

// applyAll applies events to d as the agent does.
func applyAll(d *model.Desired, evs ...*sdnv1.WatchEvent) {
	for _, ev := range evs {
		applyLogged(d, ev)
	}
}

func openT(t *testing.T, path string) (*store, *model.Desired) {
	t.Helper()
	s, d, err := openStore(path, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.closeLog)
	return s, d
}

// TestStoreAppendsWhatChanged: after the first whole save, a save appends
// the revisions received to the log and leaves the snapshot alone; the
// state loads back equal.
func TestStoreAppendsWhatChanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "desired.pb")
	s, _ := openT(t, path)
	d := baseState()
	if err := s.save(d, nil, true); err != nil {
		t.Fatal(err)
	}
	snapBefore, _ := os.ReadFile(path)
	for rev := uint64(5); rev <= 15; rev += 5 {
		ev := workloadDelta(rev, fmt.Sprintf("w%d", rev))
		applyAll(d, ev)
		progress := &sdnv1.WatchEvent{Type: sdnv1.WatchEventType_WATCH_EVENT_TYPE_PROGRESS, Revision: rev + 2}
		applyAll(d, progress)
		if err := s.save(d, []*sdnv1.WatchEvent{ev, progress}, false); err != nil {
			t.Fatal(err)
		}
	}
	if snapAfter, _ := os.ReadFile(path); string(snapAfter) != string(snapBefore) {
		t.Error("a save of three deltas rewrote the snapshot")
	}
	got, err := LoadDesired(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(d) || got.Revision != 17 || len(got.Workloads) != 3 || got.ClusterID != "c1" {
		t.Fatalf("loaded revision %d with %d workloads (cluster %q); saved revision %d with %d", got.Revision, len(got.Workloads), got.ClusterID, d.Revision, len(d.Workloads))
	}
	// A state changed without events (the agent's tests do that) is
	// saved whole rather than left half saved.
	d.Apply(nil, 30)
	if err := s.save(d, nil, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := LoadDesired(path); got.Revision != 30 {
		t.Fatalf("a revision changed without events loads as %d, want 30", got.Revision)
	}
}

// TestStoreTornWrite: a log whose last record is torn (a crash in the
// middle of an append), or corrupt, loads as the state of the last whole
// record, never a mix; the next save writes the state whole.
func TestStoreTornWrite(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(raw []byte) []byte
	}{
		{"torn", func(raw []byte) []byte { return raw[:len(raw)-5] }},
		{"flipped byte", func(raw []byte) []byte { raw[len(raw)-3] ^= 0xff; return raw }},
		{"length past the end", func(raw []byte) []byte { return append(raw, 0xff, 0xff, 0, 0, 1, 2, 3, 4, 5) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "desired.pb")
			s, _ := openT(t, path)
			d := baseState()
			if err := s.save(d, nil, true); err != nil {
				t.Fatal(err)
			}
			first, second := workloadDelta(5, "a"), workloadDelta(6, "b")
			applyAll(d, first)
			if err := s.save(d, []*sdnv1.WatchEvent{first}, false); err != nil {
				t.Fatal(err)
			}
			applyAll(d, second)
			if err := s.save(d, []*sdnv1.WatchEvent{second}, false); err != nil {
				t.Fatal(err)
			}
			s.closeLog()
			raw, _ := os.ReadFile(logPath(path))
			if err := os.WriteFile(logPath(path), tc.damage(raw), 0o600); err != nil {
				t.Fatal(err)
			}
			s2, got := openT(t, path)
			want := baseState()
			applyAll(want, first)
			if tc.name == "length past the end" {
				applyAll(want, second) // both records whole; the garbage after them is dropped
			}
			if !got.Equal(want) {
				t.Fatalf("loaded revision %d with workloads %v; want revision %d with %v", got.Revision, keys(got.Workloads), want.Revision, keys(want.Workloads))
			}
			if s2.log != nil {
				t.Fatal("the damaged log is still open for appending; the next save must write the state whole")
			}
			third := workloadDelta(7, "c")
			applyAll(got, third)
			if err := s2.save(got, []*sdnv1.WatchEvent{third}, false); err != nil {
				t.Fatal(err)
			}
			if again, _ := LoadDesired(path); !again.Equal(got) {
				t.Fatalf("after the save that follows a damaged log: revision %d, want %d", again.Revision, got.Revision)
			}
		})
	}
}

// TestStoreIgnoresAnotherSnapshotsLog: a log beside a snapshot it does not
// follow (a crash between Snapshot's two renames) is not replayed.
func TestStoreIgnoresAnotherSnapshotsLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "desired.pb")
	s, _ := openT(t, path)
	d := baseState()
	if err := s.save(d, nil, true); err != nil {
		t.Fatal(err)
	}
	ev := workloadDelta(5, "a")
	applyAll(d, ev)
	if err := s.save(d, []*sdnv1.WatchEvent{ev}, false); err != nil {
		t.Fatal(err)
	}
	staleLog, _ := os.ReadFile(logPath(path))
	other := baseState()
	other.Apply(nil, 9)
	if err := SaveDesired(path, other); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logPath(path), staleLog, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := LoadDesired(path); !got.Equal(other) {
		t.Fatalf("loaded revision %d with workloads %v; want the snapshot's alone (revision 9, none)", got.Revision, keys(got.Workloads))
	}
}

// TestStoreCompacts: a log that outgrows the snapshot is folded into a new
// snapshot.
func TestStoreCompacts(t *testing.T) {
	old := logCompactAt
	logCompactAt = 0
	defer func() { logCompactAt = old }()
	path := filepath.Join(t.TempDir(), "desired.pb")
	s, _ := openT(t, path)
	d := baseState()
	if err := s.save(d, nil, true); err != nil {
		t.Fatal(err)
	}
	for rev := uint64(5); rev < 25; rev++ {
		ev := workloadDelta(rev, fmt.Sprintf("w%d", rev))
		applyAll(d, ev)
		if err := s.save(d, []*sdnv1.WatchEvent{ev}, false); err != nil {
			t.Fatal(err)
		}
		if s.logSize > 2*s.snapSize+1024 {
			t.Fatalf("revision %d: log %d bytes, snapshot %d: not compacted", rev, s.logSize, s.snapSize)
		}
	}
	if got, _ := LoadDesired(path); !got.Equal(d) {
		t.Fatalf("after compactions: revision %d, want %d", got.Revision, d.Revision)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// BenchmarkSave: saving one new workload's revision with 5,000 workloads
// held, whole (as before the log) and appended.
func BenchmarkSave(b *testing.B) {
	d := baseState()
	for i := range 5000 {
		applyAll(d, workloadDelta(uint64(5+i), fmt.Sprintf("w%05d", i)))
	}
	path := filepath.Join(b.TempDir(), "desired.pb")
	s, _, err := openStore(path, slog.Default())
	if err != nil {
		b.Fatal(err)
	}
	defer s.closeLog()
	if err := s.save(d, nil, true); err != nil {
		b.Fatal(err)
	}
	b.Run("whole", func(b *testing.B) {
		for b.Loop() {
			if err := SaveDesired(filepath.Join(b.TempDir(), "whole.pb"), d); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		for b.Loop() {
			ev := workloadDelta(d.Revision+1, fmt.Sprintf("n%d", d.Revision))
			applyAll(d, ev)
			if err := s.save(d, []*sdnv1.WatchEvent{ev}, false); err != nil {
				b.Fatal(err)
			}
		}
	})
}
