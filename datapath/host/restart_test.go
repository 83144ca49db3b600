package host

import (
	"bufio"
	"context"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/datapath/ovs"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// monitor collects `ovs-ofctl monitor BRIDGE watch:` events.
type monitor struct {
	mu   sync.Mutex
	seen []string
}

func startMonitor(t *testing.T, inst *ovs.Instance, bridge string) *monitor {
	t.Helper()
	m := &monitor{}
	cmd := exec.Command("ovs-ofctl", "-O", "OpenFlow15", "monitor", "unix:"+filepath.Join(inst.RunDir, bridge+".mgmt"), "watch:")
	cmd.Env = inst.Env()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout // initial flows come on stdout, updates on stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done; _ = cmd.Wait() })
	go func() {
		defer close(done)
		s := bufio.NewScanner(out)
		for s.Scan() {
			m.mu.Lock()
			m.seen = append(m.seen, s.Text())
			m.mu.Unlock()
		}
	}()
	m.waitFor(t, "event=INITIAL", 1)
	return m
}

func (m *monitor) events(substr string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ev []string
	for _, l := range m.seen {
		if strings.Contains(l, "event=") && strings.Contains(l, substr) {
			ev = append(ev, l)
		}
	}
	return ev
}

func (m *monitor) waitFor(t *testing.T, substr string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if len(m.events(substr)) >= n {
			return
		}
	}
	t.Fatalf("monitor saw %d %q events, want %d", len(m.events(substr)), substr, n)
}

// TestRestartKeepsTraffic restarts the agents' datapaths (a fresh OVS
// handle adopting the running daemons, a new Datapath of the next
// generation) under running traffic: no flow is touched (OVS sees no flow
// message), no port or kernel state changes, and a UDP sequence across the
// tunnel loses nothing.
func TestRestartKeepsTraffic(t *testing.T) {
	t.Parallel()
	l := newLab(t, 2)
	h1, h2 := l.hosts[0], l.hosts[1]
	a1 := l.addWorkload(h1, "a", "a1", "10.128.0.2")
	l.addWorkload(h1, "b", "b1", "10.128.0.3")
	a2 := l.addWorkload(h2, "a", "a2", "10.128.2.2")
	m := l.mirror(sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT)

	genFile := filepath.Join(t.TempDir(), "generation")
	for _, want := range []uint16{1, 2} {
		if g, err := NextGeneration(genFile); err != nil || g != want {
			t.Fatalf("NextGeneration = %d, %v; want %d", g, err, want)
		}
	}
	first := l.realize(m) // generation 1 (newLab)

	var mons []*monitor
	for _, h := range l.hosts {
		mons = append(mons, startMonitor(t, h.ovs, IntegrationBridge), startMonitor(t, h.ovs, UnderlayBridge))
	}
	startEcho(t, h1.nsPath)
	// Check the paths first (Realize made OVS learn the tunnel next hops,
	// so no warm-up is needed: TestFirstPacketToNewHost).
	gw1 := h1.subnet.Addr().Next()
	for _, c := range []struct {
		from string
		to   netip.Addr
	}{{a1.nsPath, a2.ip}, {a2.nsPath, gw1}} {
		if ok, err := udpReaches(c.from, c.to, time.Second); !ok {
			t.Fatalf("%s -> %s before the restart: %v", c.from, c.to, err)
		}
	}
	ctx, stop := context.WithCancel(testCtx(t))
	across, err := startStream(ctx, a1.nsPath, a2.ip, 2*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	toHost, err := startStream(ctx, a2.nsPath, gw1, 2*time.Millisecond) // a2 -> host 1's gateway
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)

	var restarted []Result
	restartStart := time.Now()
	for i, h := range l.hosts {
		inst, err := ovs.StartInstance(testCtx(t), ovs.InstanceConfig{RunDir: h.ovs.RunDir, NetNS: h.ns, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		h.dp = l.newDatapath(h, inst, 2)
		start := time.Now()
		r, err := h.dp.Apply(testCtx(t), m)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("host %d restarted with generation 2 in %v: %v", i+1, time.Since(start).Round(time.Millisecond), r)
		restarted = append(restarted, r)
	}
	restartEnd := time.Now()
	time.Sleep(300 * time.Millisecond)
	stop()
	<-across.done
	<-toHost.done

	for i, r := range restarted {
		n := first[i].Flows.Added
		if r.Flows != (ovs.Result{Unchanged: n}) || r.UnderlayFlows != (ovs.Result{Unchanged: 1}) ||
			len(r.PortsAdded)+len(r.PortsDeleted)+len(r.Changes) > 0 {
			t.Errorf("host %d after restart: %v; want all %d flows (and br-phy's one) untouched and nothing else changed", i+1, r, n)
		}
	}
	for k, mon := range mons {
		if ev := slices.Concat(mon.events("event=ADDED"), mon.events("event=MODIFIED"), mon.events("event=DELETED")); len(ev) > 0 {
			t.Errorf("monitor %d saw flows change during the restart:\n%s", k, strings.Join(ev, "\n"))
		}
	}
	for name, s := range map[string]*stream{"a1 -> a2 (across the tunnel)": across, "a2 -> host 1's gateway": toHost} {
		// Count what was sent while the agents restarted (and shortly
		// after); a loss outside that window is not the restart's doing
		// and is only logged.
		var during, outside []string
		for _, at := range s.lost {
			rel := at.Sub(restartStart).Round(time.Millisecond).String()
			if at.After(restartStart.Add(-20*time.Millisecond)) && at.Before(restartEnd.Add(100*time.Millisecond)) {
				during = append(during, rel)
			} else {
				outside = append(outside, rel)
			}
		}
		t.Logf("%s: %d sent, %d echoed; restart took %v", name, s.sent, s.received, restartEnd.Sub(restartStart).Round(time.Millisecond))
		if s.sent < 100 || len(during) > 0 {
			t.Errorf("%s: %d datagrams sent during the restart lost (sent at %v relative to its start); want none", name, len(during), during)
		}
		if len(outside) > 0 {
			t.Logf("%s: %d lost outside the restart window (sent at %v relative to its start)", name, len(outside), outside)
		}
	}
	for _, h := range l.hosts {
		flows, err := h.ovs.DumpFlows(testCtx(t), IntegrationBridge, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range flows {
			if ovs.CookieGeneration(f.Cookie) != 1 {
				t.Errorf("%s: flow rewritten by the restart (generation %d): %v", h.name, ovs.CookieGeneration(f.Cookie), f)
			}
		}
	}
	for i, r := range l.realize(m) {
		if r.Changed() {
			t.Errorf("host %d: Realize after the restart changed %v", i+1, r)
		}
	}
}
