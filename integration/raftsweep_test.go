package integration

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// sweepCases is how many single-byte changes TestRaftDBByteSweep makes;
// sweepSeed fixes them.
const (
	sweepCases = 200
	sweepSeed  = 11
)

// sweepCaptures is what a server serves, compared after each change:
// the store as sdnctl shows it, without what only the leader's memory
// holds (compat_test.go).
var sweepCaptures = []compatCapture{
	{"cluster", []string{"get", "cluster", "-o", "json"}, nil},
	{"networks", []string{"get", "networks", "-o", "json"}, nil},
	{"nodes", []string{"get", "nodes", "-o", "json"}, compatMemoryOnly},
	{"workloads", []string{"get", "workloads", "-o", "json"}, nil},
	{"status", []string{"status", "-o", "json"}, compatMemoryOnly},
}

// TestRaftDBByteSweep changes one byte of raft.db at a time (to a random
// other value, at a random offset: half of them anywhere in the file,
// half inside the stored log entries), with state.db kept in half the
// cases and deleted in the other half (then the whole log is replayed),
// starts a real sdnd on it and classifies what it did: stopped with the
// message about raft.db (detected), or served exactly what it served
// before the change (harmless: free space, a stale copy of a page, a
// field raft does not use). Anything else fails the test: a server that
// serves another state (silently wrong), or stops without saying what is
// wrong (a panic, a bare error), or neither stops nor serves. Cases run
// sweepWorkers at a time: most of a case is sdnd waiting for its raft
// election.
func TestRaftDBByteSweep(t *testing.T) {
	bin := binaries(t)
	pristine := sweepFixture(t)
	want := sweepServe(bin, pristine, nil)
	if want.state == nil {
		t.Fatalf("the undamaged fixture does not serve: %s\n%s", want.why, want.log)
	}
	orig, err := os.ReadFile(raftDBOf(pristine))
	if err != nil {
		t.Fatal(err)
	}
	cases := sweepPlan(orig)
	results := make([]sweepOutcome, len(cases))
	var wg sync.WaitGroup
	next := make(chan int)
	for range sweepWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = cases[i].run(bin, pristine, orig, want.state)
			}
		}()
	}
	for i := range cases {
		next <- i
	}
	close(next)
	wg.Wait()

	tally := map[string]int{}
	for i, got := range results {
		tally[got.kind]++
		what := cases[i].String()
		switch {
		case got.kind == "wrong" || got.kind == "unclear":
			t.Errorf("%s: %s: %s", what, got.kind, got.why)
		case got.kind != "harmless" && testing.Verbose():
			t.Logf("%s: %s", what, firstLine(got.log, "raft log "))
		}
	}
	kinds := make([]string, 0, len(tally))
	for k := range tally {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var line []string
	for _, k := range kinds {
		line = append(line, fmt.Sprintf("%s %d", k, tally[k]))
	}
	t.Logf("%d single-byte changes of raft.db (seed %d): %s", len(cases), sweepSeed, strings.Join(line, ", "))
}

// sweepCase is one change: byte off of raft.db XORed with x, state.db
// deleted or kept.
type sweepCase struct {
	n, off, size int
	x            byte
	dropState    bool
}

func (c sweepCase) String() string {
	return fmt.Sprintf("case %d: byte %d (of %d) ^ %#02x, state.db %s", c.n, c.off, c.size, c.x, map[bool]string{true: "deleted", false: "kept"}[c.dropState])
}

// sweepPlan draws the cases from sweepSeed.
func sweepPlan(orig []byte) []sweepCase {
	records := logRecordRanges(orig)
	rng := rand.New(rand.NewPCG(sweepSeed, 2026))
	cases := make([]sweepCase, sweepCases)
	for i := range cases {
		off := rng.IntN(len(orig))
		if i%2 == 1 {
			r := records[rng.IntN(len(records))]
			off = r[0] + rng.IntN(r[1]-r[0])
		}
		cases[i] = sweepCase{n: i, off: off, size: len(orig), x: byte(1 + rng.IntN(255)), dropState: i%4 >= 2}
	}
	return cases
}

