package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Crash consistency and disaster recovery with real `sdnd --server`
// processes on loopback (no root needed): all servers killed with SIGKILL
// in the middle of a write stream, and a snapshot saved from one cluster
// and restored into a new one.

// trio is three server processes started from one --peers list.
type trio struct {
	ps    []*serverProc
	conns []*grpc.ClientConn
}

func startTrio(t *testing.T) *trio {
	t.Helper()
	tr := &trio{}
	var peers []string
	for k := 1; k <= 3; k++ {
		p := newServerProc(t, fmt.Sprintf("s%d", k))
		tr.ps = append(tr.ps, p)
		peers = append(peers, p.id+"="+p.addr)
	}
	for _, p := range tr.ps {
		p.args = []string{"--peers", strings.Join(peers, ",")}
		p.start(t)
		c, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		tr.conns = append(tr.conns, c)
	}
	tr.waitHealthy(t)
	return tr
}

func (tr *trio) waitHealthy(t *testing.T) {
	t.Helper()
	waitFor(t, 30*time.Second, "three healthy servers", func() bool {
		m, ok := members(t, tr.ps[0].addr, false)
		return ok && m.healthy(3)
	}, tr.ps...)
}

// follower returns a server that does not lead (calls to it are
// forwarded).
func (tr *trio) follower(t *testing.T) *serverProc {
	t.Helper()
	m, ok := members(t, tr.ps[0].addr, false)
	if !ok {
		t.Fatal("no members")
	}
	for _, p := range tr.ps {
		if p.id != m.LeaderID {
			return p
		}
	}
	t.Fatal("every server leads?")
	return nil
}

// killAll sends SIGKILL to every server at once and waits for them.
func (tr *trio) killAll() {
	var wg sync.WaitGroup
	for _, p := range tr.ps {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop(syscall.SIGKILL) }()
	}
	wg.Wait()
}

func (tr *trio) restart(t *testing.T) {
	t.Helper()
	for _, p := range tr.ps {
		p.start(t)
	}
	tr.waitHealthy(t)
}

// outcome of one write as its client saw it.
type outcome int

const (
	acked   outcome = iota // the server said it is done
	failed                 // the server refused it: nothing changed
	unknown                // no answer (timeout, connection lost): either done whole or not at all
)

func outcomeOf(err error) outcome {
	switch status.Code(err) {
	case codes.OK:
		return acked
	case codes.InvalidArgument, codes.FailedPrecondition, codes.NotFound, codes.ResourceExhausted, codes.AlreadyExists:
		return failed
	}
	return unknown
}

// op is one write and what its client saw.
type op struct {
	kind    string // attach, detach, apply
	network string
	name    string // the workload
	labels  map[string]string
	ip      string // an acknowledged attach's or apply's address
	outcome outcome
	err     error
}

// writer streams writes through every server and records each outcome.
type writer struct {
	conns []*grpc.ClientConn
	hosts []string
	mu    sync.Mutex
	ops   []*op
}

func (w *writer) record(o *op) {
	w.mu.Lock()
	w.ops = append(w.ops, o)
	w.mu.Unlock()
}

