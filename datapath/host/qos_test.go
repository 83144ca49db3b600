package host

import (
	"context"
	"encoding/json"

	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// iperfRate runs iperf3 for 3 s from one workload to another's server
// and returns the received rate in bit/s.
func iperfRate(t *testing.T, from, to *testWorkload) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := exec.CommandContext(ctx, "ip", "netns", "exec", filepath.Base(to.nsPath), "iperf3", "-s", "-1", "-B", to.ip.String(), "-p", "5201")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	var out []byte
	var err error
	for range 50 {
		time.Sleep(100 * time.Millisecond)
		out, err = exec.CommandContext(ctx, "ip", "netns", "exec", filepath.Base(from.nsPath), "iperf3", "-c", to.ip.String(), "-p", "5201", "-t", "3", "-J").Output()
		if err == nil || !strings.Contains(string(out), "refused") {
			break
		}
	}
	var r struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if jerr := json.Unmarshal(out, &r); jerr != nil || r.Error != "" || err != nil {
		t.Fatalf("iperf3 from %s to %s: %v %v %s", from.w.Name, to.w.Name, err, jerr, r.Error)
	}
	return r.End.SumReceived.BitsPerSecond
}

// TestBandwidth shapes a workload's egress and ingress on the userspace
// datapath and measures them with iperf3: each within 30% of 20 Mbit/s
// (bursts of half a second: TCP through a policer with a 100 ms burst got
// half the rate).
// Unset, the shaping and its QoS row go.
func TestBandwidth(t *testing.T) {
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Skip("needs iperf3 (make test installs it)")
	}
	l := newLab(t, 1)
	h := l.hosts[0]
	w1 := l.addWorkload(h, "a", "w1", "10.128.0.11")
	w2 := l.addWorkload(h, "a", "w2", "10.128.0.12")
	l.realize(l.mirror(sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT))
	free := iperfRate(t, w1, w2)
	t.Logf("no limit: %.1f Mbit/s", free/1e6)

	const limit = 20e6
	check := func(what string, got float64) {
		t.Logf("%s under a %.0f Mbit/s limit: %.1f Mbit/s", what, limit/1e6, got/1e6)
		if got < 0.7*limit || got > 1.3*limit {
			t.Errorf("%s: %.1f Mbit/s, want %.0f Mbit/s ± 30%%", what, got/1e6, limit/1e6)
		}
	}
	w1.w.Bandwidth = &sdnv1.Bandwidth{EgressRate: limit, EgressBurst: limit / 2}
	l.realize(l.mirror(sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT))
	check("w1's egress", iperfRate(t, w1, w2))

	w1.w.Bandwidth = nil
	w2.w.Bandwidth = &sdnv1.Bandwidth{IngressRate: limit, IngressBurst: limit / 2}
	l.realize(l.mirror(sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT))
	check("w2's ingress", iperfRate(t, w1, w2))
	if q := qosRows(t, h); len(q) != 1 {
		t.Errorf("QoS rows %v, want w2's only", q)
	}
	if r := l.realize(l.mirror(sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT)); len(r[0].Changes) != 0 {
		t.Errorf("a second Apply changed %v", r[0].Changes)
	}

	w2.w.Bandwidth = nil
	l.realize(l.mirror(sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT))
	if q := qosRows(t, h); len(q) != 0 {
		t.Errorf("QoS rows %v left after the limit went", q)
	}
	if m, err := h.dp.dumpMeters(testCtx(t)); err != nil || len(m) != 0 {
		t.Errorf("meters %v (%v) left after the limit went", m, err)
	}
	if got := iperfRate(t, w1, w2); got < 2*limit {
		t.Errorf("limits removed: still %.1f Mbit/s", got/1e6)
	}

	// A port deleted with its QoS row in place: the row goes too.
	w2.w.Bandwidth = &sdnv1.Bandwidth{IngressRate: limit}
	l.realize(l.mirror(sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT))
	l.wls = l.wls[:1]
	l.realize(l.mirror(sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT))
	if q := qosRows(t, h); len(q) != 0 {
		t.Errorf("QoS rows %v left after the port went", q)
	}
}

func qosRows(t *testing.T, h *testHost) []string {
	t.Helper()
	out, err := h.ovs.Vsctl(testCtx(t), "--bare", "--columns=_uuid,type,other_config", "list", "QoS")
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, r := range strings.Split(strings.TrimSpace(out), "\n\n") {
		if r != "" {
			rows = append(rows, strings.ReplaceAll(r, "\n", " "))
		}
	}
	return rows
}