// run makes the case's copy of the pristine data directory, starts sdnd
// on it and classifies what it does.
func (c sweepCase) run(bin, pristine string, orig []byte, want map[string]string) sweepOutcome {
	dir, err := os.MkdirTemp("", "sdn-sweep-")
	if err != nil {
		return sweepOutcome{kind: "unclear", why: err.Error()}
	}
	defer os.RemoveAll(dir)
	if err := os.CopyFS(dir, os.DirFS(pristine)); err != nil {
		return sweepOutcome{kind: "unclear", why: err.Error()}
	}
	if c.dropState {
		if err := os.Remove(filepath.Join(dir, "state.db")); err != nil {
			return sweepOutcome{kind: "unclear", why: err.Error()}
		}
	}
	b := slices.Clone(orig)
	b[c.off] ^= c.x
	if err := os.WriteFile(raftDBOf(dir), b, 0o600); err != nil {
		return sweepOutcome{kind: "unclear", why: err.Error()}
	}
	return sweepServe(bin, dir, want)
}

// sweepFixture is a stopped `sdnd --dev` data directory whose raft log
// holds several kinds of entries: configuration and no-op entries of
// raft, the cluster id, HCL applies (settings, 303 networks in four
// entries, a workload), a host's registration (which places the
// workload), a delete.
func sweepFixture(t *testing.T) string {
	t.Helper()
	d := startDev(t)
	d.mustSdnctl(t, "apply", "-f", "../examples")
	nodes, ctx := plainNodes(t, d.addr)
	if _, err := nodes.Register(ctx, &sdnv1.RegisterNodeRequest{Name: "host1", UnderlayIp: "198.18.0.1", UnderlayMtu: 1500}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for k := range 3 {
		var b strings.Builder
		for i := range 100 {
			fmt.Fprintf(&b, "network \"m%d\" {\n  labels = { batch = \"b%d\" }\n}\n", k*100+i, k)
		}
		d.mustSdnctl(t, "apply", "-f", writeFile(t, dir, fmt.Sprintf("m%d.hcl", k), b.String()))
	}
	d.mustSdnctl(t, "delete", "network", "m5")
	// The first leader gives the cluster its id within a second of its
	// election; a fixture stopped before has none, and every case's server
	// would then draw another: wait for it.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if regexp.MustCompile(`"clusterId": "[^"]`).MatchString(d.mustSdnctl(t, "status", "-o", "json")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the fixture's server gave the cluster no id within 30s")
		}
	}
	d.stop()
	return d.dataDir
}

// logRecordRanges are the byte ranges of raft.db that hold stored log
// entries (raft-boltdb's msgpack maps, from their first key "AppendedAt"
// to their last, "Type", and its value), live or in free pages.
func logRecordRanges(b []byte) [][2]int {
	var out [][2]int
	start := []byte("\x86\xaaAppendedAt")
	for at := bytes.Index(b, start); at >= 0; {
		end := bytes.Index(b[at:], []byte("\xa4Type"))
		if end < 0 {
			break
		}
		out = append(out, [2]int{at, at + end + 6})
		next := bytes.Index(b[at+1:], start)
		if next < 0 {
			break
		}
		at += 1 + next
	}
	return out
}

// sweepOutcome is what sdnd did on one damaged data directory.
type sweepOutcome struct {
	kind  string            // harmless, wrong, unclear, or the kind of damage its message names
	why   string            // for wrong and unclear
	state map[string]string // what it served, when it did
	log   string
}

// damageKinds name what a stop's message says is wrong, for the tally.
var damageKinds = []struct{ kind, says string }{
	{"detected: entry checksum", "its checksum does not match"},
	{"detected: command checksum", "checksum mismatch"},
	{"detected: file cut short", "the file is cut short"},
	{"detected: bbolt could not read", "bbolt failed reading it"},
	{"detected: bbolt could not open", "bbolt cannot open it"},
	{"detected: entry at another index", "says it is entry"},
	{"detected: term", "term"},
	{"detected: type and data disagree", "carries"},
	{"detected: entry unreadable", "does not read back"},
	{"detected: configuration", "configuration"},
	{"detected: not canonical", "not the encoding any server writes"},
	{"detected: envelope", "command envelope"},
	{"detected: other", ""},
}

// sweepWorkers is how many cases run at once.
const sweepWorkers = 4