// run writes until ctx ends: attaches, detaches of its own acknowledged
// attaches, and applies of a network with labels together with a workload
// in it (one atomic command).
func (w *writer) run(ctx context.Context, c int) {
	rng := rand.New(rand.NewPCG(uint64(c), 99))
	var mine []*op // acknowledged attaches not detached
	for i := 0; ctx.Err() == nil; i++ {
		cc := w.conns[(c+i)%len(w.conns)]
		cctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		host := w.hosts[rng.IntN(len(w.hosts))]
		var o *op
		switch {
		case i%5 == 4 && len(mine) > 0:
			j := rng.IntN(len(mine))
			a := mine[j]
			mine = append(mine[:j], mine[j+1:]...)
			o = &op{kind: "detach", network: a.network, name: a.name, ip: a.ip}
			_, o.err = sdnv1.NewWorkloadServiceClient(cc).Detach(cctx, &sdnv1.DetachWorkloadRequest{Network: a.network, Name: a.name})
		case i%5 == 2:
			o = &op{kind: "apply", network: fmt.Sprintf("n%d-%d", c, i), name: "svc", labels: map[string]string{"client": fmt.Sprint(c), "op": fmt.Sprint(i)}}
			var res *sdnv1.ApplyResponse
			res, o.err = sdnv1.NewConfigServiceClient(cc).Apply(cctx, &sdnv1.ApplyRequest{
				Networks:  []*sdnv1.Network{{Name: o.network, Labels: o.labels, Origin: &sdnv1.Origin{File: "stream"}}},
				Workloads: []*sdnv1.Workload{{Name: o.name, Network: o.network, Node: host, Labels: o.labels, Origin: &sdnv1.Origin{File: "stream"}}}})
			_ = res
		default:
			o = &op{kind: "attach", network: "base", name: fmt.Sprintf("w%d-%d", c, i)}
			var res *sdnv1.AttachWorkloadResponse
			res, o.err = sdnv1.NewWorkloadServiceClient(cc).Attach(cctx, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{
				Name: o.name, Network: o.network, Node: host,
				Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_CNI, ContainerId: "cid-" + o.name, Ifname: "eth0"}}})
			if o.err == nil {
				o.ip = res.Workload.Ip
				mine = append(mine, o)
			}
		}
		cancel()
		o.outcome = outcomeOf(o.err)
		w.record(o)
		if o.outcome == unknown {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// check holds the dump against every recorded outcome.
func (w *writer) check(t *testing.T, d *dump) {
	t.Helper()
	nets, wls := map[string]*sdnv1.Network{}, map[string]*sdnv1.Workload{}
	for _, n := range d.networks {
		nets[n.Name] = n
	}
	for _, wl := range d.workloads {
		wls[wl.Network+"/"+wl.Name] = wl
	}
	// A detach that was acknowledged or may have happened decides about
	// its attach.
	detach := map[string]outcome{}
	for _, o := range w.ops {
		if o.kind == "detach" {
			detach[o.network+"/"+o.name] = o.outcome
		}
	}
	count := map[string][3]int{}
	for _, o := range w.ops {
		c := count[o.kind]
		c[o.outcome]++
		count[o.kind] = c
		key := o.network + "/" + o.name
		wl := wls[key]
		placed := wl != nil && wl.Ip != "" && wl.Pending == ""
		switch o.kind {
		case "attach":
			det, detached := detach[key]
			switch {
			case o.outcome == failed && wl != nil:
				t.Errorf("refused attach %s is in the state: %v", key, wl)
			case o.outcome == acked && detached && det == acked && wl != nil:
				t.Errorf("attach %s and its detach were acknowledged, but it is in the state: %v", key, wl)
			case o.outcome == acked && (!detached || det == failed) && (!placed || wl.Ip != o.ip):
				t.Errorf("acknowledged attach %s (IP %s) is %v in the state", key, o.ip, wl)
			case o.outcome == acked && detached && det == unknown && wl != nil && wl.Ip != o.ip:
				t.Errorf("attach %s was acknowledged with IP %s; now it holds %s", key, o.ip, wl.Ip)
			case o.outcome == unknown && wl != nil && !placed:
				t.Errorf("attach %s of unknown outcome is half there: %v", key, wl)
			}
		case "apply":
			n := nets[o.network]
			whole := n != nil && fmt.Sprint(n.Labels) == fmt.Sprint(o.labels) && placed && fmt.Sprint(wl.Labels) == fmt.Sprint(o.labels)
			switch {
			case o.outcome == acked && !whole:
				t.Errorf("acknowledged apply of network %s with its workload is not whole: network %v, workload %v", o.network, n, wl)
			case o.outcome != acked && (n != nil || wl != nil) && !whole:
				t.Errorf("apply of network %s (%s) is half there: network %v, workload %v", o.network, []string{"", "refused", "unknown"}[o.outcome], n, wl)
			case o.outcome == failed && (n != nil || wl != nil):
				t.Errorf("refused apply of network %s is in the state: %v %v", o.network, n, wl)
			}
		}
	}
	checkNoDuplicates(t, d)
	t.Logf("outcomes (acknowledged/refused/unknown): attach %v, detach %v, apply %v", count["attach"], count["detach"], count["apply"])
	for _, k := range []string{"attach", "detach", "apply"} {
		if count[k][acked] == 0 {
			t.Errorf("no %s was acknowledged; the test proves nothing", k)
		}
	}
}

// checkNoDuplicates fails on an address, subnet or VNID held twice.
func checkNoDuplicates(t *testing.T, d *dump) {
	t.Helper()
	seen := map[string]string{}
	claim := func(what, v, who string) {
		if v == "" {
			return
		}
		if other, dup := seen[what+" "+v]; dup {
			t.Errorf("%s %s is held by %s and %s", what, v, other, who)
		}
		seen[what+" "+v] = who
	}
	for _, n := range d.networks {
		if !n.Admin {
			claim("VNID", fmt.Sprint(n.Vnid), "network "+n.Name)
		}
	}
	for _, n := range d.nodes {
		claim("subnet", n.Subnet, "host "+n.Name)
	}
	for _, wl := range d.workloads {
		if wl.Pending == "" {
			claim("IP", wl.Ip, "workload "+wl.Network+"/"+wl.Name)
		}
	}
}

func registerHosts(t *testing.T, cc *grpc.ClientConn, n int) []string {
	t.Helper()
	var hosts []string
	for j := 0; j < n; j++ {
		name := fmt.Sprintf("host%d", j)
		if _, err := sdnv1.NewNodeServiceClient(cc).Register(context.Background(), &sdnv1.RegisterNodeRequest{Name: name, UnderlayIp: fmt.Sprintf("198.18.0.%d", j+1), UnderlayMtu: 1500}); err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, name)
	}
	if _, err := sdnv1.NewConfigServiceClient(cc).Apply(context.Background(), &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "base"}}}); err != nil {
		t.Fatal(err)
	}
	return hosts
}

