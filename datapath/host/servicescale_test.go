package host

import (
	"net/netip"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/datapath/flows"
	"github.com/sdn-dev/sdn/datapath/ovs"
)

// scaleOVS is one OVS instance with a netdev bridge, in its own namespace.
func scaleOVS(t *testing.T) (*ovs.Instance, string) {
	t.Helper()
	needOVS(t)
	l := &lab{t: t, id: randHex(3)}
	ns, _ := l.newNS("scale")
	inst, err := ovs.StartInstance(testCtx(t), ovs.InstanceConfig{RunDir: t.TempDir(), NetNS: ns, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := inst.Stop(); err != nil {
			t.Error(err)
		}
	})
	const br = "br-scale"
	if err := inst.EnsureBridge(testCtx(t), ovs.BridgeConfig{Name: br, DatapathType: "netdev"}); err != nil {
		t.Fatal(err)
	}
	return inst, br
}

// applyHost compiles h and applies it as the host datapath does.
func applyHost(t *testing.T, inst *ovs.Instance, br string, h *flows.Host) (ovs.Result, time.Duration) {
	return applyHostTrusted(t, inst, br, h, false)
}

// applyHostTrusted is applyHost, with the groups diffed against what the
// last reconcile left when trusted (a change realize's way).
func applyHostTrusted(t *testing.T, inst *ovs.Instance, br string, h *flows.Host, trusted bool) (ovs.Result, time.Duration) {
	t.Helper()
	c := flows.CompileAll(h)
	start := time.Now()
	res, err := inst.Apply(testCtx(t), br, ovs.Desired{Generation: 1, Flows: c.Flows, Groups: c.Groups, OwnedGroups: flows.GroupRange, Trusted: trusted})
	if err != nil {
		t.Fatal(err)
	}
	return res, time.Since(start)
}

// A service of 1,500 endpoints (more than one OpenFlow message holds) goes
// through the reconciler as sub-groups; one endpoint leaving rewrites its
// sub-group and the top group's weights, and no flow.
func TestServiceManyEndpoints(t *testing.T) {
	inst, br := scaleOVS(t)
	h := flows.ServiceScale(1, 1500)
	res, d := applyHost(t, inst, br, h)
	if res.GroupsAdded < 4 {
		t.Fatalf("1,500 endpoints: %v; want at least three sub-groups and the top group", res)
	}
	t.Logf("first apply: %v in %v", res, d)
	groups, err := inst.DumpGroups(testCtx(t), br)
	if err != nil || len(groups) != res.GroupsAdded {
		t.Fatalf("dump: %d groups, %v", len(groups), err)
	}
	h.Services[0].Endpoints = h.Services[0].Endpoints[1:]
	res, d = applyHost(t, inst, br, h)
	if res.Added+res.Modified+res.Deleted != 0 || res.GroupsModified != 2 || res.GroupsAdded+res.GroupsDeleted != 0 {
		t.Errorf("one endpoint of 1,500 left: %v; want its sub-group and the top group modified, no flow", res)
	}
	t.Logf("one endpoint leaves: %v in %v", res, d)
}

// 1,000 services of 10 endpoints: one endpoint's change is one group.
func TestServiceEndpointChangeAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("scale")
	}
	inst, br := scaleOVS(t)
	h := flows.ServiceScale(1000, 10)
	res, d := applyHost(t, inst, br, h)
	t.Logf("1,000 services × 10 endpoints, first apply: %v in %v", res, d)
	h.Services[500].Endpoints[3].IP = netip.MustParseAddr("10.129.9.9")
	res, d = applyHost(t, inst, br, h)
	if res.Added+res.Modified+res.Deleted != 0 || res.GroupsModified != 1 || res.GroupsAdded+res.GroupsDeleted != 0 {
		t.Errorf("one endpoint changed: %v; want one group modified and no flow", res)
	}
	t.Logf("one endpoint changes: %v in %v", res, d)
	res, d = applyHost(t, inst, br, h)
	if res.Changed() {
		t.Errorf("the same state again: %v", res)
	}
	t.Logf("no change: %v in %v", res, d)
	// The same, as a change realize does it.
	h.Services[500].Endpoints[3].IP = netip.MustParseAddr("10.129.9.10")
	res, d = applyHostTrusted(t, inst, br, h, true)
	if res.Added+res.Modified+res.Deleted != 0 || res.GroupsModified != 1 || res.GroupsAdded+res.GroupsDeleted != 0 {
		t.Errorf("one endpoint changed (trusted): %v; want one group modified and no flow", res)
	}
	t.Logf("one endpoint changes, trusted (flows and groups as the last reconcile left them): %v in %v", res, d)
}
