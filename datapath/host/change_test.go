package host

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestApplyChange: a revision that changes only what flows are compiled
// from (a policy, a label) is realized by the flows alone, and enforced
// at once; one that changes the host's set-up (a new workload) goes
// through the full Apply.
func TestApplyChange(t *testing.T) {
	t.Parallel()
	l := newLab(t, 2)
	h1, h2 := l.hosts[0], l.hosts[1]
	l.addWorkload(h1, "a", "c1", "10.128.0.2")
	srv := l.addWorkload(h2, "a", "srv", "10.128.2.2")
	srv.w.Labels = labels("app", "server")
	closed := &sdnv1.Policy{Name: "srv", Network: "a", Workloads: &sdnv1.LabelSelector{MatchLabels: labels("app", "server")},
		Priority: 1000, Isolate: []string{"ingress"}}
	flat := sdnv1.IsolationMode_ISOLATION_MODE_FLAT

	change := func(m *model.Desired) []Result {
		t.Helper()
		var rs []Result
		for _, h := range l.hosts {
			r, err := h.dp.ApplyChange(testCtx(t), m)
			if err != nil {
				t.Fatalf("%s: %v", h.name, err)
			}
			rs = append(rs, r)
		}
		return rs
	}
	// No full Apply yet: the first change realize is a full one.
	for i, r := range change(l.mirror(flat)) {
		if r.FlowsOnly {
			t.Errorf("host %d: the first realize took the flows-only path: %v", i+1, r)
		}
	}
	l.checkReach(t, []reach{{"c1", "srv", true}})

	for i, r := range change(l.withPolicies(l.mirror(flat), closed)) {
		if !r.FlowsOnly {
			t.Errorf("host %d: a policy change realized fully: %v", i+1, r)
		}
	}
	l.checkReach(t, []reach{{"c1", "srv", false}})
	srv.w.Labels = labels("app", "other")
	for i, r := range change(l.withPolicies(l.mirror(flat), closed)) {
		if !r.FlowsOnly {
			t.Errorf("host %d: a label change realized fully: %v", i+1, r)
		}
	}
	l.checkReach(t, []reach{{"c1", "srv", true}})

	l.addWorkload(h1, "a", "c2", "10.128.0.3")
	rs := change(l.withPolicies(l.mirror(flat), closed))
	if rs[0].FlowsOnly || len(rs[0].PortsAdded) != 1 {
		t.Errorf("host1 with a new workload: %v; want a full realize that plugs its port", rs[0])
	}
	l.checkReach(t, []reach{{"c2", "srv", true}, {"c1", "c2", true}})

	// CNI ADD's order: the port is plugged before the workload arrives,
	// and the change realize takes it without the full Apply.
	c3 := l.addWorkload(h1, "a", "c3", "10.128.0.4")
	c3if := HostIfname(c3.w)
	if _, err := h1.dp.PlugWorkload(testCtx(t), c3if); err != nil {
		t.Fatal(err)
	}
	rs = change(l.withPolicies(l.mirror(flat), closed))
	if !rs[0].FlowsOnly || len(rs[0].PortsAdded) != 1 || rs[0].PortsAdded[0] != c3if || rs[0].Workloads != 3 {
		t.Errorf("host1 with a plugged new workload: %v; want the flows-only path adding port %s, 3 local workloads", rs[0], c3if)
	}
	t.Logf("host1, a plugged new workload: %v", rs[0])
	if slices.ContainsFunc(rs[0].Took, func(s string) bool { return strings.HasPrefix(s, "hostnet") }) {
		t.Errorf("host1 with a plugged new workload of a network that masquerades: the kernel's set-up was applied again (%v); SNAT covers the host's block", rs[0].Took)
	}
	l.checkReach(t, []reach{{"c3", "srv", true}, {"c1", "c3", true}})

	// DEL's order: the port is unplugged, then the workload leaves.
	if err := h1.dp.UnplugWorkload(testCtx(t), c3if); err != nil {
		t.Fatal(err)
	}
	l.wls = slices.DeleteFunc(l.wls, func(w *testWorkload) bool { return w == c3 })
	rs = change(l.withPolicies(l.mirror(flat), closed))
	if !rs[0].FlowsOnly || rs[0].Workloads != 2 || rs[0].Flows.Deleted == 0 {
		t.Errorf("host1 after a workload left: %v; want the flows-only path deleting its flows, 2 local workloads", rs[0])
	}
	l.checkReach(t, []reach{{"c1", "c2", true}})

	// A plugged new workload with a bandwidth limit takes the full Apply,
	// which sets its meter and QoS (the flows-only path sets neither).
	c4 := l.addWorkload(h1, "a", "c4", "10.128.0.5")
	c4.w.Bandwidth = &sdnv1.Bandwidth{EgressRate: 20e6, EgressBurst: 10e6, IngressRate: 20e6, IngressBurst: 10e6}
	if _, err := h1.dp.PlugWorkload(testCtx(t), HostIfname(c4.w)); err != nil {
		t.Fatal(err)
	}
	rs = change(l.withPolicies(l.mirror(flat), closed))
	if rs[0].FlowsOnly {
		t.Errorf("host1 with a plugged new workload with a bandwidth limit: %v; want the full realize", rs[0])
	}
	if m, err := h1.dp.dumpMeters(testCtx(t)); err != nil || len(m) != 1 {
		t.Errorf("meters %v (%v); want c4's", m, err)
	}
	if q := qosRows(t, h1); len(q) != 1 {
		t.Errorf("QoS rows %v; want c4's", q)
	}
	l.checkReach(t, []reach{{"c4", "srv", true}})

	// A full Apply afterwards finds nothing left to do on host1's ports.
	if r := l.realize(l.withPolicies(l.mirror(flat), closed))[0]; len(r.PortsAdded)+len(r.PortsDeleted) != 0 || r.Flows.Changed() {
		t.Errorf("full Apply after the change realizes: %v; want nothing to change", r)
	}
}

