package integration

// Helpers shared by the tests of real container runtimes (podman_test.go,
// crio_test.go): the plugin and conflists installed by `sdnctl cni install`
// as docs/runtimes.md says, a root file system made of busybox-static (no
// image registry is reachable), and the workloads as sdnctl shows them.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/integration/lab"
)

// busyboxPath is where Debian's busybox-static installs its binary.
const busyboxPath = "/bin/busybox"

// missingTool skips a test whose tool is absent, or fails it under CI
// (CI=true): there make test installs every tool first (make deps), so an
// absent one is a broken set-up that must not pass as a skip.
func missingTool(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// needRuntime skips when a runtime's programs are truly absent (make deps
// installs them; under CI it fails) and returns their paths.
func needRuntime(t *testing.T, progs ...string) map[string]string {
	t.Helper()
	needDatapath(t)
	paths := map[string]string{}
	for _, p := range progs {
		path, err := exec.LookPath(p)
		if err != nil {
			// go install puts Go tools (crictl) in GOPATH/bin.
			gobin := filepath.Join(os.Getenv("HOME"), "go", "bin", p)
			if _, serr := os.Stat(gobin); serr != nil {
				missingTool(t, "%s is not installed (make deps installs it)", p)
			}
			path = gobin
		}
		paths[p] = path
	}
	if out, err := exec.Command(busyboxPath, "true").CombinedOutput(); err != nil {
		missingTool(t, "%s (busybox-static) does not run: %v %s (make deps installs it)", busyboxPath, err, out)
	}
	return paths
}

// busyboxRoot makes a root file system of busybox-static in dir: /bin with
// busybox and a relative link per applet, and the directories a runtime
// mounts over.
func busyboxRoot(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{"bin", "proc", "sys", "dev", "etc", "tmp", "root", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(busyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// cniInstall runs `sdnctl cni install` for host i of l: the plugin into
// binDir, the conflist of network into confDir, with host i's agent socket.
func cniInstall(t *testing.T, l *lab.Lab, i int, network, binDir, confDir string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(l.Bin, "sdnctl"), "cni", "install", "--network", network,
		"--dir", binDir, "--conf-dir", confDir, "--socket", l.CNISocket(i))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sdnctl cni install for host%d: %v\n%s", i, err, out)
	}
}

// sdnWorkload is a workload as `sdnctl get workloads -o json` shows it.
type sdnWorkload struct {
	Name    string            `json:"name"`
	Network string            `json:"network"`
	Node    string            `json:"node"`
	IP      string            `json:"ip"`
	Labels  map[string]string `json:"labels"`
	Origin  struct {
		Kind        string `json:"kind"`
		ContainerID string `json:"containerId"`
		Netns       string `json:"netns"`
	} `json:"origin"`
	PortMappings []json.RawMessage `json:"portMappings"`
}

// sdnWorkloads lists the workloads of network.
func sdnWorkloads(t *testing.T, l *lab.Lab, network string) []sdnWorkload {
	t.Helper()
	out, err := l.Sdnctl("get", "workloads", "--network", network, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var ws []sdnWorkload
	if err := json.Unmarshal([]byte(out), &ws); err != nil {
		t.Fatalf("sdnctl get workloads -o json: %v\n%s", err, out)
	}
	return ws
}

// workloadOf is the workload whose origin is containerID, nil if none.
func workloadOf(t *testing.T, l *lab.Lab, network, containerID string) *sdnWorkload {
	t.Helper()
	for _, w := range sdnWorkloads(t, l, network) {
		if w.Origin.ContainerID == containerID {
			return &w
		}
	}
	return nil
}

// eventually polls cond every 200ms until it holds or timeout passes.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}
