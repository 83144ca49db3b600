package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/integration/lab"
)

// The containerd CRI test: Debian's containerd 1.6 started by hand with
// its own root, state and socket, its CRI plugin reading the conflist
// `sdnctl cni install` wrote, driven by crictl as a kubelet would
// (docs/runtimes.md, "containerd (CRI) with crictl").

// loopbackPlugin is Debian's (containernetworking-plugins) loopback plugin,
// which containerd's CRI runs for every sandbox's lo.
const loopbackPlugin = "/usr/lib/cni/loopback"

// pauseImage is the sandbox image the test builds and imports: no registry
// is reachable, so no k8s pause image can be pulled.
const pauseImage = "sdn.test/pause:1"

// containerdConfig is containerd's config.toml (version 2, containerd 1.6).
const containerdConfig = `version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = %[3]q

[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[6]q
    conf_dir = %[7]q
    max_conf_num = 1
`

// criRig is a containerd with its CRI plugin and the crictl that drives it.
type criRig struct {
	paths  map[string]string
	dir    string
	socket string
}

// crictl runs crictl against the rig's containerd.
func (r *criRig) crictl(args ...string) (string, error) {
	base := []string{"--config", filepath.Join(r.dir, "crictl.yaml"), "--runtime-endpoint", "unix://" + r.socket,
		"--image-endpoint", "unix://" + r.socket, "--timeout", "60s"}
	out, err := exec.Command(r.paths["crictl"], append(base, args...)...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return string(out), fmt.Errorf("crictl %s: %w\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out), nil
}

// startContainerd writes the config, starts containerd and imports the
// pause image; it is stopped when the test ends.
func startContainerd(t *testing.T, paths map[string]string, dir, binDir, confDir string) *criRig {
	t.Helper()
	r := &criRig{paths: paths, dir: dir, socket: filepath.Join(dir, "containerd.sock")}
	conf := fmt.Sprintf(containerdConfig, filepath.Join(dir, "root"), filepath.Join(dir, "state"), r.socket,
		filepath.Join(dir, "opt"), pauseImage, binDir, confDir)
	confPath := filepath.Join(dir, "config.toml")
	for path, data := range map[string]string{confPath: conf, filepath.Join(dir, "crictl.yaml"): "debug: false\n"} {
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(paths["containerd"], "--config", confPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopContainerd(t, r, cmd, logf) })
	ctr := func(args ...string) (string, error) {
		out, err := exec.Command(paths["ctr"], append([]string{"--address", r.socket, "--namespace", "k8s.io"}, args...)...).CombinedOutput()
		return string(out), err
	}
	if !eventually(30*time.Second, func() bool { _, err := r.crictl("version"); return err == nil }) {
		t.Fatalf("containerd did not serve CRI on %s within 30s; its log:\n%s", r.socket, tailFile(filepath.Join(dir, "containerd.log"), 20))
	}
	image := filepath.Join(dir, "pause.tar")
	if err := writePauseImage(image); err != nil {
		t.Fatal(err)
	}
	if out, err := ctr("image", "import", "--snapshotter", "native", image); err != nil {
		t.Fatalf("ctr image import: %v\n%s", err, out)
	}
	return r
}

// stopContainerd removes every sandbox left, then stops containerd (its
// shims exit with their sandboxes).
func stopContainerd(t *testing.T, r *criRig, cmd *exec.Cmd, logf *os.File) {
	if out, err := r.crictl("rmp", "--all", "--force"); err != nil {
		t.Errorf("crictl rmp --all: %v %s", err, out)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Errorf("containerd did not stop within 20s of SIGTERM; killed")
	}
	logf.Close()
}

// writePauseImage writes an OCI image archive (for `ctr image import`)
// whose one layer is busybox-static and whose entrypoint sleeps forever:
// a pause container (containerd stops sandboxes with SIGKILL).
func writePauseImage(path string) error {
	bb, err := os.ReadFile(busyboxPath)
	if err != nil {
		return err
	}
	layer, err := tarOf([]tarEntry{{name: "bin/", dir: true}, {name: "bin/busybox", data: bb, mode: 0o755}})
	if err != nil {
		return err
	}
	config := mustJSON(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Entrypoint": []string{"/bin/busybox", "sleep", "2147483647"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest(layer)}},
	})
	manifest := mustJSON(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": descriptor("application/vnd.oci.image.config.v1+json", config, nil),
		"layers": []any{descriptor("application/vnd.oci.image.layer.v1.tar", layer, nil)},
	})
	index := mustJSON(map[string]any{"schemaVersion": 2, "manifests": []any{
		descriptor("application/vnd.oci.image.manifest.v1+json", manifest, map[string]string{"io.containerd.image.name": pauseImage}),
	}})
	entries := []tarEntry{{name: "oci-layout", data: []byte(`{"imageLayoutVersion":"1.0.0"}`)}, {name: "index.json", data: index}}
	for _, blob := range [][]byte{layer, config, manifest} {
		entries = append(entries, tarEntry{name: "blobs/sha256/" + strings.TrimPrefix(digest(blob), "sha256:"), data: blob})
	}
	archive, err := tarOf(entries)
	if err != nil {
		return err
	}
	return os.WriteFile(path, archive, 0o644)
}

