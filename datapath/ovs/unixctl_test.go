package ovs

import (
	"strings"
	"testing"
)

// TestVswitchdCtl: commands to ovs-vswitchd go over the kept-open control
// connection and answer as ovs-appctl does, errors included; after
// ovs-vswitchd is killed and started again (a new pid, a new socket) the
// next command reconnects.
func TestVswitchdCtl(t *testing.T) {
	inst := startTestInstance(t, "")
	ctx := testCtx(t)
	viaFork, err := inst.run(ctx, nil, "ovs-appctl", "-t", "ovs-vswitchd", "version")
	if err != nil {
		t.Fatal(err)
	}
	viaConn, err := inst.vswitchdCtl(ctx, "version")
	if err != nil || viaConn != viaFork {
		t.Fatalf("version over the connection = %q, %v; ovs-appctl says %q", viaConn, err, viaFork)
	}
	first := inst.ctl.conn
	if _, err := inst.Appctl(ctx, "ovs-vswitchd", "revalidator/purge"); err != nil || inst.ctl.conn != first {
		t.Errorf("purge: %v; connection kept: %v", err, inst.ctl.conn == first)
	}
	if _, err := inst.Appctl(ctx, "ovs-vswitchd", "no-such/command"); err == nil || !strings.Contains(err.Error(), "not a valid command") {
		t.Errorf("an unknown command: %v; want ovs-vswitchd's refusal", err)
	}

	restartVswitchd(ctx, t, inst)
	if out, err := inst.Appctl(ctx, "ovs-vswitchd", "version"); err != nil || out != viaFork {
		t.Errorf("version after ovs-vswitchd restarted = %q, %v", out, err)
	}
	if inst.ctl.conn == first || inst.ctl.conn == nil {
		t.Errorf("the connection to the dead ovs-vswitchd was kept")
	}
}
