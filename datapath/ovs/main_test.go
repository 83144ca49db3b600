package ovs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// Detached OVS daemons are orphans; as a child subreaper this process
	// adopts them, so Stop can reap them instead of leaving zombies behind
	// when init does not reap.
	const prSetChildSubreaper = 36
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	os.Exit(m.Run())
}

// needOVS skips the test when it cannot run: no OVS binaries, or not root
// (network namespaces and OVS daemons need root).
func needOVS(t testing.TB) {
	t.Helper()
	for _, bin := range []string{"ovs-vswitchd", "ovsdb-server", "ovsdb-tool", "ovs-vsctl", "ovs-ofctl", "ovs-appctl", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs Open vSwitch (%s not found: %v)", bin, err)
		}
	}
	if _, err := os.Stat(DefaultSchema); err != nil {
		t.Skipf("needs the OVS schema: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run OVS daemons in a network namespace")
	}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newNetNS creates a uniquely named network namespace, deleted after the test.
func newNetNS(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "sdn-test-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return name
}

// startTestInstance starts an instance in a fresh namespace and directory
// and stops it after the test, checking that no daemon of it survives.
func startTestInstance(t testing.TB, netns string) *Instance {
	t.Helper()
	needOVS(t)
	if netns == "" {
		netns = newNetNS(t)
	}
	dir := t.TempDir()
	inst, err := StartInstance(testCtx(t), InstanceConfig{RunDir: dir, NetNS: netns, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := inst.Stop(); err != nil {
			t.Error(err)
		}
		if pids := daemonsOf(dir); len(pids) > 0 {
			t.Errorf("OVS daemons of %s still running after Stop: %v", dir, pids)
		}
	})
	return inst
}

// daemonsOf lists live (non-zombie) processes whose command line names dir.
func daemonsOf(dir string) []string {
	var found []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte(dir)) {
			continue
		}
		pidDir := filepath.Dir(p)
		var pid int
		for _, c := range filepath.Base(pidDir) {
			pid = pid*10 + int(c-'0')
		}
		if zombie(pid) {
			continue
		}
		found = append(found, strings.ReplaceAll(string(b), "\x00", " "))
	}
	return found
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// mustBridge creates a netdev bridge for a test.
func mustBridge(t testing.TB, inst *Instance, name string) {
	t.Helper()
	if err := inst.EnsureBridge(testCtx(t), BridgeConfig{Name: name, DatapathType: "netdev"}); err != nil {
		t.Fatal(err)
	}
}

// restartVswitchd kills inst's ovs-vswitchd with SIGKILL, waits until it is
// gone, and starts it again (another pid, the same database).
func restartVswitchd(ctx context.Context, t *testing.T, inst *Instance) {
	t.Helper()
	pid := inst.livePID("ovs-vswitchd")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); inst.livePID("ovs-vswitchd") == pid; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("ovs-vswitchd did not die")
		}
	}
	if _, err := StartInstance(ctx, InstanceConfig{RunDir: inst.RunDir, NetNS: inst.NetNS, Logger: testLogger(t)}); err != nil {
		t.Fatal(err)
	}
}