type tarEntry struct {
	name string
	data []byte
	mode int64
	dir  bool
}

func tarOf(entries []tarEntry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
		if e.mode != 0 {
			h.Mode = e.mode
		}
		if e.dir {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func descriptor(mediaType string, blob []byte, annotations map[string]string) map[string]any {
	d := map[string]any{"mediaType": mediaType, "digest": digest(blob), "size": len(blob)}
	if annotations != nil {
		d["annotations"] = annotations
	}
	return d
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// sandboxInfo is what the test reads from `crictl inspectp`.
type sandboxInfo struct {
	Status struct {
		Network struct {
			IP string `json:"ip"`
		} `json:"network"`
	} `json:"status"`
	Info struct {
		RuntimeSpec struct {
			Linux struct {
				Namespaces []struct {
					Type string `json:"type"`
					Path string `json:"path"`
				} `json:"namespaces"`
			} `json:"linux"`
		} `json:"runtimeSpec"`
	} `json:"info"`
}

func (s *sandboxInfo) netns() string {
	for _, ns := range s.Info.RuntimeSpec.Linux.Namespaces {
		if ns.Type == "network" {
			return ns.Path
		}
	}
	return ""
}

// TestContainerdCRI: containerd's CRI plugin runs a pod sandbox (crictl
// runp) on host1 of a 2-host lab; its address comes from sdn, its workload
// is named <namespace>-<pod> with the k8s.* labels, it pings a workload on
// host2 from the sandbox's namespace, and stopping and removing the
// sandbox releases the workload.
func TestContainerdCRI(t *testing.T) {
	paths := needRuntime(t, "containerd", "containerd-shim-runc-v2", "ctr", "runc", "crictl")
	if _, err := os.Stat(loopbackPlugin); err != nil {
		missingTool(t, "%s (containernetworking-plugins) is missing: containerd's CRI runs it for lo (make deps installs it)", loopbackPlugin)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, progress := upLab(ctx, t, "cri", 2)
	peer, err := l.Attach("host2", "proj1", "peer", nil)
	if err != nil {
		t.Fatalf("attach host2/peer: %v\n%s", err, progress)
	}
	base := t.TempDir()
	binDir, confDir := filepath.Join(base, "cni-bin"), filepath.Join(base, "net.d")
	cniInstall(t, l, 1, "proj1", binDir, confDir)
	copyFile(t, loopbackPlugin, filepath.Join(binDir, "loopback"), 0o755)
	r := startContainerd(t, paths, base, binDir, confDir)

	pod := filepath.Join(base, "pod.json")
	podConfig := `{"metadata": {"name": "pod1", "namespace": "team-a", "uid": "0b3c4d5e-pod1", "attempt": 0}, "log_directory": %q, "linux": {}}`
	if err := os.WriteFile(pod, fmt.Appendf(nil, podConfig, filepath.Join(base, "logs")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := r.crictl("runp", pod)
	if err != nil {
		t.Fatalf("%v\ncontainerd's log:\n%s", err, tailFile(filepath.Join(base, "containerd.log"), 20))
	}
	id := strings.TrimSpace(out)
	sb := inspectSandbox(t, r, id)
	checkSandboxWorkload(t, l, id, sb)
	if out, err := exec.Command("nsenter", "--net="+sb.netns(), "ping", "-c", "3", "-i", "0.2", "-W", "1", peer.IP).CombinedOutput(); err != nil {
		t.Errorf("ping host2's peer (%s) from the sandbox's namespace %s: %v\n%s", peer.IP, sb.netns(), err, out)
	}
	checkSandboxRelease(t, r, l, id, sb)
	t.Logf("TestContainerdCRI took %s", time.Since(start).Round(time.Second))
}

func inspectSandbox(t *testing.T, r *criRig, id string) *sandboxInfo {
	t.Helper()
	out, err := r.crictl("inspectp", "--output", "json", id)
	if err != nil {
		t.Fatal(err)
	}
	sb := &sandboxInfo{}
	if err := json.Unmarshal([]byte(out), sb); err != nil {
		t.Fatalf("crictl inspectp: %v\n%s", err, out)
	}
	if sb.Status.Network.IP == "" || sb.netns() == "" {
		t.Fatalf("sandbox %s: no IP (%q) or no network namespace (%q)", id, sb.Status.Network.IP, sb.netns())
	}
	return sb
}

// checkSandboxWorkload: the sandbox is the sdn workload team-a-pod1 on
// host1, with the sandbox's IP and the k8s.* labels.
func checkSandboxWorkload(t *testing.T, l *lab.Lab, id string, sb *sandboxInfo) {
	t.Helper()
	w := workloadOf(t, l, "proj1", id)
	switch {
	case w == nil:
		t.Fatalf("no workload of proj1 has the sandbox's id %s: %v", id, sdnWorkloads(t, l, "proj1"))
	case w.Name != "team-a-pod1" || w.Node != "host1" || w.IP != sb.Status.Network.IP:
		t.Errorf("workload %s on %s with %s; want team-a-pod1 on host1 with the sandbox's %s", w.Name, w.Node, w.IP, sb.Status.Network.IP)
	case w.Labels["k8s.namespace"] != "team-a" || w.Labels["k8s.pod"] != "pod1":
		t.Errorf("workload %s labels %v; want k8s.namespace=team-a, k8s.pod=pod1", w.Name, w.Labels)
	}
}

// checkSandboxRelease: crictl stopp releases the workload (CNI DEL), and
// rmp removes the sandbox and its network namespace.
func checkSandboxRelease(t *testing.T, r *criRig, l *lab.Lab, id string, sb *sandboxInfo) {
	t.Helper()
	if _, err := r.crictl("stopp", id); err != nil {
		t.Fatal(err)
	}
	if w := workloadOf(t, l, "proj1", id); w != nil {
		t.Errorf("after crictl stopp, workload %s is still there", w.Name)
	}
	if _, err := r.crictl("rmp", id); err != nil {
		t.Fatal(err)
	}
	if out, _ := r.crictl("pods", "--quiet"); strings.TrimSpace(out) != "" {
		t.Errorf("after crictl rmp, pods left: %s", out)
	}
	if _, err := os.Stat(sb.netns()); err == nil {
		t.Errorf("after crictl rmp, the sandbox's namespace %s is still there", sb.netns())
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}
