package ovs

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testFlows returns n flows with distinct matches (so ovs-ofctl monitor
// output, which omits priorities, tells them apart), written the way a
// compiler might, not in OVS's canonical form.
func testFlows(n int) []Flow {
	var flows []Flow
	for k := range n {
		flows = append(flows, Flow{
			Table:    uint8(k % 3),
			Priority: uint16(100 + k),
			Match:    fmt.Sprintf("in_port=%d,ip,nw_src=10.128.%d.%d", 1+k%4, k/250, k%250+1),
			Actions:  fmt.Sprintf("load:0x%x->NXM_NX_REG0[],resubmit(,%d)", k, 10+k%3),
			Cookie:   uint64(k % 5), // category
		})
	}
	return flows
}

func mustReconcile(t *testing.T, inst *Instance, bridge string, gen uint16, flows []Flow, want Result) {
	t.Helper()
	got, err := inst.Reconcile(testCtx(t), bridge, gen, flows)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("Reconcile(gen %d) = %v; want %v", gen, got, want)
	}
}

func TestReconcile(t *testing.T) {
	t.Parallel()
	inst := startTestInstance(t, "")
	ctx := testCtx(t)
	const br = "br-rec"
	mustBridge(t, inst, br)
	// Someone else's flows: never touched, not even one with our tag's
	// neighbour values.
	foreign := []string{"cookie=0x1234,table=0,priority=5,actions=drop", "cookie=0x5d4f000100000000,table=1,priority=6,actions=drop"}
	for _, f := range foreign {
		if _, err := inst.Ofctl(ctx, "-O", "OpenFlow15", "add-flow", br, f); err != nil {
			t.Fatal(err)
		}
	}
	flows := testFlows(50)
	mustReconcile(t, inst, br, 1, flows, Result{Added: 50})
	mustReconcile(t, inst, br, 1, flows, Result{Unchanged: 50})

	flows[7].Actions = "drop"
	mustReconcile(t, inst, br, 1, flows, Result{Modified: 1, Unchanged: 49})
	flows[8].Cookie = 99 // a new category replaces the flow too
	mustReconcile(t, inst, br, 1, flows, Result{Modified: 1, Unchanged: 49})
	removed := flows[9]
	flows = append(flows[:9:9], flows[10:]...)
	mustReconcile(t, inst, br, 1, flows, Result{Deleted: 1, Unchanged: 49})
	mustReconcile(t, inst, br, 1, flows, Result{Unchanged: 49})
	// Duplicates of the same flow are one flow.
	mustReconcile(t, inst, br, 1, append(flows, flows[0]), Result{Unchanged: 49})

	got, err := inst.DumpFlows(ctx, br, TagCookie(), TagMask)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range got {
		if f.Match == "ip,in_port="+strings.TrimPrefix(strings.Split(removed.Match, ",")[0], "in_port=")+",nw_src=10.128.0.10" {
			t.Errorf("removed flow still present: %v", f)
		}
		if f.Priority == 108 && CookieCategory(f.Cookie) != 99 {
			t.Errorf("flow 8 cookie = %#x, want category 99", f.Cookie)
		}
	}
	all, err := inst.DumpFlows(ctx, br, 0, 0)
	if err != nil || len(all) != 49+len(foreign) {
		t.Fatalf("bridge holds %d flows (%v), want 49 ours + %d foreign", len(all), err, len(foreign))
	}
	// Removing everything of ours still leaves the foreign flows.
	mustReconcile(t, inst, br, 1, nil, Result{Deleted: 49})
	if all, _ := inst.DumpFlows(ctx, br, 0, 0); len(all) != len(foreign) {
		t.Errorf("after deleting ours: %v, want the %d foreign flows", all, len(foreign))
	}

	// Same OpenFlow flow, conflicting actions: refused before touching OVS.
	a := Flow{Table: 1, Priority: 5, Match: "ip,nw_dst=10.0.0.1", Actions: "drop"}
	b := Flow{Table: 1, Priority: 5, Match: "nw_dst=10.0.0.1,dl_type=0x0800", Actions: "output:1"}
	if _, err := inst.Reconcile(ctx, br, 1, []Flow{a, b}); err == nil || !strings.Contains(err.Error(), "same OpenFlow flow") {
		t.Errorf("conflicting duplicates: err = %v", err)
	}
}

