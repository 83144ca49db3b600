package integration

// The state file's integrity (issue 11). state.db is a cache of the raft
// log (docs/design.md, "Durability of the state file"): a byte changed in
// it underneath bbolt, while sdnd is stopped or while it runs, must never
// be served. Each test here builds a state with a real `sdnd --dev`, stops
// it, damages copies of its state.db and starts real sdnd processes on
// them: a damaged file is either refused with a message naming state.db,
// or set aside and rebuilt from the raft snapshot and log (after which the
// original state is served), or the damage was harmless (the original
// state is served). Nothing else may be served.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

const (
	// stateLabel is the label value the hostile tester changed by one byte
	// (i4242 -> j4242) in state.db.
	stateLabel, stateLabelFlipped = "i4242", "j4242"
	// stateRebuilt is what sdnd logs when it sets state.db aside and
	// rebuilds it from raft (cluster/recover.go).
	stateRebuilt = "rebuilding it from the raft snapshot and log"
	// stateSeed fixes the corruption test's damage.
	stateSeed = 11
)

// stateFixture is a stopped `sdnd --dev` data directory and what that
// server served before it stopped.
type stateFixture struct {
	dir  string
	want map[string]string
	// used are the byte ranges [from, to) of state.db's pages that are in
	// use (meta, freelist, branch and leaf pages with their overflow).
	used [][2]int64
	size int64
}

var stateCaptures = []compatCapture{
	{"cluster.json", []string{"get", "cluster", "-o", "json"}, nil},
	{"networks.json", []string{"get", "networks", "-o", "json"}, nil},
	{"nodes.json", []string{"get", "nodes", "-o", "json"}, compatMemoryOnly},
	{"workloads.json", []string{"get", "workloads", "-o", "json"}, nil},
	{"revoked.json", []string{"tls", "revoked", "-o", "json"}, nil},
}

// stateObjects is the fixture's HCL: networks with labels (one of them
// stateLabel), and static workloads spread over the hosts, enough for the
// workloads bucket to span several pages under a branch page.
func stateObjects() string {
	var b strings.Builder
	nets := []string{"web", "db", "batch", "infra", "scratch"}
	for i, n := range nets {
		fmt.Fprintf(&b, "network %q {\n  labels = { owner = %q, env = \"env%d\" }\n}\n", n, fmt.Sprintf("i%d", 4242+i), i)
	}
	for i := range 60 {
		fmt.Fprintf(&b, "workload \"w%02d\" {\n  network = %q\n  node    = \"host%d\"\n  labels  = { role = \"r%d\", idx = \"n%d\" }\n}\n",
			i, nets[i%4], 1+i%5, i%3, i)
	}
	return b.String()
}

// buildStateFixture makes the fixture: hosts, networks, workloads (HCL
// and CNI), a delete, a revocation, a raft snapshot (a restore of the
// cluster's own backup, as compat_gen_test.go makes one) and writes after
// it, so a rebuild restores the snapshot and replays the log.
func buildStateFixture(t *testing.T, bin string) *stateFixture {
	t.Helper()
	dir := t.TempDir()
	s := startCompatServer(t, bin, dir, "1h")
	for i := 1; i <= 4; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := sdnv1.NewNodeServiceClient(s.conn).Register(ctx, &sdnv1.RegisterNodeRequest{Name: fmt.Sprintf("host%d", i),
			UnderlayIp: fmt.Sprintf("198.18.0.%d", 10+i), UnderlayMtu: 1500, Labels: map[string]string{"rack": fmt.Sprintf("r%d", i%2)}})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	s.ctl(t, "apply", "-f", writeFile(t, t.TempDir(), "objects.hcl", stateObjects()))
	for i := range 6 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		w := cniWorkload("web", fmt.Sprintf("ctr-%d", i), fmt.Sprintf("host%d", 1+i%4), map[string]string{"app": "fe"})
		w.Origin = &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_CNI, ContainerId: cniContainer(w.Network, w.Name), Ifname: "eth0"}
		_, err := sdnv1.NewWorkloadServiceClient(s.conn).Attach(ctx, &sdnv1.AttachWorkloadRequest{Workload: w})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	s.ctl(t, "tls", "revoke", "--serial", "5eed", "--identity", "agent/host9", "--reason", "lost laptop")
	backup := filepath.Join(t.TempDir(), "backup.snap")
	s.ctl(t, "snapshot", "save", backup)
	s.ctl(t, "snapshot", "restore", "--force", backup)
	s.ctl(t, "delete", "workload", "web/ctr-5")
	s.ctl(t, "node", "drain", "host3")
	// The leader gives the cluster its id on its first liveness tick; a
	// server started on a copy without it would set another.
	for deadline := time.Now().Add(30 * time.Second); s.status(t).GetClusterId() == ""; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the cluster has no id after 30s; sdnd's log:\n%s", s.log)
		}
	}
	want := servedState(t, s)
	s.stop(t)
	if !strings.Contains(want["networks.json"], stateLabel) {
		t.Fatalf("the fixture does not serve the label %s:\n%s", stateLabel, want["networks.json"])
	}
	fx := &stateFixture{dir: dir, want: want}
	fx.used, fx.size = usedPages(t, filepath.Join(dir, "state.db"))
	return fx
}

