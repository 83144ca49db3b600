package ovs

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestInstanceBridgeAndPorts(t *testing.T) {
	t.Parallel()
	inst := startTestInstance(t, "")
	ctx := testCtx(t)
	for range 2 { // idempotent
		mustBridge(t, inst, "br-int")
	}
	for col, want := range map[string]string{
		"fail_mode":                    "secure",
		"protocols":                    "[OpenFlow13, OpenFlow14, OpenFlow15]",
		"datapath_type":                "netdev",
		"other_config:disable-in-band": `"true"`,
	} {
		got, err := inst.Vsctl(ctx, "get", "Bridge", "br-int", col)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(got) != want {
			t.Errorf("bridge br-int %s = %s, want %s", col, strings.TrimSpace(got), want)
		}
	}

	for range 2 {
		n, err := inst.EnsurePort(ctx, "br-int", "gw0", 2, "type=internal")
		if err != nil || n != 2 {
			t.Fatalf("EnsurePort gw0 = %d, %v; want 2", n, err)
		}
		n, err = inst.EnsurePort(ctx, "br-int", "vxlan0", 1, "type=vxlan",
			"options:remote_ip=flow", "options:key=flow", "options:local_ip=198.18.0.1")
		if err != nil || n != 1 {
			t.Fatalf("EnsurePort vxlan0 = %d, %v; want 1", n, err)
		}
	}
	if opts, err := inst.Vsctl(ctx, "get", "Interface", "vxlan0", "options"); err != nil ||
		strings.TrimSpace(opts) != `{key=flow, local_ip="198.18.0.1", remote_ip=flow}` {
		t.Errorf("vxlan0 options = %q, %v", opts, err)
	}
	ports, err := inst.Ports(ctx, "br-int")
	if err != nil || len(ports) != 2 || ports["gw0"] != 2 || ports["vxlan0"] != 1 {
		t.Fatalf("Ports = %v, %v; want gw0:2 vxlan0:1", ports, err)
	}
	// The internal port is a device in the instance's namespace, not ours.
	if out, err := exec.Command("ip", "netns", "exec", inst.NetNS, "ip", "link", "show", "gw0").CombinedOutput(); err != nil {
		t.Errorf("gw0 not in namespace %s: %v: %s", inst.NetNS, err, out)
	}
	for range 2 {
		if err := inst.DeletePort(ctx, "br-int", "gw0"); err != nil {
			t.Fatal(err)
		}
	}
	if ports, _ := inst.Ports(ctx, "br-int"); len(ports) != 1 {
		t.Errorf("after DeletePort: ports = %v, want only vxlan0", ports)
	}

	// Starting again from the same directories adopts the running daemons.
	pid := inst.livePID("ovs-vswitchd")
	again, err := StartInstance(ctx, InstanceConfig{RunDir: inst.RunDir, NetNS: inst.NetNS, Logger: testLogger(t)})
	if err != nil || again.livePID("ovs-vswitchd") != pid {
		t.Fatalf("second StartInstance: %v; vswitchd pid %d, want %d (adopted)", err, again.livePID("ovs-vswitchd"), pid)
	}
	// Stop is idempotent, and a restart keeps the database (the bridge).
	for range 2 {
		if err := inst.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	if pids := daemonsOf(inst.RunDir); len(pids) > 0 {
		t.Fatalf("daemons alive after Stop: %v", pids)
	}
	inst, err = StartInstance(ctx, InstanceConfig{RunDir: inst.RunDir, NetNS: inst.NetNS, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inst.Vsctl(ctx, "br-exists", "br-int"); err != nil {
		t.Errorf("bridge br-int gone after restart: %v", err)
	}
	if _, err := inst.Ofctl(ctx, "-O", "OpenFlow15", "show", "br-int"); err != nil {
		t.Errorf("ovs-ofctl by bridge name via OVS_RUNDIR: %v", err)
	}
}

func TestBridgeNameChecked(t *testing.T) {
	inst := &Instance{}
	err := inst.EnsureBridge(t.Context(), BridgeConfig{Name: "a-very-long-bridge-name"})
	if err == nil || !strings.Contains(err.Error(), "1-15 characters") {
		t.Errorf("EnsureBridge(long name) = %v, want a name error", err)
	}
}

// TestInstanceInCurrentNetNS runs an instance with NetNS "" (the caller's
// namespace). It runs only inside TestCurrentNetNS, which re-executes the
// test binary in a fresh anonymous namespace: netdev instances cannot
// share a namespace (each needs the tap device "ovs-netdev").
func TestInstanceInCurrentNetNS(t *testing.T) {
	if os.Getenv("SDN_OVS_INNER") != "1" {
		t.Skip("runs inside TestCurrentNetNS")
	}
	needOVS(t)
	dir := t.TempDir()
	inst, err := StartInstance(testCtx(t), InstanceConfig{RunDir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := inst.Stop(); err != nil || len(daemonsOf(dir)) > 0 {
			t.Errorf("Stop: %v; left running: %v", err, daemonsOf(dir))
		}
	}()
	mustBridge(t, inst, "br-cur")
	res, err := inst.Reconcile(testCtx(t), "br-cur", 1, []Flow{{Table: 0, Priority: 1, Actions: "drop"}})
	if err != nil || res.Added != 1 {
		t.Fatalf("Reconcile = %v, %v", res, err)
	}
	if out, err := exec.Command("ip", "link", "show", "br-cur").CombinedOutput(); err != nil {
		t.Errorf("bridge device not in the current namespace: %v: %s", err, out)
	}
}

func TestCurrentNetNS(t *testing.T) {
	t.Parallel()
	needOVS(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare(1)")
	}
	cmd := exec.Command("unshare", "--net", "--", os.Args[0], "-test.run", "^TestInstanceInCurrentNetNS$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "SDN_OVS_INNER=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestInstanceInCurrentNetNS") {
		t.Fatalf("inner test: %v\n%s", err, out)
	}
}
