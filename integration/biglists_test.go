package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/node/agent"
)

// bigObjects is how many networks, and how many workloads, the big-list
// test declares: far past gRPC's default 4 MiB message (65,003 labelled
// networks made a 7.5 MB list, issue 11).
const bigObjects = 100_000

// TestListsOverFourMiB is what issue 11's tester broke: with 65,003
// labelled networks `sdnctl get networks` failed with gRPC's "received
// message larger than max (7517600 vs. 4194304)", and an apply of some
// 20,000 labelled networks failed the same way. Against a real sdnd
// --dev: 100,000 networks with three labels each in one apply
// (docs/design.md, "Message sizes and paging": one apply carries up to 16
// MiB), then every one of them listed by `get networks -o json`, --stale
// too, and the table; then 100,000 static workloads declared in HCL on two
// hosts, whose agents take the apply's watch event (some 10 MB each),
// listed whole, stale, and by host.
func TestListsOverFourMiB(t *testing.T) {
	d := startDev(t)
	dir := t.TempDir()
	began := time.Now()

	// The cluster block makes room for 50,000 workloads on each of two
	// hosts (a /16 each).
	d.mustSdnctl(t, "apply", "-f", writeFile(t, dir, "cluster.hcl", "cluster {\n  cidr = \"10.0.0.0/12\"\n  host_prefix = 16\n}\n"))
	// One apply of 100,000 networks, the most one apply declares, in files
	// of 25,000 (a file holds 8 MiB and 1,000,000 tokens at most).
	nets, size := writeChunked(t, dir, "networks", func(b *strings.Builder, i int) {
		fmt.Fprintf(b, "network %q {\n  labels = { env = \"prod\", team = \"team-%d\", tier = \"backend\" }\n}\n", bigNetwork(i), i%50)
	})
	out := d.mustSdnctl(t, "--timeout", "5m", "apply", "-f", nets)
	if want := fmt.Sprintf("%d created", bigObjects); !strings.Contains(out, want) {
		t.Fatalf("apply of %d networks: no %q in its output's end:\n%s", bigObjects, want, tail(out, 3))
	}
	t.Logf("%d networks applied (%.1f MB of HCL) after %s", bigObjects, float64(size)/1e6, time.Since(began).Round(time.Millisecond))

	for _, stale := range []bool{false, true} {
		args := []string{"get", "networks", "-o", "json"}
		if stale {
			args = append(args, "--stale")
		}
		var got []*struct {
			Name   string            `json:"name"`
			Labels map[string]string `json:"labels"`
		}
		if err := json.Unmarshal([]byte(d.mustSdnctl(t, args...)), &got); err != nil {
			t.Fatalf("sdnctl %s: %v", strings.Join(args, " "), err)
		}
		if len(got) != bigObjects {
			t.Fatalf("sdnctl %s: %d networks, want %d", strings.Join(args, " "), len(got), bigObjects)
		}
		for i, n := range got { // sorted by name, as ever
			if n.Name != bigNetwork(i) || n.Labels["team"] != fmt.Sprintf("team-%d", i%50) || len(n.Labels) != 3 {
				t.Fatalf("sdnctl %s: network %d is %+v, want %s with its 3 labels", strings.Join(args, " "), i, n, bigNetwork(i))
			}
		}
	}
	if rows := strings.Count(d.mustSdnctl(t, "get", "networks"), "\n"); rows != bigObjects+1 {
		t.Fatalf("get networks: %d lines, want a header and %d rows", rows, bigObjects)
	}
	t.Logf("networks listed after %s", time.Since(began).Round(time.Millisecond))

	bigWorkloads(t, d, dir)
	t.Logf("done after %s; sdnd's peak resident memory: %s", time.Since(began).Round(time.Millisecond), peakRSS(d.cmd.Process.Pid))
}

// peakRSS is a process's peak resident memory, as Linux reports it.
func peakRSS(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func bigNetwork(i int) string { return fmt.Sprintf("net-%06d", i) }

// bigWorkloads starts the agents of two hosts (in this process, realizing
// nothing), declares bigObjects static workloads on them (in 100 of the
// networks) in one apply, waits until both hosts realized it (each takes
// a watch event of some 10 MB: its half in full, the other as deletes),
// and lists them.
func bigWorkloads(t *testing.T, d *devServer, dir string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for i, h := range []string{"h1", "h2"} {
		a, err := agent.New(d.conn(t), &recorder{}, agent.Config{Node: h, UnderlayIP: fmt.Sprintf("198.18.0.%d", i+1), UnderlayMTU: 1500,
			StatePath: filepath.Join(t.TempDir(), "state.pb"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Register(ctx); err != nil {
			t.Fatalf("register %s: %v", h, err)
		}
		go a.Run(ctx)
	}
	file, _ := writeChunked(t, dir, "workloads", func(b *strings.Builder, i int) {
		fmt.Fprintf(b, "workload \"w-%06d\" {\n  network = %q\n  node = \"h%d\"\n  labels = { app = \"web\" }\n}\n", i, bigNetwork(i%100), i%2+1)
	})
	out := d.mustSdnctl(t, "--timeout", "5m", "apply", "-f", file, "--wait", "--wait-timeout", "5m")
	if want := fmt.Sprintf("%d created", bigObjects); !strings.Contains(out, want) || !strings.Contains(out, "realized on all 2 hosts") {
		t.Fatalf("apply --wait of %d workloads: no %q and \"realized on all 2 hosts\" in its output's end:\n%s", bigObjects, want, tail(out, 3))
	}
	for _, args := range [][]string{{}, {"--stale"}, {"--node", "h2"}} {
		args = append([]string{"get", "workloads", "-o", "json"}, args...)
		var got []*struct {
			Name, Node, IP string
		}
		if err := json.Unmarshal([]byte(d.mustSdnctl(t, args...)), &got); err != nil {
			t.Fatalf("sdnctl %s: %v", strings.Join(args, " "), err)
		}
		want := bigObjects
		if slices.Contains(args, "--node") {
			want /= 2
		}
		ips := map[string]bool{}
		for _, w := range got {
			if w.IP == "" || ips[w.IP] || (want < bigObjects && w.Node != "h2") {
				t.Fatalf("sdnctl %s: workload %+v (no address, an address twice, or on the wrong host)", strings.Join(args, " "), w)
			}
			ips[w.IP] = true
		}
		if len(got) != want {
			t.Fatalf("sdnctl %s: %d workloads, want %d", strings.Join(args, " "), len(got), want)
		}
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// writeChunked writes bigObjects HCL blocks (block writes the i-th) into
// files of 25,000 in a new directory dir/name, and returns the directory
// and the bytes written.
func writeChunked(t *testing.T, dir, name string, block func(b *strings.Builder, i int)) (string, int) {
	t.Helper()
	sub := filepath.Join(dir, name)
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	const perFile = 25000
	size := 0
	for start := 0; start < bigObjects; start += perFile {
		var b strings.Builder
		for i := start; i < min(start+perFile, bigObjects); i++ {
			block(&b, i)
		}
		writeFile(t, sub, fmt.Sprintf("%s-%d.hcl", name, start/perFile), b.String())
		size += b.Len()
	}
	return sub, size
}