// servedState is everything the server serves that the state file holds:
// the get outputs, the revision, the cluster id and host1's watch from
// the compacted revision (the stored history).
func servedState(t *testing.T, s *compatServer) map[string]string {
	t.Helper()
	got := s.capture(t, stateCaptures)
	st := s.status(t)
	got["status"] = fmt.Sprintf("revision %d, compacted %d, cluster %q", st.GetRevision(), st.GetCompactedRevision(), st.GetClusterId())
	got["watch"] = s.watch(t, "host1", st.GetCompactedRevision(), st.GetRevision())
	return got
}

// usedPages lists the byte ranges of the pages of a copy of the bbolt file
// at path that are in use.
func usedPages(t *testing.T, path string) ([][2]int64, int64) {
	t.Helper()
	cp := filepath.Join(t.TempDir(), "copy.db")
	copyFileTo(t, path, cp)
	db, err := bolt.Open(cp, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ps := int64(db.Info().PageSize)
	var used [][2]int64
	err = db.Update(func(tx *bolt.Tx) error {
		for id := 0; ; {
			p, err := tx.Page(id)
			if err != nil {
				return err
			}
			if p == nil {
				return nil
			}
			if p.Type != "free" {
				used = append(used, [2]int64{int64(id) * ps, int64(id+1+p.OverflowCount) * ps})
			}
			id += 1 + p.OverflowCount
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return used, fi.Size()
}

// stateCase is one way of damaging state.db: bytes XORed at offsets.
type stateCase struct {
	name  string
	flips []stateFlip
}

type stateFlip struct {
	off int64
	xor byte
}

func (c stateCase) String() string {
	parts := make([]string, len(c.flips))
	for i, f := range c.flips {
		parts[i] = fmt.Sprintf("byte %d ^= %#02x", f.off, f.xor)
	}
	return strings.Join(parts, ", ")
}

// stateCases are the corruption test's cases for seed: single bytes
// anywhere in the file, single bytes in pages in use, and several bytes
// in pages in use.
func stateCases(fx *stateFixture, seed uint64) []stateCase {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	var usedTotal int64
	for _, u := range fx.used {
		usedTotal += u[1] - u[0]
	}
	inUse := func() int64 {
		n := r.Int64N(usedTotal)
		for _, u := range fx.used {
			if n < u[1]-u[0] {
				return u[0] + n
			}
			n -= u[1] - u[0]
		}
		panic("unreachable")
	}
	flip := func(off int64) stateFlip { return stateFlip{off, byte(1 + r.IntN(255))} }
	var cases []stateCase
	for i := range 80 {
		cases = append(cases, stateCase{fmt.Sprintf("anywhere-%03d", i), []stateFlip{flip(r.Int64N(fx.size))}})
	}
	for i := range 130 {
		cases = append(cases, stateCase{fmt.Sprintf("in-use-%03d", i), []stateFlip{flip(inUse())}})
	}
	for i := range 40 {
		var fl []stateFlip
		for range 2 + r.IntN(7) {
			fl = append(fl, flip(inUse()))
		}
		cases = append(cases, stateCase{fmt.Sprintf("several-%03d", i), fl})
	}
	return cases
}

// TestStateFileLabelFlip is the hostile tester's report: one label byte
// changed in state.db (i4242 -> j4242, same length) while sdnd is stopped
// was served, and a snapshot saved afterwards carried it under a valid
// SHA-256. Now the damaged record is found when sdnd starts, the file is
// rebuilt from raft and the original label is served and saved.
func TestStateFileLabelFlip(t *testing.T) {
	bin := binaries(t)
	fx := buildStateFixture(t, bin)
	dir := t.TempDir()
	copyTree(t, fx.dir, dir)
	path := filepath.Join(dir, "state.db")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := bytes.Count(b, []byte(stateLabel))
	if n == 0 {
		t.Fatalf("%s does not hold %q", path, stateLabel)
	}
	b = bytes.ReplaceAll(b, []byte(stateLabel), []byte(stateLabelFlipped))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, served := startStateServer(t, bin, dir)
	if !served {
		t.Fatalf("sdnd refused the state file with %d bytes changed (%s -> %s) instead of rebuilding it; its log:\n%s", n, stateLabel, stateLabelFlipped, s.log)
	}
	defer s.stop(t)
	got := servedState(t, s)
	if strings.Contains(got["networks.json"], stateLabelFlipped) {
		t.Errorf("sdnd serves the changed label %s:\n%s", stateLabelFlipped, got["networks.json"])
	}
	compareServed(t, fx.want, got)
	if !strings.Contains(s.log.String(), stateRebuilt) || !strings.Contains(s.log.String(), "fails its checksum") {
		t.Errorf("sdnd did not say it found a damaged record and rebuilt state.db; its log:\n%s", s.log)
	}
	snap := filepath.Join(t.TempDir(), "after.snap")
	s.ctl(t, "snapshot", "save", snap)
	sb, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sb, []byte(stateLabelFlipped)) {
		t.Errorf("the snapshot saved after the change carries %s", stateLabelFlipped)
	}
	t.Logf("%d occurrences of %s changed; sdnd's log:\n%s", n, stateLabel, s.log)
}

// TestStateFileCorruption damages copies of a stopped server's state.db
// (for a fixed seed: single bytes anywhere, single bytes in pages in use,
// several bytes in pages in use) and starts sdnd on each. Every case must
// end refused (naming state.db), rebuilt (the original state served) or
// harmless (the original state served); the tally is logged.
func TestStateFileCorruption(t *testing.T) {
	bin := binaries(t)
	fx := buildStateFixture(t, bin)
	cases := stateCases(fx, stateSeed)
	if only := os.Getenv("SDN_STATE_CASES"); only != "" { // e.g. in-use-063, to look at one case
		cases = slices.DeleteFunc(cases, func(c stateCase) bool { return !slices.Contains(strings.Split(only, ","), c.name) })
	}
	var mu sync.Mutex
	tally := map[string][]string{}
	t.Run("cases", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				outcome := runStateCase(t, bin, fx, c)
				mu.Lock()
				tally[outcome] = append(tally[outcome], c.name)
				mu.Unlock()
			})
		}
	})
	var lines []string
	for _, o := range []string{"refused", "rebuilt", "harmless", "failed"} {
		lines = append(lines, fmt.Sprintf("%s %d", o, len(tally[o])))
	}
	t.Logf("seed %d, %d cases (state.db of %d bytes, %d in pages in use): %s", stateSeed, len(cases), fx.size, usedBytes(fx), strings.Join(lines, ", "))
	if len(tally["failed"]) > 0 {
		sort.Strings(tally["failed"])
		t.Errorf("cases that served another state, or neither served nor stopped: %s", strings.Join(tally["failed"], " "))
	}
}

