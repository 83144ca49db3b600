package host

import (
	"strings"
	"testing"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestApplyClearsFlowRestoreWait: whoever restarts ovs-vswitchd sets
// other_config:flow-restore-wait=true first; the full apply, once its flows
// are in, removes it (else the new ovs-vswitchd would handle no new flow),
// says so, and leaves the key alone when it is not set.
func TestApplyClearsFlowRestoreWait(t *testing.T) {
	l := newLab(t, 1)
	h := l.hosts[0]
	ctx := testCtx(t)
	m := l.mirror(sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT)
	l.realize(m)
	if _, err := h.ovs.Vsctl(ctx, "set", "Open_vSwitch", ".", "other_config:flow-restore-wait=true"); err != nil {
		t.Fatal(err)
	}
	res := l.realize(m)[0]
	if !strings.Contains(res.String(), "flow-restore-wait cleared") {
		t.Errorf("apply with flow-restore-wait set: result does not say it cleared it: %s", res.String())
	}
	v, err := h.ovs.Vsctl(ctx, "--if-exists", "get", "Open_vSwitch", ".", "other_config:flow-restore-wait")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(v) != "" {
		t.Fatalf("other_config:flow-restore-wait is %q after the apply, want it removed", v)
	}
	if res := l.realize(m)[0]; strings.Contains(res.String(), "flow-restore-wait") || res.Changed() {
		t.Errorf("a second apply changed something: %s", res.String())
	}
}