// monitor runs `ovs-ofctl monitor BRIDGE watch:` and collects its events.
type monitor struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	seen []string
	done chan struct{}
}

func startMonitor(t *testing.T, inst *Instance, bridge string, initial int) *monitor {
	t.Helper()
	m := &monitor{done: make(chan struct{})}
	m.cmd = exec.Command("ovs-ofctl", "-O", "OpenFlow15", "monitor", inst.mgmt(bridge), "watch:")
	m.cmd.Env = inst.Env()
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	m.cmd.Stderr = m.cmd.Stdout // initial flows come on stdout, updates on stderr
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.cmd.Process.Kill(); <-m.done; _ = m.cmd.Wait() })
	go func() {
		defer close(m.done)
		s := bufio.NewScanner(out)
		for s.Scan() {
			m.mu.Lock()
			m.seen = append(m.seen, s.Text())
			m.mu.Unlock()
		}
	}()
	m.waitFor(t, "event=INITIAL", initial)
	return m
}

// waitFor waits until at least n events contain substr.
func (m *monitor) waitFor(t *testing.T, substr string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if len(m.events(substr)) >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("monitor saw %d %q events, want %d:\n%s", len(m.events(substr)), substr, n, strings.Join(m.events(""), "\n"))
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

// An agent restart brings a new generation. Flows that stay desired are
// left untouched (OVS sees no message at all); only flows no longer desired
// go, and new ones carry the new generation.
func TestReconcileRestartKeepsFlows(t *testing.T) {
	t.Parallel()
	inst := startTestInstance(t, "")
	ctx := testCtx(t)
	const br = "br-gen"
	mustBridge(t, inst, br)
	flows := testFlows(40)
	mustReconcile(t, inst, br, 1, flows, Result{Added: 40})

	m := startMonitor(t, inst, br, 40)
	mustReconcile(t, inst, br, 2, flows, Result{Unchanged: 40})
	got, err := inst.DumpFlows(ctx, br, TagCookie(), TagMask)
	if err != nil || len(got) != 40 {
		t.Fatalf("DumpFlows = %d flows, %v", len(got), err)
	}
	for _, f := range got {
		if CookieGeneration(f.Cookie) != 1 {
			t.Errorf("flow %v was rewritten (generation %d)", f, CookieGeneration(f.Cookie))
		}
	}
	mustReconcile(t, inst, br, 2, flows, Result{Unchanged: 40})

	// Generation 3 drops one flow and adds one: one delete, only of that one.
	gone := flows[0]
	next := append(append([]Flow(nil), flows[1:]...), Flow{Table: 5, Priority: 1, Match: "ip,nw_dst=10.129.0.1", Actions: "drop"})
	mustReconcile(t, inst, br, 3, next, Result{Added: 1, Unchanged: 39, Deleted: 1})
	m.waitFor(t, "cookie=0x5d4e0003", 1)
	if ev := slices.Concat(m.events("event=ADDED"), m.events("event=MODIFIED"), m.events("event=DELETED")); len(ev) != 2 {
		t.Fatalf("restarts sent OVS %d flow changes, want 2 (one add, one delete):\n%s", len(ev), strings.Join(ev, "\n"))
	}
	del := m.events("event=DELETED")
	if len(del) != 1 || !strings.Contains(del[0], "nw_src=10.128.0.1 ") && !strings.HasSuffix(del[0], "nw_src=10.128.0.1") {
		t.Fatalf("gen 3 deleted %q; want only the flow matching %s", del, gone.Match)
	}
}

// A bundle with one bad flow applies nothing and names the flow.
func TestReconcileAtomic(t *testing.T) {
	t.Parallel()
	inst := startTestInstance(t, "")
	ctx := testCtx(t)
	const br = "br-atom"
	mustBridge(t, inst, br)
	flows := testFlows(20)
	mustReconcile(t, inst, br, 1, flows, Result{Added: 20})
	before, err := inst.DumpFlows(ctx, br, 0, 0)
	if err != nil {
		t.Fatal(err)
	}

	changed := append([]Flow(nil), flows[5:]...) // deletes 5
	changed[0].Actions = "drop"                  // modifies 1
	bad := Flow{Table: 3, Priority: 7, Match: "ip", Actions: "group:4242"}
	changed = append(changed, Flow{Table: 3, Priority: 8, Match: "ip", Actions: "drop"}, bad)

	_, err = inst.Reconcile(ctx, br, 2, changed)
	var be *BundleError
	if !errors.As(err, &be) || be.Flow == nil || *be.Flow != bad || be.Code != "OFPBAC_BAD_OUT_GROUP" {
		t.Fatalf("Reconcile with a flow to a missing group: err = %v; want a BundleError naming %v", err, bad)
	}
	if !strings.Contains(err.Error(), "group:4242") || !strings.Contains(err.Error(), "nothing was applied") {
		t.Errorf("error does not say what failed: %v", err)
	}
	assertFlows(t, inst, br, before)

	// Refused by ovs-ofctl before anything reaches the switch.
	for _, tc := range []struct {
		flow Flow
		want string
	}{
		{Flow{Table: 3, Priority: 9, Match: "ip", Actions: "bogus:1"}, "unknown action bogus"},
		{Flow{Table: 3, Priority: 9, Match: "ip,tp_dst=80", Actions: "drop"}, `OVS drops field "tp_dst"`},
		{Flow{Table: 3, Priority: 9, Match: "ip,tcp_flags=+syn", Actions: "drop"}, `OVS drops field "tcp_flags"`},
		{Flow{Table: 3, Priority: 9, Match: "table=4,ip", Actions: "drop"}, "put table, priority and cookie in the Flow fields"},
	} {
		_, err := inst.Reconcile(ctx, br, 2, append(changed[:len(changed)-1:len(changed)-1], tc.flow))
		var fe *FlowError
		if !errors.As(err, &fe) || fe.Flow != tc.flow || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Reconcile with %v: err = %v; want a FlowError naming it, saying %q", tc.flow, err, tc.want)
		}
	}
	assertFlows(t, inst, br, before)
}