func usedBytes(fx *stateFixture) int64 {
	var n int64
	for _, u := range fx.used {
		n += u[1] - u[0]
	}
	return n
}

// runStateCase damages a copy of the fixture as c says, starts sdnd on it
// and classifies what it did.
func runStateCase(t *testing.T, bin string, fx *stateFixture, c stateCase) string {
	dir := t.TempDir()
	copyTree(t, fx.dir, dir)
	f, err := os.OpenFile(filepath.Join(dir, "state.db"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, fl := range c.flips {
		b := []byte{0}
		if _, err := f.ReadAt(b, fl.off); err != nil {
			t.Fatal(err)
		}
		b[0] ^= fl.xor
		if _, err := f.WriteAt(b, fl.off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	s, served := startStateServer(t, bin, dir)
	if s == nil {
		t.Errorf("%s: sdnd neither served nor stopped", c)
		return "failed"
	}
	if !served {
		if !strings.Contains(s.log.String(), "state.db") {
			t.Errorf("%s: sdnd stopped without naming state.db; its log:\n%s", c, s.log)
			return "failed"
		}
		return "refused"
	}
	defer s.stop(t)
	got := servedState(t, s)
	if !compareServed(t, fx.want, got) {
		t.Errorf("%s: sdnd served another state than the original; its log:\n%s", c, s.log)
		return "failed"
	}
	if strings.Contains(s.log.String(), stateRebuilt) {
		return "rebuilt"
	}
	return "harmless"
}

// compareServed reports (on t) how got differs from want; true when not.
func compareServed(t *testing.T, want, got map[string]string) bool {
	t.Helper()
	same := true
	for _, name := range sortedKeys(want) {
		if got[name] != want[name] {
			same = false
			t.Errorf("%s differs (- original, + served):\n%s", name, compatDiff(want[name], got[name]))
		}
	}
	return same
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func copyFileTo(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestStateFileDamagedWhileRunning changes a stored label in state.db
// under a running sdnd, twice. First a snapshot save is refused, naming
// the file and the record (it used to carry the changed label under a
// valid SHA-256), and the server stops on its own; started again, it
// rebuilds the file and serves the original state. Then a read is refused
// the same way and the server stops again; started again, it rebuilds.
func TestStateFileDamagedWhileRunning(t *testing.T) {
	bin := binaries(t)
	fx := buildStateFixture(t, bin)
	dir := t.TempDir()
	copyTree(t, fx.dir, dir)
	path := filepath.Join(dir, "state.db")
	s, served := startStateServer(t, bin, dir)
	if !served {
		t.Fatalf("sdnd did not start on the undamaged fixture; its log:\n%s", s.log)
	}
	damageRunning(t, path)
	snap := filepath.Join(t.TempDir(), "damaged.snap")
	out, code := sdnctlOut(t, bin, s.addr, "snapshot", "save", snap)
	t.Logf("sdnctl snapshot save on the damaged file: exit %d\n%s", code, out)
	if code == 0 || !strings.Contains(out, path) || !strings.Contains(out, `record "web" of bucket networks`) {
		t.Errorf("snapshot save of a damaged state file: want a refusal naming %s and the networks record, got exit %d:\n%s", path, code, out)
	}
	if _, err := os.Stat(snap); err == nil {
		t.Errorf("snapshot save of a damaged state file left %s", snap)
	}
	stoppedOnDamage(t, s)

	s = restartRebuilt(t, bin, fx, dir)
	damageRunning(t, path)
	out, code = sdnctlOut(t, bin, s.addr, "get", "networks", "-o", "json")
	t.Logf("sdnctl get networks on the damaged file: exit %d\n%s", code, out)
	if code == 0 || strings.Contains(out, stateLabelFlipped) || !strings.Contains(out, path) || !strings.Contains(out, `record "web" of bucket networks`) {
		t.Errorf("get networks on a damaged state file: want a refusal naming %s and the networks record, got exit %d:\n%s", path, code, out)
	}
	stoppedOnDamage(t, s)
	restartRebuilt(t, bin, fx, dir).stop(t)
}

// damageRunning changes every stateLabel in the state file at path to
// stateLabelFlipped, under the server that has it open.
func damageRunning(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for i := 0; ; n++ {
		j := bytes.Index(b[i:], []byte(stateLabel))
		if j < 0 {
			break
		}
		if _, err := f.WriteAt([]byte(stateLabelFlipped[:1]), int64(i+j)); err != nil {
			t.Fatal(err)
		}
		i += j + 1
	}
	if n == 0 {
		t.Fatalf("%s does not hold %q", path, stateLabel)
	}
}

// stoppedOnDamage waits for sdnd to exit on its own after it found its
// state file damaged: status 1, saying so.
func stoppedOnDamage(t *testing.T, s *compatServer) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("sdnd goes on running on a damaged state file; its log:\n%s", s.log)
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(s.log.String(), "the state file is damaged") {
		t.Errorf("sdnd exited with %d; want 1 and a log saying state.db is damaged; its log:\n%s", code, s.log)
	}
	t.Logf("sdnd's log:\n%s", s.log)
}

// restartRebuilt starts sdnd again on dir: it must rebuild state.db from
// raft, keep the damaged file as state.db.untrusted and serve the original.
func restartRebuilt(t *testing.T, bin string, fx *stateFixture, dir string) *compatServer {
	t.Helper()
	s, served := startStateServer(t, bin, dir)
	if !served {
		t.Fatalf("sdnd did not start again after stopping on a damaged state file; its log:\n%s", s.log)
	}
	if !strings.Contains(s.log.String(), stateRebuilt) {
		t.Errorf("started again, sdnd did not rebuild state.db; its log:\n%s", s.log)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.db.untrusted")); err != nil {
		t.Errorf("the damaged file was not kept as state.db.untrusted: %v", err)
	}
	compareServed(t, fx.want, servedState(t, s))
	return s
}

// sdnctlOut runs sdnctl against addr: its output (stdout and stderr) and
// exit code.
func sdnctlOut(t *testing.T, bin, addr string, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(filepath.Join(bin, "sdnctl"), append([]string{"--server", addr}, args...)...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}
