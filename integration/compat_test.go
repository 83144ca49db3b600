package integration

// The on-disk format regression test: testdata/compat/state.tar.gz is the
// data directory of an `sdnd --dev` made by an earlier commit (which one,
// and how, is in testdata/compat/README.md; compat_gen_test.go made it).
// The sdnd built from this tree must open it as it is, without
// bootstrapping anew, and serve what that commit served, byte for byte
// once the fields held only in the leader's memory are left out; then take
// writes. A second case deletes state.db first, so the state is rebuilt
// from raft.db alone: the raft snapshot, then the log after it.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

const (
	compatDir     = "testdata/compat"
	compatTarball = "state.tar.gz"
	compatGolden  = "golden"
	// compatNode is the fixture's server: its raft id, which the server
	// opening the fixture must keep to be the cluster's one voter.
	compatNode = "dev"
	// compatWatchHost is the host whose watch from the compacted revision
	// (the stored change history) is compared.
	compatWatchHost = "host1"
	// compatAfterHCL is applied once the fixture is open, relative to the
	// repository root (sdnctl runs there, so the stored origin file is the
	// same whoever runs the test).
	compatAfterHCL = "integration/testdata/compat/hcl/after.hcl"
)

// compatManifest describes the fixture; the generator writes it beside the
// tarball.
type compatManifest struct {
	// Commit is the commit whose sdnd and sdnctl made the fixture.
	Commit    string `json:"commit"`
	Generated string `json:"generated"`
	// Revision and CompactedRevision are what Status served before the
	// server was stopped; ClusterID its cluster id.
	Revision          uint64 `json:"revision"`
	CompactedRevision uint64 `json:"compacted_revision"`
	ClusterID         string `json:"cluster_id"`
	// RaftSnapshot is the snapshot's directory under raft/snapshots;
	// SnapshotIndex its raft index.
	RaftSnapshot  string `json:"raft_snapshot"`
	SnapshotIndex uint64 `json:"snapshot_index"`
	// The raft log in raft.db: its first and last index, the commands in
	// it by type, and those after the snapshot (what a state rebuilt from
	// raft.db replays); the commands inside Batch entries are counted too.
	LogFirstIndex     uint64         `json:"log_first_index"`
	LogLastIndex      uint64         `json:"log_last_index"`
	LogCommands       map[string]int `json:"log_commands"`
	ReplayedCommands  map[string]int `json:"replayed_commands"`
	Networks          int            `json:"networks"`
	Nodes             int            `json:"nodes"`
	Workloads         int            `json:"workloads"`
	RevokedCerts      int            `json:"revoked_certificates"`
	TarballFiles      []string       `json:"tarball_files"`
	GoldenDescription string         `json:"golden"`
}

// compatCapture is one sdnctl command whose JSON output is compared. drop
// names fields (at any depth) that are the leader's memory rather than the
// store: heartbeat and realize reports, which a restarted server has not
// received, and what it works out from them (current, needed revision).
type compatCapture struct {
	file string
	args []string
	drop []string
}

var (
	compatMemoryOnly = []string{"lastHeartbeatUnixMs", "lastReportUnixMs", "realizedRevision", "error", "current", "neededRevision"}
	compatCaptures   = []compatCapture{
		{"cluster.json", []string{"get", "cluster", "-o", "json"}, nil},
		{"networks.json", []string{"get", "networks", "-o", "json"}, nil},
		{"nodes.json", []string{"get", "nodes", "-o", "json"}, compatMemoryOnly},
		{"workloads.json", []string{"get", "workloads", "-o", "json"}, nil},
		{"status.json", []string{"status", "-o", "json"}, compatMemoryOnly},
		{"revoked.json", []string{"tls", "revoked", "-o", "json"}, nil},
	}
	// compatAfterCaptures are taken once after.hcl is applied.
	compatAfterCaptures = []compatCapture{
		{"after-networks.json", []string{"get", "networks", "-o", "json"}, nil},
		{"after-workloads.json", []string{"get", "workloads", "-o", "json"}, nil},
		{"after-status.json", []string{"status", "-o", "json"}, compatMemoryOnly},
	}
)