// sweepServe starts sdnd on dir and classifies what it does against want
// (nil: just capture what it serves). It runs beside other cases, so it
// reports every failure in its outcome rather than through a testing.T.
func sweepServe(bin, dir string, want map[string]string) sweepOutcome {
	p, err := startSweepServer(bin, dir)
	if err != nil {
		return sweepOutcome{kind: "unclear", why: err.Error()}
	}
	defer p.stop()
	o := p.await(20 * time.Second)
	out := sweepOutcome{log: o.log}
	switch {
	case o.exited:
		return classifyStop(out, o, dir)
	case !o.healthy:
		out.kind, out.why = "unclear", "neither stopped nor served within 20s: "+tailString(o.log, 2)
		return out
	}
	state := map[string]string{}
	for _, c := range sweepCaptures {
		cmd := exec.Command(filepath.Join(bin, "sdnctl"), append([]string{"--server", p.addr, "--timeout", "10s"}, c.args...)...)
		cmd.Dir = ".."
		raw, err := cmd.Output()
		if err != nil {
			if p.waitExit(2 * time.Second) {
				return classifyStop(out, startOutcome{exited: true, code: p.cmd.ProcessState.ExitCode(), log: p.log.String()}, dir)
			}
			out.kind, out.why = "unclear", fmt.Sprintf("serves, but sdnctl %s failed: %v", strings.Join(c.args, " "), err)
			return out
		}
		j, err := canonicalJSON(raw, c.drop)
		if err != nil {
			out.kind, out.why = "unclear", err.Error()
			return out
		}
		state[c.file] = j
	}
	out.state = state
	if want == nil {
		return out
	}
	for _, c := range sweepCaptures {
		if state[c.file] != want[c.file] {
			out.kind, out.why = "wrong", fmt.Sprintf("serves another %s:\n%s", c.file, compatDiff(want[c.file], state[c.file]))
			return out
		}
	}
	out.kind = "harmless"
	return out
}

// sweepServer is an `sdnd --dev` of one case.
type sweepServer struct {
	addr   string
	cmd    *exec.Cmd
	log    *syncBuffer
	exited chan struct{}
}

func startSweepServer(bin, dir string) (*sweepServer, error) {
	addr, err := loopbackPort()
	if err != nil {
		return nil, err
	}
	raftAddr, err := loopbackPort()
	if err != nil {
		return nil, err
	}
	p := &sweepServer{addr: addr, log: newSyncBuffer(), exited: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(bin, "sdnd"), "--dev", "--data-dir", dir, "--listen", addr, "--raft-addr", raftAddr,
		"--node-name", "dev", "--node-down-after", "1h")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	return p, nil
}

// await waits until the server exits or serves (healthy), up to d.
func (p *sweepServer) await(d time.Duration) startOutcome {
	c, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return startOutcome{log: err.Error()}
	}
	defer c.Close()
	h := healthpb.NewHealthClient(c)
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		select {
		case <-p.exited:
			return startOutcome{exited: true, code: p.cmd.ProcessState.ExitCode(), log: p.log.String()}
		case <-time.After(50 * time.Millisecond):
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		res, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && res.Status == healthpb.HealthCheckResponse_SERVING {
			return startOutcome{healthy: true, log: p.log.String()}
		}
	}
	return startOutcome{log: p.log.String()}
}

// classifyStop classifies an sdnd that exited: with the message about its
// raft.db (the kind of damage it names), or unclear.
func classifyStop(out sweepOutcome, o startOutcome, dir string) sweepOutcome {
	log := o.log
	switch {
	case o.code == 0:
		out.kind, out.why = "unclear", "exited 0: "+tailString(log, 2)
	case strings.Contains(log, "panic:") || strings.Contains(log, "goroutine "):
		out.kind, out.why = "unclear", "panicked: "+firstLine(log, "panic:")
	case !strings.Contains(log, "raft log "+raftDBOf(dir)) || !strings.Contains(log, "this server stopped rather than serve a state that may be wrong"):
		out.kind, out.why = "unclear", "stopped without naming raft.db and what to do: "+tailString(log, 2)
	default:
		msg := firstLine(log, "raft log "+raftDBOf(dir))
		for _, k := range damageKinds {
			if strings.Contains(msg, k.says) {
				out.kind = k.kind
				break
			}
		}
	}
	return out
}

// firstLine is the first line of log containing s.
func firstLine(log, s string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// waitExit waits up to d for the server to exit.
func (p *sweepServer) waitExit(d time.Duration) bool {
	select {
	case <-p.exited:
		return true
	case <-time.After(d):
		return false
	}
}

// stop stops the server (SIGKILL after 10 s) and waits until it is gone.
func (p *sweepServer) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	if !p.waitExit(10 * time.Second) {
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// loopbackPort is a free port on 127.0.0.1.
func loopbackPort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
