package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// diskCluster is 3 servers on raft's in-memory transport with their data
// in directories that outlive a server, so one can be stopped, its state
// file damaged, and started again on the same data.
type diskCluster struct {
	t       *testing.T
	dirs    []string
	peers   []Peer
	servers []*Server
	trans   []*raft.InmemTransport
	logBuf  []*bytes.Buffer
}

// tiny makes raft keep 2 entries behind a snapshot, and snapshot only when
// told: a snapshot then really compacts the log.
func tiny(c *raft.Config) {
	fast(c)
	c.TrailingLogs = 2
	c.SnapshotThreshold = 1 << 40
	c.SnapshotInterval = time.Hour
}

func newDiskCluster(t *testing.T) *diskCluster {
	dc := &diskCluster{t: t}
	for i := range 3 {
		dc.dirs = append(dc.dirs, t.TempDir())
		dc.peers = append(dc.peers, Peer{ID: fmt.Sprintf("s%d", i+1), Address: fmt.Sprintf("s%d", i+1)})
	}
	dc.servers, dc.trans, dc.logBuf = make([]*Server, 3), make([]*raft.InmemTransport, 3), make([]*bytes.Buffer, 3)
	for i := range 3 {
		dc.start(i)
	}
	t.Cleanup(func() {
		for _, s := range dc.servers {
			if s != nil {
				s.Shutdown()
			}
		}
	})
	return dc
}

// start starts server i on its data directory, connected to the others.
func (dc *diskCluster) start(i int) {
	dc.t.Helper()
	_, tr := raft.NewInmemTransport(raft.ServerAddress(dc.peers[i].Address))
	for j, o := range dc.trans {
		if j != i && o != nil {
			tr.Connect(o.LocalAddr(), o)
			o.Connect(tr.LocalAddr(), tr)
		}
	}
	dc.trans[i] = tr
	dc.logBuf[i] = &bytes.Buffer{}
	s, err := NewServer(Config{DataDir: dc.dirs[i], ID: dc.peers[i].ID, Transport: tr, Peers: dc.peers, Tune: tiny,
		Logger: slog.New(slog.NewTextHandler(dc.logBuf[i], nil))})
	if err != nil {
		dc.t.Fatal(err)
	}
	dc.servers[i] = s
}

func (dc *diskCluster) stop(i int) {
	dc.t.Helper()
	if err := dc.servers[i].Shutdown(); err != nil {
		dc.t.Fatal(err)
	}
	dc.servers[i] = nil
	for j, o := range dc.trans {
		if j != i && o != nil {
			o.Disconnect(dc.trans[i].LocalAddr())
		}
	}
	dc.trans[i] = nil
}

func (dc *diskCluster) leader() (int, *Server) {
	dc.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for i, s := range dc.servers {
			if s != nil && s.IsLeader() {
				return i, s
			}
		}
	}
	dc.t.Fatal("no leader elected")
	return -1, nil
}