const compatWatchFile = "watch-" + compatWatchHost + ".json"

func TestCompatDiskFormat(t *testing.T) {
	m := readCompatManifest(t)
	golden := readCompatGolden(t)
	bin := binaries(t)
	for _, c := range []struct {
		name      string
		dropState bool
	}{
		{"open-state.db", false},
		{"rebuild-from-raft.db", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := compatCheck(t, bin, filepath.Join(compatDir, compatTarball), m, c.dropState)
			compareCompat(t, golden, got)
		})
	}
}

func readCompatManifest(t *testing.T) *compatManifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(compatDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	m := &compatManifest{}
	if err := json.Unmarshal(b, m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	return m
}

func readCompatGolden(t *testing.T) map[string]string {
	t.Helper()
	golden := map[string]string{}
	dir := filepath.Join(compatDir, compatGolden)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		golden[e.Name()] = string(b)
	}
	var want []string
	for _, c := range append(compatCaptures, compatAfterCaptures...) {
		want = append(want, c.file)
	}
	for _, f := range append(want, compatWatchFile) {
		if _, ok := golden[f]; !ok {
			t.Fatalf("%s lacks %s", dir, f)
		}
	}
	return golden
}

// compareCompat fails t with a diff per output that differs from its
// golden file; with SDN_COMPAT_UPDATE set it rewrites the golden file
// instead (when the output format gains fields; review the diff).
func compareCompat(t *testing.T, golden, got map[string]string) {
	t.Helper()
	names := make([]string, 0, len(golden))
	for name := range golden {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: not captured", name)
			continue
		}
		if g != golden[name] && os.Getenv("SDN_COMPAT_UPDATE") != "" {
			// The outputs gained fields (new API fields print as their
			// zero values): review the diff of the rewritten files.
			if err := os.WriteFile(filepath.Join(compatDir, compatGolden, name), []byte(g), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if g != golden[name] {
			t.Errorf("%s differs from %s (- golden, + served now):\n%s", name, filepath.Join(compatDir, compatGolden, name), compatDiff(golden[name], g))
		}
	}
}

// compatCheck unpacks the fixture, removes state.db when dropState, opens
// it with the sdnd in bin and returns everything compared: the captures,
// the watch, and the captures after a write.
func compatCheck(t *testing.T, bin, tarball string, m *compatManifest, dropState bool) map[string]string {
	t.Helper()
	dir := t.TempDir()
	unpackCompat(t, tarball, dir)
	if m.RaftSnapshot == "" {
		t.Fatal("the manifest names no raft snapshot")
	}
	if _, err := os.Stat(filepath.Join(dir, "raft", "snapshots", m.RaftSnapshot, "state.bin")); err != nil {
		t.Fatalf("the fixture lacks its raft snapshot: %v", err)
	}
	if dropState {
		if err := os.Remove(filepath.Join(dir, "state.db")); err != nil {
			t.Fatal(err)
		}
	}
	s := startCompatServer(t, bin, dir, "1h")
	if st := s.status(t); st.GetRevision() != m.Revision || st.GetClusterId() != m.ClusterID || st.GetCompactedRevision() != m.CompactedRevision {
		t.Errorf("serves revision %d (compacted %d) of cluster %q; the fixture was taken at revision %d (compacted %d) of cluster %q",
			st.GetRevision(), st.GetCompactedRevision(), st.GetClusterId(), m.Revision, m.CompactedRevision, m.ClusterID)
	}
	got := s.capture(t, compatCaptures)
	got[compatWatchFile] = s.watch(t, compatWatchHost, m.CompactedRevision, m.Revision)

	switch _, err := os.Stat(filepath.Join(dir, "state.db")); {
	case err != nil:
		t.Errorf("no state.db after opening: %v", err)
	case !dropState:
		// The file was trusted as it is, not set aside and rebuilt.
		if _, err := os.Stat(filepath.Join(dir, "state.db.untrusted")); err == nil {
			t.Errorf("the server set the fixture's state.db aside instead of opening it; its log:\n%s", s.log)
		}
	}

	// The store takes writes: a network and a workload, allocated past
	// what the fixture holds (VNIDs, addresses and MACs from the stored
	// allocations and cursors).
	out := s.ctl(t, "apply", "-f", compatAfterHCL)
	if want := fmt.Sprintf("Applied at revision %d:", m.Revision+1); !strings.Contains(out, want) {
		t.Errorf("apply after opening: want %q in:\n%s", want, out)
	}
	after := s.capture(t, compatAfterCaptures)
	checkCompatUnique(t, after)
	for k, v := range after {
		got[k] = v
	}
	s.stop(t)
	return got
}

// checkCompatUnique checks the allocations after the write: no VNID,
// address or MAC twice.
func checkCompatUnique(t *testing.T, after map[string]string) {
	t.Helper()
	var nets []struct {
		Name string
		Vnid json.Number
	}
	var wls []struct {
		Name, Network, IP, Mac string
	}
	if err := json.Unmarshal([]byte(after["after-networks.json"]), &nets); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(after["after-workloads.json"]), &wls); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	once := func(what, v, who string) {
		if v == "" {
			return
		}
		if other, dup := seen[what+v]; dup {
			t.Errorf("%s %s is held by %s and %s", what, v, other, who)
		}
		seen[what+v] = who
	}
	for _, n := range nets {
		once("VNID", n.Vnid.String(), "network "+n.Name)
	}
	for _, w := range wls {
		once("address", w.IP, "workload "+w.Network+"/"+w.Name)
		once("MAC", w.Mac, "workload "+w.Network+"/"+w.Name)
	}
}

