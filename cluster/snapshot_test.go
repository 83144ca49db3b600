package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/fsm"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// objects is a server's state without its revision counter (a restore
// moves it on purpose): every stored object, byte for byte, with the
// revisions stamped on it, and the allocator cursors.
func objects(t testing.TB, s *Server) []string {
	t.Helper()
	var out []string
	err := s.FSM().View(func(tx *state.Tx) error {
		for _, l := range tx.Dump() {
			if !strings.HasPrefix(l, "meta ") {
				out = append(out, l)
			}
		}
		for _, c := range []string{"subnets", "vnids"} { // package fsm's cursors
			out = append(out, fmt.Sprintf("cursor %s=%d", c, tx.Cursor(c)))
		}
		for _, n := range tx.Nodes() {
			out = append(out, fmt.Sprintf("cursor ips/%s=%d", n.Name, tx.Cursor("ips/"+n.Name)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func statInt(s *Server, key string) uint64 {
	v, _ := strconv.ParseUint(s.raft.Stats()[key], 10, 64)
	return v
}

// steady is fast with a leader lease that survives a loaded machine: these
// tests write through one leader throughout, and a leader that missed its
// quorum for 250 ms (the race detector, a busy 2-core VM) would step down
// in the middle.
func steady(c *raft.Config) {
	fast(c)
	c.HeartbeatTimeout = time.Second
	c.ElectionTimeout = time.Second
	c.LeaderLeaseTimeout = time.Second
}

// hostCount numbers the hosts writeSome registers, for unique underlay
// addresses.
var hostCount atomic.Int32

// writeSome commits n commands on the leader: hosts, networks and
// workloads on them, named with prefix.
func writeSome(t testing.TB, l *Server, prefix string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < n; i++ {
		var err error
		switch {
		case i%20 == 0:
			h := hostCount.Add(1)
			_, err = l.Propose(ctx, command.RegisterNode, register(fmt.Sprintf("%sh%d", prefix, i/20), fmt.Sprintf("198.18.%d.%d", h/250, h%250+1), 1500))
		case i%20 == 1:
			_, err = l.Propose(ctx, command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: fmt.Sprintf("%sn%d", prefix, i/20), Labels: map[string]string{"i": strconv.Itoa(i)}}}})
		default:
			_, err = l.Propose(ctx, command.AttachWorkload, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{
				Name: fmt.Sprintf("w%d", i), Network: fmt.Sprintf("%sn%d", prefix, i/20), Node: fmt.Sprintf("%sh%d", prefix, i/20)}})
		}
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
}

// TestSnapshotsCompactTheLog: with a low snapshot threshold, raft takes
// several snapshots of the bbolt state while writes go on and deletes the
// log behind them; a follower cut off meanwhile is behind the first entry
// left, so it catches up through InstallSnapshot and ends with the same
// state, allocator cursors included.
func TestSnapshotsCompactTheLog(t *testing.T) {
	mc := newMemClusterTB(t, 3, func(c *raft.Config) {
		steady(c)
		c.SnapshotThreshold = 40
		c.SnapshotInterval = 50 * time.Millisecond
		c.TrailingLogs = 10
	})
	l := mc.leader()
	lagger := mc.followers()[0]
	var ltr *raft.InmemTransport
	for i, s := range mc.servers {
		if s == lagger {
			ltr = mc.trans[i]
		}
	}
	cut := func(connect bool) {
		for _, tr := range mc.trans {
			if tr == ltr {
				continue
			}
			if connect {
				tr.Connect(ltr.LocalAddr(), ltr)
				ltr.Connect(tr.LocalAddr(), tr)
			} else {
				tr.Disconnect(ltr.LocalAddr())
				ltr.Disconnect(tr.LocalAddr())
			}
		}
	}
	writeSome(t, l, "a", 20)
	mc.waitApplied(l.FSM().AppliedIndex())
	cut(false)
	behind := lagger.raft.LastIndex()

	// Write in rounds and watch the snapshots go by.
	snaps := map[uint64]bool{}
	for round := 0; round < 8; round++ {
		writeSome(t, l, fmt.Sprintf("r%d", round), 40)
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if i := statInt(l, "last_snapshot_index"); i > 0 && !snaps[i] {
				snaps[i] = true
				break
			}
		}
	}
	if len(snaps) < 3 {
		t.Fatalf("the leader took %d snapshots over 320 entries with a threshold of 40; want several", len(snaps))
	}
	first, err := l.logs.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	last, _ := l.logs.LastIndex()
	if first <= behind+1 {
		t.Fatalf("the leader's log starts at %d: not compacted past the follower's last entry %d", first, behind)
	}
	t.Logf("%d snapshots; the leader's log holds entries %d-%d; the follower stopped at %d", len(snaps), first, last, behind)

	cut(true)
	want := l.FSM().AppliedIndex()
	deadline := time.Now().Add(20 * time.Second)
	for lagger.raft.AppliedIndex() < want {
		if time.Now().After(deadline) {
			t.Fatalf("the follower applied %d of %d after reconnecting", lagger.raft.AppliedIndex(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if i := statInt(lagger, "last_snapshot_index"); i < first {
		t.Fatalf("the follower's last snapshot is at %d; it caught up without InstallSnapshot?", i)
	}
	if a, b := objects(t, l), objects(t, lagger); !slices.Equal(a, b) {
		t.Fatalf("the follower differs from the leader after InstallSnapshot:\n%s", diffLines(a, b))
	}
	// It goes on applying new entries normally.
	writeSome(t, l, "z", 5)
	mc.waitApplied(l.FSM().AppliedIndex())
	if a, b := objects(t, l), objects(t, lagger); !slices.Equal(a, b) {
		t.Fatalf("the follower differs after further writes:\n%s", diffLines(a, b))
	}
}

// TestStateBehindSnapshotIsRestoredAtStart: a server that stops with a raft
// snapshot newer than its state (it died between raft storing an installed
// snapshot and the FSM taking it) restores the snapshot at start instead of
// continuing from a state that misses entries the log no longer holds.
func TestStateBehindSnapshotIsRestoredAtStart(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func() *Server {
		_, tr := raft.NewInmemTransport("s1")
		s, err := NewServer(Config{DataDir: dir, ID: "s1", Transport: tr, Bootstrap: true, Logger: log,
			Tune: func(c *raft.Config) { steady(c); c.TrailingLogs = 0; c.SnapshotThreshold = 1 << 30 }})
		if err != nil {
			t.Fatal(err)
		}
		for !s.IsLeader() {
			time.Sleep(5 * time.Millisecond)
		}
		return s
	}
	s := start()
	writeSome(t, s, "a", 5)
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	s = start()
	writeSome(t, s, "b", 30)
	if err := s.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	want := objects(t, s)
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	// The state file goes back to before the snapshot.
	if err := os.WriteFile(filepath.Join(dir, "state.db"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	s = start()
	defer s.Shutdown()
	if err := s.ReadBarrier(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := objects(t, s); !slices.Equal(got, want) {
		t.Fatalf("after a start with the state behind the snapshot:\n%s", diffLines(want, got))
	}
}

// TestRestoreState saves one cluster's state and restores it into another
// of three servers: refused while that one holds state (and unchanged),
// then forced. Every server ends with the saved objects and allocator
// cursors, the revision moves past both clusters', and both clusters
// allocate the same addresses next (so no address is handed out twice
// against the restored state). Damaged images are refused first.
func TestRestoreState(t *testing.T) {
	src := newMemClusterTB(t, 1, steady)
	sl := src.leader()
	writeSome(t, sl, "a", 60)
	img := filepath.Join(t.TempDir(), "image.db")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	var info ImageInfo
	if err := sl.SaveState(ctxT(t), f, &info); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if info.Networks != 3 || info.Nodes != 3 || info.Workloads != 54 || info.Revision != 60 || info.AppliedIndex == 0 || info.Term == 0 {
		t.Fatalf("image info %+v", info)
	}
	want := objects(t, sl)

	dst := newMemClusterTB(t, 3, steady)
	dl := dst.leader()
	writeSome(t, dl, "b", 25)
	before := objects(t, dl)

	var ce *fsm.Error
	_, err = dl.RestoreState(ctxT(t), img, false)
	if !errors.As(err, &ce) || ce.Code != fsm.CodeConflict || !strings.Contains(err.Error(), "not empty (2 networks, 21 workloads, 2 hosts, revision 25)") {
		t.Fatalf("restore over state without force: %v", err)
	}
	if got := objects(t, dl); !slices.Equal(got, before) {
		t.Fatalf("a refused restore changed the state:\n%s", diffLines(before, got))
	}
	if _, err := dl.RestoreState(ctxT(t), filepath.Join(t.TempDir(), "none"), true); err == nil {
		t.Fatal("restore of a missing file succeeded")
	}
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, []byte("not a bbolt file at all"), 0o600)
	if _, err := dl.RestoreState(ctxT(t), junk, true); !errors.As(err, &ce) || !strings.Contains(err.Error(), "does not hold a state") {
		t.Fatalf("restore of junk: %v", err)
	}
	if got := objects(t, dl); !slices.Equal(got, before) {
		t.Fatalf("a refused restore changed the state:\n%s", diffLines(before, got))
	}

	res, err := dl.RestoreState(ctxT(t), img, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Revision != 60+restoreRevisionGap || res.Replaced.Workloads != 21 || res.Restored.Workloads != 54 || res.RaftIndex == 0 {
		t.Fatalf("restore result %+v", res)
	}
	for _, s := range dst.servers {
		deadline := time.Now().Add(10 * time.Second)
		for s.raft.AppliedIndex() < res.RaftIndex && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := objects(t, s); !slices.Equal(got, want) {
			t.Fatalf("%s after the restore:\n%s", s.ID(), diffLines(want, got))
		}
		var m state.Meta
		s.FSM().View(func(tx *state.Tx) error { m = tx.Meta(); return nil })
		if m.Revision != res.Revision || m.Compacted != res.Revision || m.AppliedIndex != res.RaftIndex {
			t.Fatalf("%s meta after the restore: %+v, want revision and compacted %d, applied %d", s.ID(), m, res.Revision, res.RaftIndex)
		}
		if err := s.FSM().CheckAllocators(); err != nil {
			t.Fatalf("%s: allocators after the restore: %v", s.ID(), err)
		}
	}
	// Both clusters continue identically: the same next allocations.
	writeSome(t, sl, "c", 25)
	writeSome(t, dl, "c", 25)
	dst.waitApplied(dl.FSM().AppliedIndex())
	want = allocations(sl)
	for _, s := range dst.servers {
		if got := allocations(s); !slices.Equal(got, want) {
			t.Fatalf("%s allocates differently from the source after the restore:\n%s", s.ID(), diffLines(want, got))
		}
	}
}

// allocations lists every subnet, VNID and address allocated.
func allocations(s *Server) []string {
	var out []string
	s.FSM().View(func(tx *state.Tx) error {
		for _, n := range tx.Nodes() {
			out = append(out, "node "+n.Name+" "+n.Subnet)
		}
		for _, n := range tx.Networks() {
			out = append(out, fmt.Sprintf("network %s %d", n.Name, n.Vnid))
		}
		for _, w := range tx.Workloads("") {
			out = append(out, "workload "+w.Network+"/"+w.Name+" "+w.Ip+" "+w.Mac)
		}
		return nil
	})
	return out
}

// TestLeftoversRemovedAtStart: the temporary files of a save or restore
// that died midway are removed when the server starts; other files stay.
func TestLeftoversRemovedAtStart(t *testing.T) {
	dir := t.TempDir()
	left := []string{"snapshot-123.tmp", "restore-456.tmp", "restore-image-789.db", "state.db.restore"}
	for _, f := range append(left, "keep.tmp") {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, tr := raft.NewInmemTransport("s1")
	s, err := NewServer(Config{DataDir: dir, ID: "s1", Transport: tr, Bootstrap: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Tune: steady})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	for _, f := range left {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "keep.tmp")); err != nil {
		t.Errorf("keep.tmp, not a leftover, was removed: %v", err)
	}
}

// TestRestoreRefusesInvalidImage: an image whose records all pass their
// checksums but whose objects break the model's rules, its references or
// its allocations, and an image with a damaged record, are refused before
// they replace anything, saying what is wrong.
func TestRestoreRefusesInvalidImage(t *testing.T) {
	src := newMemClusterTB(t, 1, steady)
	writeSome(t, src.leader(), "a", 60)
	img := filepath.Join(t.TempDir(), "image.db")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	var info ImageInfo
	if err := src.leader().SaveState(ctxT(t), f, &info); err != nil {
		t.Fatal(err)
	}
	f.Close()
	good, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	dst := newMemClusterTB(t, 1, steady)
	dl := dst.leader()
	writeSome(t, dl, "b", 25)
	before := objects(t, dl)

	edit := func(fn func(tx *state.Tx) error) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			db, err := state.Open(path, state.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(fn); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		name   string
		damage func(t *testing.T, path string)
		want   string
	}{
		{"record changed", func(t *testing.T, path string) {
			// Values only (keys stay in order): ah1's gateway and the
			// addresses that start like it.
			b := bytes.ReplaceAll(good, []byte("10.128.2.1"), []byte("10.128.2.9"))
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "the snapshot's state file is damaged: record"},
		{"label invalid", edit(func(tx *state.Tx) error {
			n, _ := tx.Network("an0")
			n.Labels = map[string]string{"-x": "y"}
			return tx.PutNetwork(n)
		}), `the snapshot's state is not valid: network "an0": label key "-x"`},
		{"network gone", edit(func(tx *state.Tx) error { return tx.DeleteNetwork("an1") }),
			`18 problems: workload "an1/w22": its network "an1" does not exist`},
		{"address twice", edit(func(tx *state.Tx) error {
			w2, _ := tx.Workload("an0", "w2")
			w3, _ := tx.Workload("an0", "w3")
			w3.Ip = w2.Ip
			return tx.PutWorkload(w3)
		}), "allocations: workload an0/w3:"},
		{"host name", edit(func(tx *state.Tx) error {
			return tx.PutNode(&sdnv1.Node{Name: "AH_9", UnderlayIp: "198.19.9.9", UnderlayMtu: 1500})
		}), `node name "AH_9"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "image.db")
			if err := os.WriteFile(p, good, 0o600); err != nil {
				t.Fatal(err)
			}
			c.damage(t, p)
			_, err := dl.RestoreState(ctxT(t), p, true)
			var ce *fsm.Error
			if !errors.As(err, &ce) || ce.Code != fsm.CodeInvalid || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("restore of an image with %s: %v; want a refusal saying %q", c.name, err, c.want)
			}
			t.Log(err)
			if got := objects(t, dl); !slices.Equal(got, before) {
				t.Fatalf("a refused restore changed the state:\n%s", diffLines(before, got))
			}
		})
	}
}