// settle waits until every running server applied what the leader applied.
func (dc *diskCluster) settle() {
	dc.t.Helper()
	_, l := dc.leader()
	if err := l.ReadBarrier(context.Background()); err != nil {
		dc.t.Fatal(err)
	}
	want := l.FSM().AppliedIndex()
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range dc.servers {
		for s != nil && s.FSM().AppliedIndex() < want {
			if time.Now().After(deadline) {
				dc.t.Fatalf("%s applied %d, want %d", s.ID(), s.FSM().AppliedIndex(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func (dc *diskCluster) attach(from, to int) {
	dc.t.Helper()
	_, l := dc.leader()
	for i := from; i < to; i++ {
		w := &sdnv1.Workload{Name: fmt.Sprintf("w%d", i), Network: "p", Node: "h1"}
		if _, err := l.Propose(context.Background(), command.AttachWorkload, &sdnv1.AttachWorkloadRequest{Workload: w}); err != nil {
			dc.t.Fatal(err)
		}
	}
}

// sameAsLeader checks that server i holds exactly the leader's state:
// objects, revision, allocators (cursors included) and applied index.
func (dc *diskCluster) sameAsLeader(i int) {
	dc.t.Helper()
	dc.settle()
	_, l := dc.leader()
	s := dc.servers[i]
	var dl, ds []string
	var ml, ms state.Meta
	l.FSM().View(func(tx *state.Tx) error { dl, ml = tx.Dump(), tx.Meta(); return nil })
	s.FSM().View(func(tx *state.Tx) error { ds, ms = tx.Dump(), tx.Meta(); return nil })
	if !slices.Equal(dl, ds) {
		dc.t.Fatalf("%s's state differs from the leader's:\n%s", s.ID(), diffLines(dl, ds))
	}
	if ml != ms {
		dc.t.Fatalf("%s's meta %+v, the leader's %+v", s.ID(), ms, ml)
	}
	// Equal stores (objects and cursors) and allocators that match each
	// one's store: equal allocators.
	if ol, oi := objects(dc.t, l), objects(dc.t, s); !slices.Equal(ol, oi) {
		dc.t.Fatalf("%s's objects or allocator cursors differ from the leader's:\n%s", s.ID(), diffLines(ol, oi))
	}
	for _, x := range []*Server{l, s} {
		if err := x.FSM().CheckAllocators(); err != nil {
			dc.t.Fatalf("%s's allocators differ from its stored state: %v", x.ID(), err)
		}
	}
}

// TestStateFileRebuiltFromSnapshotAndLog stops a follower whose raft log
// was compacted behind a snapshot, damages its state file the ways a disk
// can, and starts it again: it must come back with exactly the leader's
// state, rebuilt from its raft snapshot and log.
func TestStateFileRebuiltFromSnapshotAndLog(t *testing.T) {
	boot, err := bootID()
	if err != nil {
		t.Skipf("no boot id on this system (%v): the state file is fsynced, nothing to rebuild", err)
	}
	for _, tc := range []struct {
		name string
		// damage is done to the stopped server's data directory; old is
		// an image of its state file from before the snapshot.
		damage func(t *testing.T, dir string, old []byte)
		// aside: the file must have been set aside (not just missing).
		aside bool
	}{
		{"deleted", func(t *testing.T, dir string, _ []byte) {
			if err := os.Remove(filepath.Join(dir, stateFile)); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"unreadable", func(t *testing.T, dir string, _ []byte) {
			// Both meta pages (the first two 4 KiB pages) overwritten.
			f, err := os.OpenFile(filepath.Join(dir, stateFile), os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(bytes.Repeat([]byte{0xa5}, 8192), 0); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"truncated", func(t *testing.T, dir string, _ []byte) {
			if err := os.Truncate(filepath.Join(dir, stateFile), 1000); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"record changed", func(t *testing.T, dir string, _ []byte) {
			// A byte of a stored object changed (a hex editor, a bad
			// sector read back): h1's underlay address, wherever it is.
			path := filepath.Join(dir, stateFile)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Count(b, []byte("198.19.0.1")) == 0 {
				t.Fatal("the state file does not hold h1's underlay address")
			}
			if err := os.WriteFile(path, bytes.ReplaceAll(b, []byte("198.19.0.1"), []byte("198.19.0.9")), 0o600); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"record gone", func(t *testing.T, dir string, _ []byte) {
			// A record missing, every other one sound (a leaf page's
			// count, a branch pointing at a stale page): here removed
			// behind the store's back.
			b, err := bolt.Open(filepath.Join(dir, stateFile), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			err = b.Update(func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("workloads")).Delete([]byte("p/w7"))
			})
			if err != nil {
				t.Fatal(err)
			}
		}, true},
		{"power loss", func(t *testing.T, dir string, old []byte) {
			// What a power loss may leave of a file written without fsync:
			// a valid bbolt file whose pages are older than its meta says
			// (here: the old image claiming the latest applied index), and
			// the marker of the boot that wrote it. bbolt cannot tell; the
			// marker must.
			path := filepath.Join(dir, stateFile)
			var applied uint64
			db, err := state.Open(path, state.Options{})
			if err != nil {
				t.Fatal(err)
			}
			db.View(func(tx *state.Tx) error { applied = tx.Meta().AppliedIndex; return nil })
			db.Close()
			if err := os.WriteFile(path, old, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err = state.Open(path, state.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *state.Tx) error { return tx.SetAppliedIndex(applied) }); err != nil {
				t.Fatal(err)
			}
			db.Close()
			if err := os.WriteFile(filepath.Join(dir, stateMarker), []byte("an-earlier-boot\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dc := newDiskCluster(t)
			li, l := dc.leader()
			ctx := context.Background()
			if _, err := l.Propose(ctx, command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "p"}}}); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Propose(ctx, command.RegisterNode, register("h1", "198.19.0.1", 1500)); err != nil {
				t.Fatal(err)
			}
			dc.attach(0, 10)
			dc.settle()
			f := (li + 1) % 3
			var old bytes.Buffer
			if _, err := dc.servers[f].FSM().WriteImage(&old, nil); err != nil {
				t.Fatal(err)
			}
			dc.attach(10, 20)
			dc.settle()
			// The follower snapshots and compacts its log: the entries
			// before the snapshot exist only in it now.
			if err := dc.servers[f].raft.Snapshot().Error(); err != nil {
				t.Fatal(err)
			}
			first, err := dc.servers[f].logs.FirstIndex()
			if err != nil || first <= 5 {
				t.Fatalf("follower's log starts at %d (%v); want it compacted", first, err)
			}
			dc.attach(20, 25)
			if _, err := l.Propose(ctx, command.DetachWorkload, &sdnv1.DetachWorkloadRequest{Network: "p", Name: "w3"}); err != nil {
				t.Fatal(err)
			}
			dc.settle()
			// While it runs, the marker holds this boot's id.
			if m, err := os.ReadFile(filepath.Join(dc.dirs[f], stateMarker)); err != nil || strings.TrimSpace(string(m)) != boot {
				t.Fatalf("marker while running: %q, %v; want this boot's id %s", m, err, boot)
			}
			dc.stop(f)
			if _, err := os.Stat(filepath.Join(dc.dirs[f], stateMarker)); !os.IsNotExist(err) {
				t.Fatalf("marker after a clean stop: %v; want it removed", err)
			}
			tc.damage(t, dc.dirs[f], old.Bytes())
			dc.start(f)
			dc.attach(25, 27) // and the cluster goes on
			dc.sameAsLeader(f)
			_, err = os.Stat(filepath.Join(dc.dirs[f], stateAside))
			if tc.aside && err != nil {
				t.Fatalf("the damaged file was not set aside: %v\nlog:\n%s", err, dc.logBuf[f])
			}
			if !strings.Contains(dc.logBuf[f].String(), "snapshot") {
				t.Fatalf("no word of a restore from the snapshot in the log:\n%s", dc.logBuf[f])
			}
		})
	}
}

// TestStateFileTrustedAfterProcessCrash: a server that died without
// closing (the marker of this boot left behind) keeps its state file, and
// a clean stop removes the marker; with syncState no marker is written.
func TestStateFileTrustedAfterProcessCrash(t *testing.T) {
	boot, err := bootID()
	if err != nil {
		t.Skipf("no boot id on this system: %v", err)
	}
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f, noSync, err := openState(dir, false, NewHub(), log, nil)
	if err != nil || !noSync {
		t.Fatalf("openState: noSync %v, %v", noSync, err)
	}
	tf := &testFSM{t: t, f: f}
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "p"}}})
	want := tf.dump()
	// A crash: the file is closed by the kernel, the marker stays.
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if m, _ := os.ReadFile(filepath.Join(dir, stateMarker)); strings.TrimSpace(string(m)) != boot {
		t.Fatalf("marker %q, want %s", m, boot)
	}
	f, _, err = openState(dir, false, NewHub(), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := (&testFSM{t: t, f: f}).dump(); !slices.Equal(got, want) {
		t.Fatalf("state after a process crash:\n%s", diffLines(want, got))
	}
	if _, err := os.Stat(filepath.Join(dir, stateAside)); !os.IsNotExist(err) {
		t.Fatalf("a file of this boot was set aside: %v", err)
	}
	if err := closeState(f, dir, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, stateMarker)); !os.IsNotExist(err) {
		t.Fatalf("marker after a clean close: %v", err)
	}
	// Fsync on every apply: no marker; one left by a no-fsync run is
	// cleared once the file is synced.
	os.WriteFile(filepath.Join(dir, stateMarker), []byte(boot+"\n"), 0o600)
	f, noSync, err = openState(dir, true, NewHub(), log, nil)
	if err != nil || noSync {
		t.Fatalf("openState with syncState: noSync %v, %v", noSync, err)
	}
	if _, err := os.Stat(filepath.Join(dir, stateMarker)); !os.IsNotExist(err) {
		t.Fatalf("marker with syncState: %v", err)
	}
	if got := (&testFSM{t: t, f: f}).dump(); !slices.Equal(got, want) {
		t.Fatalf("state reopened with syncState:\n%s", diffLines(want, got))
	}
	closeState(f, dir, false)
}