func assertFlows(t *testing.T, inst *Instance, br string, want []Flow) {
	t.Helper()
	got, err := inst.DumpFlows(testCtx(t), br, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("flows changed:\n got %v\nwant %v", got, want)
	}
}

// BenchmarkReconcile measures a reconcile of 10,000 flows: the first (all
// added, canonicalized through ovs-ofctl), a no-op (dump and diff only),
// and a restart (new generation, same flows: dump and diff, nothing sent).
func BenchmarkReconcile(b *testing.B) {
	inst := startTestInstance(b, "")
	inst.log = slog.New(slog.DiscardHandler)
	ctx := testCtx(b)
	mustBridge(b, inst, "br-bench")
	flows := testFlows(10000)
	var gen uint16
	reconcile := func(b *testing.B, want func(Result) bool) {
		b.Helper()
		res, err := inst.Reconcile(ctx, "br-bench", gen, flows)
		if err != nil || !want(res) {
			b.Fatalf("Reconcile = %v, %v", res, err)
		}
	}
	b.Run("initial", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			inst.canon = nil
			gen++
			if _, err := inst.Reconcile(ctx, "br-bench", gen, nil); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			reconcile(b, func(r Result) bool { return r.Added == len(flows) })
		}
	})
	b.Run("noop", func(b *testing.B) {
		for b.Loop() {
			reconcile(b, func(r Result) bool { return !r.Changed() })
		}
	})
	b.Run("restart", func(b *testing.B) {
		for b.Loop() {
			gen++
			reconcile(b, func(r Result) bool { return r.Unchanged == len(flows) })
		}
	})
}
