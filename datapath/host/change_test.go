package host

import (
	"testing"

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
}