// TestKillAllServersMidWrite: six clients write through all three servers
// (attaches, detaches, applies of a labelled network with a workload in
// it), recording each outcome; all three servers get SIGKILL at once in the
// middle of it and are restarted. Every acknowledged write is there, every
// write of unknown outcome is there whole or not at all, every refused one
// is absent; all servers hold identical tables with no address, subnet or
// VNID twice; and allocation goes on without handing out a held address.
func TestKillAllServersMidWrite(t *testing.T) {
	start := time.Now()
	tr := startTrio(t)
	w := &writer{conns: tr.conns, hosts: registerHosts(t, tr.conns[0], 4)}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for c := 0; c < 6; c++ {
		wg.Add(1)
		go func() { defer wg.Done(); w.run(ctx, c) }()
	}
	time.Sleep(2500 * time.Millisecond)
	tr.killAll()
	killed := time.Now()
	time.Sleep(200 * time.Millisecond) // the writes in flight fail
	stop()
	wg.Wait()
	t.Logf("%d writes, SIGKILL to all three servers %s after the start", len(w.ops), killed.Sub(start).Round(time.Millisecond))

	tr.restart(t)
	t.Logf("restarted and a leader elected in %s", time.Since(killed).Round(time.Millisecond))
	cctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dumps := sameDumps(t, cctx, tr.conns)
	w.check(t, dumps[0])

	// Allocation continues after the crash without handing out a held
	// address: a few more attaches, then the tables again.
	w.ops = nil
	ctx2, stop2 := context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer stop2()
	w.run(ctx2, 7)
	dumps = sameDumps(t, cctx, tr.conns)
	for _, o := range w.ops {
		if o.outcome != acked {
			t.Errorf("%s %s/%s after the restart: %v", o.kind, o.network, o.name, o.err)
		}
	}
	w.check(t, dumps[0])
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// TestSnapshotRestoreOnNewCluster saves a snapshot of a running cluster
// with sdnctl (through a follower), inspects it, and restores it into a new
// cluster of three (through a follower too): damaged files are refused
// there with nothing changed, the restored tables equal the saved ones on
// every server, both clusters allocate the same next addresses, a second
// restore needs --force, and the restored state survives SIGKILL of all
// three servers.
func TestSnapshotRestoreOnNewCluster(t *testing.T) {
	start := time.Now()
	src := startTrio(t)
	if out, errs, code := sdnctlAt(t, src.ps[0].addr, "apply", "-f", "../examples"); code != 0 {
		t.Fatalf("apply examples: %d %s %s", code, out, errs)
	}
	w := &writer{conns: src.conns, hosts: registerHosts(t, src.conns[0], 3)}
	wctx, wstop := context.WithTimeout(context.Background(), time.Second)
	w.run(wctx, 1)
	wstop()
	file := filepath.Join(t.TempDir(), "backup.snap")
	out, errs, code := sdnctlAt(t, src.follower(t).addr, "snapshot", "save", file)
	if code != 0 || !strings.HasPrefix(out, "saved "+file+": revision ") || !strings.Contains(out, "sha256 ") {
		t.Fatalf("snapshot save: %d %q %q", code, out, errs)
	}
	t.Logf("%s", strings.TrimSpace(out))
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".*")); len(left) != 0 {
		t.Errorf("save left temporary files: %v", left)
	}
	if out, errs, code := sdnctlAt(t, src.ps[0].addr, "snapshot", "inspect", file); code != 0 || !strings.Contains(out, "(verified)") {
		t.Fatalf("snapshot inspect: %d %s %s", code, out, errs)
	}
	cctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	saved := sameDumps(t, cctx, src.conns)[0]

	dst := startTrio(t)
	via := dst.follower(t).addr
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("damaged files are refused", func(t *testing.T) {
		dir := t.TempDir()
		flipped := append([]byte(nil), good...)
		flipped[len(flipped)*2/3] ^= 0x10
		for _, c := range []struct {
			name string
			data []byte
			want string
		}{
			{"flipped.snap", flipped, "checksum mismatch"},
			{"truncated.snap", good[:len(good)-4096], "truncated"},
			{"other.snap", []byte("network \"a\" {}\n"), "not an sdn snapshot"},
		} {
			p := filepath.Join(dir, c.name)
			os.WriteFile(p, c.data, 0o600)
			_, errs, code := sdnctlAt(t, via, "snapshot", "restore", p)
			if code != 1 || !strings.Contains(errs, "nothing was changed") || !strings.Contains(errs, c.want) {
				t.Errorf("restore %s: exit %d: %s", c.name, code, errs)
			}
		}
		for _, cc := range dst.conns {
			d, err := readDump(cctx, cc)
			if err != nil || d.revision != 0 || len(d.networks)+len(d.nodes)+len(d.workloads) != 0 {
				t.Fatalf("the new cluster changed after refused restores: %v %+v", err, d)
			}
		}
	})

	out, errs, code = sdnctlAt(t, via, "snapshot", "restore", file)
	if code != 0 || !strings.HasPrefix(out, "restored "+file) || !strings.Contains(errs, "checksum verified") {
		t.Fatalf("snapshot restore: %d %q %q", code, out, errs)
	}
	t.Logf("%s", strings.TrimSpace(out))
	restored := sameDumps(t, cctx, dst.conns)
	if restored[0].revision <= saved.revision {
		t.Errorf("restored revision %d is not past the saved %d", restored[0].revision, saved.revision)
	}
	objects := func(d *dump) string { _, rest, _ := strings.Cut(d.text(), "\n"); return rest }
	if a, b := objects(saved), objects(restored[0]); a != b {
		t.Fatalf("the restored tables differ from the saved ones:\n%s", firstDiff(a, b))
	}

	// Both clusters continue with the same allocations.
	next := func(tr *trio) []string {
		var ips []string
		for i := 0; i < 5; i++ {
			res, err := sdnv1.NewWorkloadServiceClient(tr.conns[i%3]).Attach(cctx, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{
				Name: fmt.Sprintf("after%d", i), Network: "base", Node: w.hosts[i%len(w.hosts)]}})
			if err != nil {
				t.Fatal(err)
			}
			ips = append(ips, res.Workload.Ip)
		}
		res, err := sdnv1.NewNodeServiceClient(tr.conns[1]).Register(cctx, &sdnv1.RegisterNodeRequest{Name: "late", UnderlayIp: "198.18.9.9", UnderlayMtu: 1500})
		if err != nil {
			t.Fatal(err)
		}
		return append(ips, res.Node.Subnet)
	}
	if a, b := next(src), next(dst); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("next allocations differ: saved cluster %v, restored %v", a, b)
	}
	checkNoDuplicates(t, sameDumps(t, cctx, dst.conns)[0])

	// A second restore over the state needs --force.
	if _, errs, code := sdnctlAt(t, via, "snapshot", "restore", file); code != 1 || !strings.Contains(errs, "--force") {
		t.Fatalf("restore over state without --force: %d %s", code, errs)
	}

	// The restored state is durable: SIGKILL all three, restart.
	before := sameDumps(t, cctx, dst.conns)[0].text()
	dst.killAll()
	dst.restart(t)
	if after := sameDumps(t, cctx, dst.conns)[0].text(); after != before {
		t.Fatalf("after SIGKILL and restart:\n%s", firstDiff(before, after))
	}
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}
