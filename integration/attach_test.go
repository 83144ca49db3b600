package integration

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/integration/lab"
	"github.com/sdn-dev/sdn/node/leaks"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestAttachSurvivesRestart attaches a plain process's namespace with
// `sdnctl attach --pid` on host2, reaches it from host1, kills and restarts
// host2's sdnd, finds it still attached and reachable after the leak loop's
// period, then detaches it (--pid) and another one by --netns and by
// NETWORK/NAME.
func TestAttachSurvivesRestart(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root (namespaces, OVS)")
	}
	ctx := context.Background()
	l, _ := upLab(ctx, t, "at", 2)
	peer, err := l.Attach("host1", "proj1", "peer", nil)
	if err != nil {
		t.Fatal(err)
	}
	ns := l.Name + "-plain"
	if _, err := link.NewNS(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = link.DeleteNS(ns) })
	proc := exec.Command("ip", "netns", "exec", ns, "sleep", "600")
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proc.Process.Kill(); _ = proc.Wait() })
	time.Sleep(200 * time.Millisecond) // ip netns exec has entered the namespace
	sdnctl := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(l.Bin, "sdnctl"), append(append([]string{"--server", l.SdnctlServer()}, l.SdnctlTLSFlags()...), args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	sock := l.CNISocket(2)
	pid := strconv.Itoa(proc.Process.Pid)
	out, err := sdnctl("attach", "--pid", pid, "--network", "proj1", "--label", "app=plain", "--socket", sock)
	if err != nil {
		t.Fatalf("sdnctl attach --pid: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(out))
	w := attachedAs(t, l, "attach-")
	if w.GetOrigin().GetKind() != sdnv1.OriginKind_ORIGIN_KIND_ATTACH {
		t.Errorf("origin %v", w.GetOrigin())
	}
	target := &lab.Workload{Host: "host2", Network: "proj1", Name: "plain", NS: ns, IP: w.GetIp()}
	if n := delivered(t, l, peer, target, peer.MAC, peer.IP, 22001); n != 5 {
		t.Fatalf("host1's peer reached the attached process %d/5 times", n)
	}

	if err := l.KillSDND(2); err != nil {
		t.Fatal(err)
	}
	if err := l.StartSDND(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitRealized(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	time.Sleep(leaks.DefaultPeriod + 2*time.Second) // a leak pass after the restart
	if again := attachedAs(t, l, "attach-"); again.GetIp() != w.GetIp() || again.GetCreateRevision() != w.GetCreateRevision() {
		t.Fatalf("after the restart the attachment is %v, was %v", again, w)
	}
	if n := delivered(t, l, peer, target, peer.MAC, peer.IP, 22002); n != 5 {
		t.Fatalf("after sdnd's restart host1's peer reached the attached process %d/5 times", n)
	}
	if out, err := sdnctl("attach", "--pid", pid, "--network", "proj1", "--label", "app=plain", "--socket", sock); err != nil {
		t.Fatalf("attach again (idempotent): %v\n%s", err, out)
	}
	if out, err := sdnctl("detach", "--pid", pid, "--socket", sock); err != nil || !strings.Contains(out, "detached") {
		t.Fatalf("sdnctl detach --pid: %v\n%s", err, out)
	}
	if out, err := sdnctl("detach", "--pid", pid, "--socket", sock); err != nil || !strings.Contains(out, "was not attached") {
		t.Fatalf("detach again: %v\n%s", err, out)
	}

	// By --netns, then by NETWORK/NAME.
	if out, err := sdnctl("attach", "--netns", link.NSPath(ns), "--network", "proj1", "--name", "plain2", "--socket", sock); err != nil {
		t.Fatalf("sdnctl attach --netns: %v\n%s", err, out)
	}
	if out, err := sdnctl("detach", "proj1/plain2", "--socket", sock); err != nil || !strings.Contains(out, "detached") {
		t.Fatalf("sdnctl detach proj1/plain2: %v\n%s", err, out)
	}
	out, err = l.Sdnctl("get", "workloads", "-o", "json", "--node", "host2")
	if err != nil || strings.Contains(out, "attach-") {
		t.Fatalf("after the detaches host2 still has: %v\n%s", err, out)
	}
}

// attachedAs returns host2's one workload whose owner starts with prefix.
func attachedAs(t *testing.T, l *lab.Lab, prefix string) *sdnv1.Workload {
	t.Helper()
	out, err := l.Sdnctl("get", "workloads", "-o", "json", "--node", "host2")
	if err != nil {
		t.Fatal(err)
	}
	var ws []struct {
		Name           string `json:"name"`
		Ip             string `json:"ip"`
		CreateRevision string `json:"createRevision"`
		Origin         struct {
			Kind        string `json:"kind"`
			ContainerID string `json:"containerId"`
		} `json:"origin"`
	}
	if err := json.Unmarshal([]byte(out), &ws); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, w := range ws {
		if strings.HasPrefix(w.Origin.ContainerID, prefix) {
			rev, _ := strconv.ParseUint(w.CreateRevision, 10, 64)
			kind := sdnv1.OriginKind(sdnv1.OriginKind_value[w.Origin.Kind])
			return &sdnv1.Workload{Name: w.Name, Ip: w.Ip, CreateRevision: rev, Origin: &sdnv1.Origin{Kind: kind, ContainerId: w.Origin.ContainerID}}
		}
	}
	t.Fatalf("no workload of host2 has an owner %s*:\n%s", prefix, out)
	return nil
}
