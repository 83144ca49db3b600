package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/integration/lab"
)

// needDatapath skips when what the datapath tests need is truly absent.
func needDatapath(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, OVS)")
	}
	if _, err := exec.LookPath("ovs-vswitchd"); err != nil {
		t.Skip("Open vSwitch is not installed (make deps installs it)")
	}
}

// datapathLab brings up a 2-host lab from examples/ (multitenant) with
// workloads of infra (admin), proj1 and proj2 on both hosts, attached by
// the real CNI plugin.
func datapathLab(t *testing.T) (*lab.Lab, []*lab.Workload) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, progress := upLab(ctx, t, "dp", 2)
	ws, err := l.AttachDefaults(ctx)
	if err != nil {
		t.Fatalf("attach: %v\n%s", err, progress)
	}
	return l, ws
}

// upLab brings up a lab of hosts hosts from examples/, named prefix and
// this process's id, in the test's temporary directory, and takes it down
// when the test ends (also when Up fails halfway: by name and dir, which
// finds whatever it made). It returns the lab and its progress log.
func upLab(ctx context.Context, t *testing.T, prefix string, hosts int) (*lab.Lab, fmt.Stringer) {
	t.Helper()
	name := fmt.Sprintf("%s%d", prefix, os.Getpid()%100000)
	progress := &strings.Builder{}
	dir := filepath.Join(t.TempDir(), "lab")
	t.Cleanup(func() {
		ol, err := lab.Open(name, dir, nil)
		if err == nil {
			err = ol.Down()
		}
		if err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	l, err := lab.Up(ctx, lab.Config{Name: name, Hosts: hosts, Dir: dir, Bin: binaries(t), Examples: "../examples", Logger: progress})
	if err != nil {
		t.Fatalf("lab up: %v\n%s", err, progress)
	}
	return l, progress
}

func find(t *testing.T, ws []*lab.Workload, host, network string) *lab.Workload {
	t.Helper()
	for _, w := range ws {
		if w.Host == host && w.Network == network {
			return w
		}
	}
	t.Fatalf("no workload of %s on %s", network, host)
	return nil
}

// probe runs sdnprobe inside a workload's namespace.
func probe(t *testing.T, l *lab.Lab, w *lab.Workload, args ...string) string {
	t.Helper()
	out, err := l.Exec(w.NS, append([]string{filepath.Join(binaries(t), "sdnprobe")}, args...)...)
	if err != nil {
		t.Fatalf("sdnprobe %v in %s: %v", args, w.ID(), err)
	}
	return strings.TrimSpace(out)
}

// delivered sends count UDP frames from `from` (with the given source MAC
// and IP, possibly forged) to `to`, and returns how many `to` received.
func delivered(t *testing.T, l *lab.Lab, from, to *lab.Workload, srcMAC, srcIP string, port int) int {
	t.Helper()
	token := fmt.Sprintf("tok%d", port)
	recv := exec.Command("ip", "netns", "exec", to.NS, filepath.Join(binaries(t), "sdnprobe"), "udp-count", "-port", strconv.Itoa(port), "-token", token, "-seconds", "2")
	var out strings.Builder
	recv.Stdout = &out
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	probe(t, l, from, "udp-send", "-src-mac", srcMAC, "-src-ip", srcIP, "-dst-ip", to.IP, "-port", strconv.Itoa(port), "-count", "5", "-token", token)
	if err := recv.Wait(); err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatalf("receiver said %q", out.String())
	}
	return n
}

// TestDatapath is the whole foundation path on real OVS: isolation in both
// modes on the local and the tunnel path, anti-spoofing, and agent and
// server restarts under traffic.
func TestDatapath(t *testing.T) {
	needDatapath(t)
	l, ws := datapathLab(t)
	networks, _, err := l.Networks()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("multitenant", func(t *testing.T) {
		got, want := l.Matrix(ws), lab.Expected("multitenant", ws, networks)
		if d := lab.Diff(got, want); len(d) > 0 {
			t.Fatalf("connectivity differs from multitenant isolation:\n%s\n%s", strings.Join(d, "\n"), got)
		}
	})

	t.Run("anti-spoofing", func(t *testing.T) {
		x := find(t, ws, "host1", "proj1")
		y, err := l.Attach("host1", "proj1", "spoofed", nil) // a live workload whose IP x forges
		if err != nil {
			t.Fatal(err)
		}
		local, err := l.Attach("host1", "proj1", "sink", nil)
		if err != nil {
			t.Fatal(err)
		}
		remote := find(t, ws, "host2", "proj1")
		if err := l.WaitRealized(context.Background(), time.Minute); err != nil {
			t.Fatal(err)
		}
		port := 20000
		for _, to := range []*lab.Workload{local, remote} {
			port++
			if n := delivered(t, l, x, to, x.MAC, x.IP, port); n == 0 {
				t.Fatalf("positive control: %s's own packets to %s: none delivered", x.ID(), to.ID())
			}
			port++
			if n := delivered(t, l, x, to, x.MAC, y.IP, port); n != 0 {
				t.Errorf("%s forging %s's IP %s: %d packets delivered to %s", x.ID(), y.ID(), y.IP, n, to.ID())
			}
			port++
			if n := delivered(t, l, x, to, y.MAC, x.IP, port); n != 0 {
				t.Errorf("%s forging %s's MAC %s: %d packets delivered to %s", x.ID(), y.ID(), y.MAC, n, to.ID())
			}
			port++
			if n := delivered(t, l, x, to, "0a:58:de:ad:be:ef", x.IP, port); n != 0 {
				t.Errorf("%s forging MAC 0a:58:de:ad:be:ef: %d packets delivered to %s", x.ID(), n, to.ID())
			}
		}
		// ARP requests are answered from the model, so nothing reaches
		// the target either way; the positive control is the answer the
		// sender gets, and a counter in the target's namespace checks
		// that no frame claiming to be y arrived there.
		if r := probe(t, l, x, "arp", "-target", local.IP, "-seconds", "1"); !strings.HasPrefix(r, "reply") {
			t.Fatalf("positive control: ARP from %s for %s: %s", x.ID(), local.IP, r)
		}
		arpAtTarget := exec.Command("ip", "netns", "exec", local.NS, filepath.Join(binaries(t), "sdnprobe"), "arp-count", "-src-ip", y.IP, "-seconds", "3")
		var arpOut strings.Builder
		arpAtTarget.Stdout = &arpOut
		if err := arpAtTarget.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		if r := probe(t, l, x, "arp", "-src-ip", y.IP, "-target", local.IP, "-seconds", "1"); r != "no reply" {
			t.Errorf("ARP with forged sender address %s: %s", y.IP, r)
		}
		if r := probe(t, l, x, "arp", "-src-mac", y.MAC, "-src-ip", y.IP, "-target", local.IP, "-seconds", "1"); r != "no reply" {
			t.Errorf("ARP posing as %s (MAC and address): %s", y.ID(), r)
		}
		if r := probe(t, l, x, "arp", "-src-mac", "0a:58:de:ad:be:ef", "-target", local.IP, "-seconds", "1"); r != "no reply" {
			t.Errorf("ARP with forged sender MAC: %s", r)
		}
		if err := arpAtTarget.Wait(); err != nil {
			t.Fatal(err)
		}
		if n := strings.TrimSpace(arpOut.String()); n != "0" {
			t.Errorf("%s received %s ARP frames claiming to come from %s", local.ID(), n, y.IP)
		}
	})

	t.Run("agent-restart-under-traffic", func(t *testing.T) {
		from, to := find(t, ws, "host1", "proj1"), find(t, ws, "host2", "proj1")
		mon, err := l.MonitorFlows(2)
		if err != nil {
			t.Fatal(err)
		}
		defer mon.Stop()
		const count = 1200 // 6 s at 5 ms
		recv := exec.Command("ip", "netns", "exec", to.NS, filepath.Join(binaries(t), "sdnprobe"), "udp-seq-recv", "-port", "21000", "-seconds", "9")
		var out strings.Builder
		recv.Stdout = &out
		if err := recv.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		send := exec.Command("ip", "netns", "exec", from.NS, filepath.Join(binaries(t), "sdnprobe"), "udp-seq-send", "-dst", to.IP, "-port", "21000", "-count", strconv.Itoa(count), "-interval", "5ms")
		if err := send.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond)
		if err := l.KillSDND(2); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		if err := l.StartSDND(context.Background(), 2); err != nil {
			t.Fatal(err)
		}
		if err := send.Wait(); err != nil {
			t.Fatal(err)
		}
		if err := recv.Wait(); err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`received (\d+) missing (\d+)`).FindStringSubmatch(out.String())
		if m == nil || m[1] != strconv.Itoa(count) || m[2] != "0" {
			t.Fatalf("stream across the tunnel while host2's agent was killed and restarted: %s (want all %d received)", out.String(), count)
		}
		if err := l.WaitRealized(context.Background(), time.Minute); err != nil {
			t.Fatal(err)
		}
		if del := mon.Events("event=DELETED"); len(del) > 0 {
			t.Fatalf("the restart deleted flows on host2:\n%s", strings.Join(del, "\n"))
		}
		t.Logf("%s; flow changes on host2 during the restart: %d", strings.TrimSpace(out.String()), len(mon.Changes()))
	})

	t.Run("converges-after-downtime-then-flat", func(t *testing.T) {
		// Host2's agent is down while the cluster switches to flat.
		if err := l.KillSDND(2); err != nil {
			t.Fatal(err)
		}
		flat := t.TempDir()
		src := filepath.Join(l.Dir, "hcl")
		entries, err := os.ReadDir(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			b = regexp.MustCompile(`isolation\s*=\s*"[a-z]+"`).ReplaceAll(b, []byte(`isolation = "flat"`))
			writeFile(t, flat, e.Name(), string(b))
		}
		if out, err := l.Sdnctl("apply", "-f", flat); err != nil || !strings.Contains(out, "isolation") {
			t.Fatalf("apply flat: %v\n%s", err, out)
		}
		if err := l.StartSDND(context.Background(), 2); err != nil {
			t.Fatal(err)
		}
		if err := l.WaitRealized(context.Background(), time.Minute); err != nil {
			t.Fatal(err)
		}
		got, want := l.Matrix(ws), lab.Expected("flat", ws, networks)
		if d := lab.Diff(got, want); len(d) > 0 {
			t.Fatalf("after the switch to flat:\n%s\n%s", strings.Join(d, "\n"), got)
		}
	})

	t.Run("server-down-agent-restart", func(t *testing.T) {
		before, err := l.OVS(2).DumpFlows(context.Background(), "br-int", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.KillSDND(1); err != nil { // the only server (and host1's agent)
			t.Fatal(err)
		}
		mon, err := l.MonitorFlows(2)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.KillSDND(2); err != nil {
			t.Fatal(err)
		}
		if err := l.StartSDND(context.Background(), 2); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second) // the agent realizes its persisted state at once; give it time to misbehave
		mon.Stop()
		after, err := l.OVS(2).DumpFlows(context.Background(), "br-int", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if ch := mon.Changes(); len(ch) > 0 || fmt.Sprint(before) != fmt.Sprint(after) {
			t.Fatalf("with no server, restarting host2's agent changed its flows:\n%s", strings.Join(ch, "\n"))
		}
		// Traffic still flows across the tunnel with the server down.
		a, b := find(t, ws, "host1", "proj1"), find(t, ws, "host2", "proj2")
		if !l.Ping(a, b.IP) {
			t.Fatalf("%s cannot reach %s while the server is down", a.ID(), b.ID())
		}
		if err := l.StartSDND(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		if err := l.WaitRealized(context.Background(), time.Minute); err != nil {
			t.Fatal(err)
		}
	})
}