// compatServer is `sdnd --dev` on a given data directory, from given
// binaries.
type compatServer struct {
	bin, dataDir, addr string
	cmd                *exec.Cmd
	done               chan struct{}
	log                *syncBuffer
	conn               *grpc.ClientConn
}

func startCompatServer(t *testing.T, bin, dataDir, nodeDownAfter string) *compatServer {
	t.Helper()
	s := launchCompatServer(t, bin, dataDir, nodeDownAfter)
	h := healthpb.NewHealthClient(s.conn)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		res, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && res.Status == healthpb.HealthCheckResponse_SERVING {
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("sdnd exited (%v) before serving; its log:\n%s", s.cmd.ProcessState, s.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sdnd did not become healthy; its log:\n%s", s.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// launchCompatServer starts `sdnd --dev` on dataDir, its output into s.log,
// with a client connection to it; it does not wait for it to serve. The
// test's end kills it and closes the connection.
func launchCompatServer(t *testing.T, bin, dataDir, nodeDownAfter string) *compatServer {
	t.Helper()
	s := &compatServer{bin: bin, dataDir: dataDir, addr: freePort(t), log: newSyncBuffer(), done: make(chan struct{})}
	s.cmd = exec.Command(filepath.Join(bin, "sdnd"), "--dev", "--data-dir", dataDir, "--listen", s.addr,
		"--raft-addr", freePort(t), "--node-name", compatNode, "--node-down-after", nodeDownAfter)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(s.kill)
	c, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	s.conn = c
	t.Cleanup(func() { c.Close() })
	return s
}

// stop stops the server as an operator would (SIGTERM) and fails t unless
// it exits cleanly.
func (s *compatServer) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.kill()
		t.Fatalf("sdnd did not stop within 20s of SIGTERM; its log:\n%s", s.log)
	}
	if !s.cmd.ProcessState.Success() {
		t.Fatalf("sdnd exited with %v after SIGTERM; its log:\n%s", s.cmd.ProcessState, s.log)
	}
}

func (s *compatServer) kill() {
	select {
	case <-s.done:
	default:
		s.cmd.Process.Kill()
		<-s.done
	}
}

// ctl runs sdnctl against the server from the repository root and returns
// its stdout, failing t on a non-zero exit.
func (s *compatServer) ctl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(s.bin, "sdnctl"), append([]string{"--server", s.addr}, args...)...)
	cmd.Dir = ".."
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("sdnctl %s: %v\nstdout:\n%s\nstderr:\n%s\nsdnd's log:\n%s", strings.Join(args, " "), err, out.String(), errb.String(), s.log)
	}
	return out.String()
}