// TestPlugDoesNotWaitForRealize: PlugWorkload (CNI ADD's port) does not
// wait for a realize in progress, and the change realize that follows takes
// the port it plugged.
func TestPlugDoesNotWaitForRealize(t *testing.T) {
	t.Parallel()
	l := newLab(t, 1)
	h := l.hosts[0]
	l.addWorkload(h, "a", "c1", "10.128.0.2")
	flat := sdnv1.IsolationMode_ISOLATION_MODE_FLAT
	l.realize(l.mirror(flat))
	c2 := l.addWorkload(h, "a", "c2", "10.128.0.3")

	h.dp.mu.Lock() // a realize in progress
	done := make(chan error, 1)
	go func() {
		_, err := h.dp.PlugWorkload(testCtx(t), HostIfname(c2.w))
		done <- err
	}()
	select {
	case err := <-done:
		h.dp.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		h.dp.mu.Unlock()
		<-done
		t.Fatal("PlugWorkload waited for the realize in progress")
	}
	r, err := h.dp.ApplyChange(testCtx(t), l.mirror(flat))
	if err != nil {
		t.Fatal(err)
	}
	if !r.FlowsOnly || len(r.PortsAdded) != 1 {
		t.Errorf("the change realize after the plug: %v; want the flows-only path adding the plugged port", r)
	}
	l.checkReach(t, []reach{{"c1", "c2", true}})
}

// TestRealizeWaitsForPlugInProgress: CNI ADD plugs a port while the
// workload is attached (BeginPlug, then PlugWorkload beside the attach). A
// realize of a desired state that names the workload, change or full,
// waits for the plug and takes the port, instead of leaving it out (which
// would make the ADD wait for a second realize) or adding it again.
func TestRealizeWaitsForPlugInProgress(t *testing.T) {
	t.Parallel()
	l := newLab(t, 1)
	h := l.hosts[0]
	l.addWorkload(h, "a", "c1", "10.128.0.2")
	flat := sdnv1.IsolationMode_ISOLATION_MODE_FLAT
	l.realize(l.mirror(flat))

	for _, path := range []struct {
		name, ip string
		apply    func() (Result, error)
		flowOnly bool
	}{
		{"c2", "10.128.0.3", func() (Result, error) { return h.dp.ApplyChange(testCtx(t), l.mirror(flat)) }, true},
		{"c3", "10.128.0.4", func() (Result, error) { return h.dp.Apply(testCtx(t), l.mirror(flat)) }, false},
	} {
		c := l.addWorkload(h, "a", path.name, path.ip)
		ifname := HostIfname(c.w)
		h.dp.BeginPlug(ifname)
		done := make(chan Result, 1)
		go func() {
			r, err := path.apply()
			if err != nil {
				t.Error(err)
			}
			done <- r
		}()
		select {
		case r := <-done:
			t.Fatalf("%s: the realize returned before the port was plugged: %v", path.name, r)
		case <-time.After(200 * time.Millisecond):
		}
		if _, err := h.dp.PlugWorkload(testCtx(t), ifname); err != nil {
			t.Fatal(err)
		}
		var r Result
		select {
		case r = <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: the realize did not return after the plug", path.name)
		}
		if r.FlowsOnly != path.flowOnly || !slices.Contains(r.PortsAdded, ifname) && path.flowOnly {
			t.Errorf("%s: %v; want flows only %v, taking the plugged port %s", path.name, r, path.flowOnly, ifname)
		}
		if !path.flowOnly && slices.Contains(r.PortsAdded, ifname) {
			t.Errorf("%s: the full realize added the port again: %v", path.name, r)
		}
		l.checkReach(t, []reach{{"c1", path.name, true}})
	}
}
