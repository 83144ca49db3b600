package integration

// TestCompatGenerate makes the fixture TestCompatDiskFormat opens. It runs
// only when asked (testdata/compat/generate.sh sets SDN_COMPAT_GENERATE),
// with the sdnd and sdnctl of SDN_COMPAT_BIN: those of the commit the
// fixture stands for. testdata/compat/README.md says what it holds.

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"google.golang.org/protobuf/encoding/protowire"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func TestCompatGenerate(t *testing.T) {
	if os.Getenv("SDN_COMPAT_GENERATE") == "" {
		t.Skip("makes testdata/compat; run testdata/compat/generate.sh")
	}
	bin, commit := os.Getenv("SDN_COMPAT_BIN"), os.Getenv("SDN_COMPAT_COMMIT")
	if bin == "" || commit == "" {
		t.Fatal("set SDN_COMPAT_BIN (a directory with sdnd and sdnctl) and SDN_COMPAT_COMMIT (the commit they were built from)")
	}
	dataDir := t.TempDir()
	s := startCompatServer(t, bin, dataDir, "1s")
	hb := startHeartbeats(s)
	defer hb.stop()
	g := &compatGen{t: t, s: s, hb: hb}
	g.build()
	live := s.capture(t, compatCaptures)
	st := s.status(t)
	s.stop(t)
	hb.stop()

	work := t.TempDir()
	tarball := filepath.Join(work, compatTarball)
	files := packCompat(t, dataDir, tarball)
	m := &compatManifest{
		Commit:            commit,
		Generated:         time.Now().UTC().Format(time.RFC3339),
		Revision:          st.GetRevision(),
		CompactedRevision: st.GetCompactedRevision(),
		ClusterID:         st.GetClusterId(),
		TarballFiles:      files,
		GoldenDescription: "sdnctl get/status/tls revoked -o json and the watch of " + compatWatchHost + " from the compacted revision, taken from the sdnd of this commit reopening the fixture; the after-* files once hcl/after.hcl is applied; fields held only in the leader's memory dropped",
	}
	describeRaft(t, dataDir, m)
	counts := map[string]int{}
	for _, f := range []string{"networks.json", "nodes.json", "workloads.json"} {
		var list []any
		if err := json.Unmarshal([]byte(live[f]), &list); err != nil {
			t.Fatal(err)
		}
		counts[f] = len(list)
	}
	m.Networks, m.Nodes, m.Workloads = counts["networks.json"], counts["nodes.json"], counts["workloads.json"]
	var revoked struct{ Certificates []any }
	if err := json.Unmarshal([]byte(live["revoked.json"]), &revoked); err != nil {
		t.Fatal(err)
	}
	m.RevokedCerts = len(revoked.Certificates)
	for _, typ := range []string{"ApplyConfig", "Delete", "RegisterNode", "RemoveNode", "AttachWorkload", "DetachWorkload",
		"Compact", "SetNodeLiveness", "DrainNode", "ReleaseNode", "RevokeCertificate"} {
		if m.ReplayedCommands[typ] == 0 {
			t.Errorf("the log after the raft snapshot holds no %s command", typ)
		}
	}

	// The same binaries reopen the fixture, both ways: they must serve
	// what they served before the stop, and the two ways the same. What
	// they serve is the golden output.
	opened := compatCheck(t, bin, tarball, m, false)
	rebuilt := compatCheck(t, bin, tarball, m, true)
	for name, want := range live {
		if opened[name] != want {
			t.Errorf("%s changed across the stop (- before, + reopened):\n%s", name, compatDiff(want, opened[name]))
		}
	}
	for name, want := range opened {
		if rebuilt[name] != want {
			t.Errorf("%s: rebuilt from raft.db differs from state.db (- state.db, + rebuilt):\n%s", name, compatDiff(want, rebuilt[name]))
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	goldenDir := filepath.Join(compatDir, compatGolden)
	if err := os.RemoveAll(goldenDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(goldenDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range opened {
		writeFile(t, goldenDir, name, body)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, compatDir, "manifest.json", string(b)+"\n")
	tb, err := os.ReadFile(tarball)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, compatDir, compatTarball, string(tb))
	t.Logf("fixture at revision %d, raft snapshot %s, %d bytes; replayed commands %v", m.Revision, m.RaftSnapshot, len(tb), m.ReplayedCommands)
}

// compatGen drives the server through every kind of object and command.
type compatGen struct {
	t  *testing.T
	s  *compatServer
	hb *heartbeats
}

func (g *compatGen) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

func (g *compatGen) register(name, ip string, mtu uint32, labels map[string]string) {
	g.t.Helper()
	g.hb.set(name, true)
	ctx, cancel := g.ctx()
	defer cancel()
	if _, err := sdnv1.NewNodeServiceClient(g.s.conn).Register(ctx, &sdnv1.RegisterNodeRequest{Name: name, UnderlayIp: ip, UnderlayMtu: mtu, Labels: labels}); err != nil {
		g.t.Fatalf("register %s: %v", name, err)
	}
}

// attach attaches CNI workloads concurrently (so that the leader may
// group them into Batch entries).
func (g *compatGen) attach(ws ...*sdnv1.Workload) {
	g.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(ws))
	for _, w := range ws {
		w.Origin = &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_CNI, ContainerId: cniContainer(w.Network, w.Name), Ifname: "eth0", Netns: "/var/run/netns/" + w.Name}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := g.ctx()
			defer cancel()
			if _, err := sdnv1.NewWorkloadServiceClient(g.s.conn).Attach(ctx, &sdnv1.AttachWorkloadRequest{Workload: w}); err != nil {
				errs <- fmt.Errorf("attach %s/%s: %v", w.Network, w.Name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		g.t.Fatal(err)
	}
}

func (g *compatGen) detach(req *sdnv1.DetachWorkloadRequest) {
	g.t.Helper()
	ctx, cancel := g.ctx()
	defer cancel()
	res, err := sdnv1.NewWorkloadServiceClient(g.s.conn).Detach(ctx, req)
	if err != nil || !res.GetRemoved() {
		g.t.Fatalf("detach %v: removed %v, %v", req, res.GetRemoved(), err)
	}
}

func (g *compatGen) nodes() map[string]*sdnv1.Node {
	g.t.Helper()
	ctx, cancel := g.ctx()
	defer cancel()
	res, err := sdnv1.NewConfigServiceClient(g.s.conn).List(ctx, &sdnv1.ListRequest{Kind: "nodes"})
	if err != nil {
		g.t.Fatal(err)
	}
	out := map[string]*sdnv1.Node{}
	for _, n := range res.GetNodes() {
		out[n.Name] = n
	}
	return out
}

// waitNode waits until cond holds for host's node (nil: not registered).
func (g *compatGen) waitNode(host, what string, cond func(*sdnv1.Node) bool) {
	g.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond(g.nodes()[host]) {
		if time.Now().After(deadline) {
			g.t.Fatalf("%s is not %s after 15s; sdnd's log:\n%s", host, what, g.s.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cniContainer is the container id the generator gives a CNI workload.
func cniContainer(network, name string) string { return "ctr-" + network + "-" + name }

func cniWorkload(network, name, node string, labels map[string]string) *sdnv1.Workload {
	return &sdnv1.Workload{Network: network, Name: name, Node: node, Labels: labels}
}

func (g *compatGen) build() {
	t, s := g.t, g.s
	hcl := func(name string) string { return "integration/testdata/compat/hcl/" + name }
	isDown := func(n *sdnv1.Node) bool { return n != nil && n.DownSinceUnixMs != 0 }
	isUp := func(n *sdnv1.Node) bool { return n != nil && n.DownSinceUnixMs == 0 }

	// Before the raft snapshot.
	s.ctl(t, "apply", "-f", "examples")
	s.ctl(t, "apply", "-f", hcl("settings.hcl"))
	g.register("host1", "198.18.0.11", 1500, map[string]string{"rack": "r1", "zone": "a"})
	g.register("host2", "198.18.0.12", 9000, map[string]string{"rack": "r1", "zone": "b"})
	g.register("host3", "198.18.0.13", 1500, map[string]string{"rack": "r2"})
	g.register("host4", "198.18.0.14", 1500, nil)
	g.register("host5", "198.18.0.15", 1500, map[string]string{"rack": "r3"})
	s.ctl(t, "apply", "-f", hcl("objects.hcl"))
	g.attach(
		cniWorkload("proj1", "api-0", "host1", map[string]string{"app": "api"}),
		cniWorkload("proj1", "api-1", "host2", map[string]string{"app": "api"}),
		cniWorkload("proj2", "idx-0", "host1", map[string]string{"app": "indexer"}),
		cniWorkload("proj2", "idx-1", "host4", map[string]string{"app": "indexer"}),
		cniWorkload("web", "fe-0", "host1", nil),
		cniWorkload("web", "fe-1", "host2", nil),
		cniWorkload("web", "fe-2", "host5", nil),
		cniWorkload("infra", "dns-0", "host3", map[string]string{"app": "dns"}),
	)
	g.detach(&sdnv1.DetachWorkloadRequest{Network: "web", Name: "fe-1"})
	s.ctl(t, "delete", "workload", "scratch/tmp1")
	s.ctl(t, "delete", "network", "scratch")
	s.ctl(t, "tls", "revoke", "--serial", "5eed", "--identity", "agent/host9", "--reason", "lost laptop")

	// The raft snapshot: a restore of the cluster's own backup, installed
	// through raft like any snapshot (sdnd has no knob for its
	// snapshot threshold, 8192 entries).
	backup := filepath.Join(t.TempDir(), "backup.snap")
	s.ctl(t, "snapshot", "save", backup)
	s.ctl(t, "snapshot", "restore", "--force", backup)

	// After it: what a state rebuilt from raft.db replays.
	pki := t.TempDir()
	s.ctl(t, "tls", "init", "--dir", pki, "--agents", "host6", "--clients", "")
	s.ctl(t, "tls", "revoke", "--reason", "host retired", filepath.Join(pki, "agent-host6.crt"))
	s.ctl(t, "node", "drain", "host2")
	s.ctl(t, "node", "drain", "host3")
	s.ctl(t, "node", "undrain", "host3")
	g.register("host1", "198.18.0.11", 1500, map[string]string{"rack": "r1", "zone": "a", "gpu": "true"})
	s.ctl(t, "apply", "-f", hcl("update.hcl"))
	g.attach(
		cniWorkload("proj1", "api-2", "host1", map[string]string{"app": "api"}),
		cniWorkload("batch", "cron-0", "host3", nil),
	)
	// History before here is compacted; the watch golden replays what is
	// after it.
	ctx, cancel := g.ctx()
	rev := s.status(t).GetRevision()
	if _, err := sdnv1.NewStatusServiceClient(s.conn).Compact(ctx, &sdnv1.CompactRequest{Revision: rev}); err != nil {
		t.Fatal(err)
	}
	cancel()
	g.attach(
		cniWorkload("proj2", "idx-2", "host1", nil),
		cniWorkload("proj2", "idx-3", "host1", nil),
		cniWorkload("web", "fe-3", "host3", nil),
		cniWorkload("web", "fe-4", "host3", nil),
		cniWorkload("batch", "cron-1", "host3", nil),
		cniWorkload("batch", "cron-2", "host1", nil),
	)
	// An address freed below host1's allocation cursor (idx-0's), and VNID 4
	// of scratch, tell a restored cursor from one reset.
	g.detach(&sdnv1.DetachWorkloadRequest{ContainerId: cniContainer("proj2", "idx-0"), Ifname: "eth0"})
	g.detach(&sdnv1.DetachWorkloadRequest{Network: "proj1", Name: "api-1"})
	s.ctl(t, "delete", "workload", "web/lb2")
	g.hb.set("host5", false)
	s.ctl(t, "node", "remove", "host5", "--force")

	// host4 goes silent: marked down, then released (node_release_after
	// is 1s): its CNI workload goes, batch/job1 is pending again.
	g.hb.set("host4", false)
	g.waitNode("host4", "marked down", isDown)
	g.waitNode("host4", "released", func(n *sdnv1.Node) bool { return n == nil })
	s.ctl(t, "apply", "-f", hcl("never.hcl"))
	// host2 goes silent and comes back; host3 goes silent for good.
	g.hb.set("host2", false)
	g.waitNode("host2", "marked down", isDown)
	g.hb.set("host2", true)
	g.waitNode("host2", "up again", isUp)
	g.hb.set("host3", false)
	g.waitNode("host3", "marked down", isDown)
	// Let in-flight liveness decisions settle.
	time.Sleep(time.Second)
}

// heartbeats keeps the hosts set alive: a Heartbeat every 100ms, as agents
// would (the server under generation marks a silent host down after 1s).
type heartbeats struct {
	mu     sync.Mutex
	alive  map[string]bool
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func startHeartbeats(s *compatServer) *heartbeats {
	ctx, cancel := context.WithCancel(context.Background())
	h := &heartbeats{alive: map[string]bool{}, cancel: cancel, done: make(chan struct{})}
	nodes := sdnv1.NewNodeServiceClient(s.conn)
	go func() {
		defer close(h.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			h.mu.Lock()
			var hosts []string
			for host, ok := range h.alive {
				if ok {
					hosts = append(hosts, host)
				}
			}
			h.mu.Unlock()
			for _, host := range hosts {
				cctx, ccancel := context.WithTimeout(ctx, time.Second)
				nodes.Heartbeat(cctx, &sdnv1.HeartbeatRequest{Node: host})
				ccancel()
			}
		}
	}()
	return h
}

func (h *heartbeats) set(host string, alive bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.alive[host] = alive
}

func (h *heartbeats) stop() {
	h.once.Do(func() {
		h.cancel()
		<-h.done
	})
}

// packCompat writes dir as a gzipped tarball, in name order, without
// owners or times, and returns the files' names.
func packCompat(t *testing.T, dir, tarball string) []string {
	t.Helper()
	f, err := os.Create(tarball)
	if err != nil {
		t.Fatal(err)
	}
	zw, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	var files []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), Mode: int64(info.Mode().Perm()), ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		switch {
		case d.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
			return tw.WriteHeader(h)
		case d.Type().IsRegular():
			h.Typeflag, h.Size = tar.TypeReg, info.Size()
			files = append(files, h.Name)
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			src, err := os.Open(p)
			if err != nil {
				return err
			}
			defer src.Close()
			_, err = io.Copy(tw, src)
			return err
		}
		return fmt.Errorf("%s is neither a file nor a directory", p)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []io.Closer{tw, zw, f} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// compatCommandNames names the raft command types (cluster/command), for
// the manifest.
var compatCommandNames = map[uint16]string{
	1: "ApplyConfig", 2: "Delete", 3: "RegisterNode", 4: "RemoveNode", 5: "AttachWorkload", 6: "DetachWorkload",
	7: "Compact", 8: "Batch", 9: "SetNodeLiveness", 10: "DrainNode", 11: "ReleaseNode", 12: "InitCluster", 13: "RevokeCertificate",
}

// describeRaft fills the manifest's raft fields from a copy of the data
// directory (opening raft.db writes to it).
func describeRaft(t *testing.T, dataDir string, m *compatManifest) {
	t.Helper()
	snaps, err := os.ReadDir(filepath.Join(dataDir, "raft", "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	var metas []raft.SnapshotMeta
	for _, e := range snaps {
		b, err := os.ReadFile(filepath.Join(dataDir, "raft", "snapshots", e.Name(), "meta.json"))
		if err != nil {
			t.Fatal(err)
		}
		var meta raft.SnapshotMeta
		if err := json.Unmarshal(b, &meta); err != nil {
			t.Fatal(err)
		}
		metas = append(metas, meta)
	}
	if len(metas) != 1 {
		t.Fatalf("want one raft snapshot, have %d", len(metas))
	}
	m.RaftSnapshot, m.SnapshotIndex = metas[0].ID, metas[0].Index

	copyPath := filepath.Join(t.TempDir(), "raft.db")
	b, err := os.ReadFile(filepath.Join(dataDir, "raft", "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copyPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	logs, err := raftboltdb.New(raftboltdb.Options{Path: copyPath})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	if m.LogFirstIndex, err = logs.FirstIndex(); err != nil {
		t.Fatal(err)
	}
	if m.LogLastIndex, err = logs.LastIndex(); err != nil {
		t.Fatal(err)
	}
	m.LogCommands, m.ReplayedCommands = map[string]int{}, map[string]int{}
	var count func(into map[string]int, data []byte)
	count = func(into map[string]int, data []byte) {
		if len(data) < 3 || data[0] != 1 {
			t.Fatalf("a raft command in an envelope this generator does not know: % x", data[:min(len(data), 8)])
		}
		typ := binary.BigEndian.Uint16(data[1:3]) &^ 0x8000
		name, ok := compatCommandNames[typ]
		if !ok {
			name = fmt.Sprintf("Type(%d)", typ)
		}
		into[name]++
		if name != "Batch" {
			return
		}
		for body := data[3:]; len(body) > 0; {
			num, wt, n := protowire.ConsumeTag(body)
			if n < 0 || num != 1 || wt != protowire.BytesType {
				t.Fatalf("a Batch this generator cannot read")
			}
			cmd, k := protowire.ConsumeBytes(body[n:])
			if k < 0 {
				t.Fatalf("a Batch this generator cannot read")
			}
			count(into, cmd)
			body = body[n+k:]
		}
	}
	for i := m.LogFirstIndex; i <= m.LogLastIndex; i++ {
		var l raft.Log
		err := logs.GetLog(i, &l)
		if errors.Is(err, raft.ErrLogNotFound) {
			// The restore's own index: raft installed it as a snapshot,
			// with no log entry.
			continue
		}
		if err != nil {
			t.Fatalf("raft log entry %d: %v", i, err)
		}
		if l.Type != raft.LogCommand {
			continue
		}
		count(m.LogCommands, l.Data)
		if i > m.SnapshotIndex {
			count(m.ReplayedCommands, l.Data)
		}
	}
	names := make([]string, 0, len(m.ReplayedCommands))
	for n := range m.ReplayedCommands {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("raft log %d..%d, snapshot %s at %d; after it: %s", m.LogFirstIndex, m.LogLastIndex, m.RaftSnapshot, m.SnapshotIndex, strings.Join(names, ", "))
}