func (s *compatServer) capture(t *testing.T, captures []compatCapture) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, c := range captures {
		j, err := canonicalJSON([]byte(s.ctl(t, c.args...)), c.drop)
		if err != nil {
			t.Fatalf("sdnctl %s: %v", strings.Join(c.args, " "), err)
		}
		out[c.file] = j
	}
	return out
}

func (s *compatServer) status(t *testing.T) *sdnv1.StatusResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := sdnv1.NewStatusServiceClient(s.conn).Status(ctx, &sdnv1.StatusRequest{})
	if err != nil {
		t.Fatalf("status: %v\nsdnd's log:\n%s", err, s.log)
	}
	return st
}

// watch follows host's watch from revision after (the stored change
// history) up to revision until, and renders the events as JSON.
func (s *compatServer) watch(t *testing.T, host string, after, until uint64) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := sdnv1.NewNodeServiceClient(s.conn).Watch(ctx, &sdnv1.WatchRequest{Node: host, AfterRevision: after})
	if err != nil {
		t.Fatal(err)
	}
	var events []json.RawMessage
	for {
		ev, err := stream.Recv()
		if err != nil {
			t.Fatalf("watch %s after %d: %v after %d events", host, after, err, len(events))
		}
		b, err := protojson.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, b)
		if ev.GetRevision() >= until && (ev.GetType() == sdnv1.WatchEventType_WATCH_EVENT_TYPE_DELTA || ev.GetSnapshotDone()) {
			break
		}
	}
	b, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	j, err := canonicalJSON(b, compatMemoryOnly)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// canonicalJSON re-renders a JSON document indented with sorted keys,
// without the fields named in drop (at any depth): outputs compare by
// content, not by spacing.
func canonicalJSON(raw []byte, drop []string) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("not JSON: %v\n%s", err, raw)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("more than one JSON value in:\n%s", raw)
	}
	var strip func(any)
	strip = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range drop {
				delete(v, k)
			}
			for _, e := range v {
				strip(e)
			}
		case []any:
			for _, e := range v {
				strip(e)
			}
		}
	}
	strip(v)
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", err
	}
	return string(b) + "\n", nil
}

// unpackCompat extracts a gzipped tarball of regular files and directories
// into dir.
func unpackCompat(t *testing.T, tarball, dir string) {
	t.Helper()
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", tarball, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", tarball, err)
		}
		if !filepath.IsLocal(h.Name) {
			t.Fatalf("%s: entry %q leaves the directory", tarball, h.Name)
		}
		p := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, fs.FileMode(h.Mode)&fs.ModePerm|0o700); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			w, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fs.FileMode(h.Mode)&fs.ModePerm|0o600)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(w, tr); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("%s: entry %q is neither a file nor a directory", tarball, h.Name)
		}
	}
}

// compatDiff is a line diff of want and got: "-" lines only in want, "+"
// lines only in got, with three lines of context around each change.
func compatDiff(want, got string) string {
	a, b := strings.Split(want, "\n"), strings.Split(got, "\n")
	// lcs[i][j] is the length of the longest common subsequence of a[i:]
	// and b[j:].
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type line struct {
		op   byte
		text string
	}
	var lines []line
	for i, j := 0, 0; i < len(a) || j < len(b); {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			lines = append(lines, line{' ', a[i]})
			i, j = i+1, j+1
		case i < len(a) && (j == len(b) || lcs[i+1][j] >= lcs[i][j+1]):
			lines = append(lines, line{'-', a[i]})
			i++
		default:
			lines = append(lines, line{'+', b[j]})
			j++
		}
	}
	const around = 3
	near := make([]bool, len(lines))
	for i, l := range lines {
		if l.op != ' ' {
			for k := max(0, i-around); k <= min(len(lines)-1, i+around); k++ {
				near[k] = true
			}
		}
	}
	var out strings.Builder
	skipped := false
	for i, l := range lines {
		if !near[i] {
			skipped = true
			continue
		}
		if skipped {
			out.WriteString("  ...\n")
			skipped = false
		}
		fmt.Fprintf(&out, "%c %s\n", l.op, l.text)
	}
	return out.String()
}
