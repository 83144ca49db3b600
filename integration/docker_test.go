package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/integration/lab"
	"github.com/sdn-dev/sdn/node/dockerdrv"
)

// Debian's docker.io (20.10) and busybox-static (the image's only file).
const (
	dockerCLI  = "/usr/bin/docker" // not a newer CLI earlier on the PATH
	dockerd    = "/usr/sbin/dockerd"
	containerd = "/usr/bin/containerd"
	busybox    = "/bin/busybox"
)

// TestDocker runs Docker's engine on two lab hosts with sdn's network
// driver, as docs/runtimes.md ("Docker") tells a user to: containers on two
// hosts reach each other, and again after `docker restart` and after an
// sdnd restart; `docker rm` leaves no workload, veth or OVS port behind.
func TestDocker(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, OVS, dockerd)")
	}
	for _, p := range []string{dockerd, containerd, dockerCLI, busybox} {
		if _, err := os.Stat(p); err != nil {
			missingTool(t, "needs Debian's docker.io and busybox-static (make test installs them): %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	l := dockerLab(ctx, t)
	image := dockerImage(t)
	var engines [3]*dockerEngine
	for i := 1; i <= 2; i++ {
		engines[i] = startDocker(t, l, i)
		engines[i].mustRun(t, "import", image, "busybox:sdn")
	}
	e1, e2 := engines[1], engines[2]
	dockerRefusals(t, e1)
	for _, e := range []*dockerEngine{e1, e2} {
		e.mustRun(t, "network", "create", "-d", "sdn", "--ipam-driver", "null", "--opt", "network=proj1", "proj1")
		e.mustRun(t, "run", "-d", "--name", "web", "--network", "proj1", "busybox:sdn", "sleep", "3600")
	}
	c1, c2 := e1.container(t, "web"), e2.container(t, "web")
	checkWorkload(t, l, c1, true)
	checkWorkload(t, l, c2, true)
	e1.ping(t, "web", c2.ip)
	e2.ping(t, "web", c1.ip)

	// docker restart: Docker deletes the endpoint and creates another.
	e1.mustRun(t, "restart", "-t", "1", "web")
	r1 := e1.container(t, "web")
	if out := e1.mustRun(t, "exec", "web", "ip", "-o", "-4", "addr", "show", "eth0"); !strings.Contains(out, r1.ip+"/") {
		t.Errorf("after docker restart, eth0 does not hold %s: %s", r1.ip, out)
	}
	checkWorkload(t, l, c1, false)
	checkWorkload(t, l, r1, true)
	e2.ping(t, "web", r1.ip)
	e1.ping(t, "web", c2.ip)

	// sdnd restart on host2: the running container keeps its traffic, and
	// the driver still knows the network (Join, DeleteEndpoint).
	if err := l.KillSDND(2); err != nil {
		t.Fatal(err)
	}
	if err := l.StartSDND(ctx, 2); err != nil {
		t.Fatal(err)
	}
	e1.ping(t, "web", c2.ip)
	e2.mustRun(t, "restart", "-t", "1", "web")
	r2 := e2.container(t, "web")
	checkWorkload(t, l, c2, false)
	e1.ping(t, "web", r2.ip)
	e2.ping(t, "web", r1.ip)

	for i, e := range []*dockerEngine{e1, e2} {
		e.mustRun(t, "rm", "-f", "web")
		e.mustRun(t, "network", "rm", "proj1")
		checkNoLeaks(t, l, i+1, []dockerContainer{c1, c2, r1, r2})
	}
	checkWorkload(t, l, r1, false)
	checkWorkload(t, l, r2, false)
}

// dockerLab is a 2-host lab whose sdnd serve the Docker driver.
func dockerLab(ctx context.Context, t *testing.T) *lab.Lab {
	t.Helper()
	name := fmt.Sprintf("dk%d", os.Getpid()%100000)
	dir := filepath.Join(t.TempDir(), "lab")
	t.Cleanup(func() {
		ol, err := lab.Open(name, dir, nil)
		if err == nil {
			err = ol.Down()
		}
		if err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	progress := &strings.Builder{}
	l, err := lab.Up(ctx, lab.Config{Name: name, Hosts: 2, Dir: dir, Bin: binaries(t), Examples: "../examples", Logger: progress, Docker: true})
	if err != nil {
		t.Fatalf("lab up: %v\n%s", err, progress)
	}
	return l
}

// dockerImage writes a tar of a root holding busybox-static and the
// applets the test runs, for `docker import` (no registry is reachable).
func dockerImage(t *testing.T) string {
	t.Helper()
	bb, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}))
	must(tw.WriteHeader(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb))}))
	_, err = tw.Write(bb)
	must(err)
	for _, applet := range []string{"sh", "sleep", "ping", "ip"} {
		must(tw.WriteHeader(&tar.Header{Name: "bin/" + applet, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}))
	}
	must(tw.Close())
	path := filepath.Join(t.TempDir(), "busybox.tar")
	must(os.WriteFile(path, buf.Bytes(), 0o644))
	return path
}

// dockerRefusals checks what the driver refuses, and that it says why.
func dockerRefusals(t *testing.T, e *dockerEngine) {
	t.Helper()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"network", "create", "-d", "sdn", "--opt", "network=proj1", "bad1"}, "--ipam-driver null"},
		{[]string{"network", "create", "-d", "sdn", "--ipam-driver", "null", "--opt", "network=nosuch", "bad2"}, `no sdn network named "nosuch"`},
		{[]string{"network", "create", "-d", "sdn", "--ipam-driver", "null", "bad3"}, "--opt network=NAME"},
		{[]string{"network", "create", "-d", "sdn", "--ipam-driver", "null", "--opt", "network=proj1", "--opt", "vlan=3", "bad4"}, "unknown driver option(s) vlan"},
	} {
		out, err := e.run(c.args...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("docker %s: want an error saying %q, got %v: %s", strings.Join(c.args, " "), c.want, err, out)
		}
	}
}

// dockerEngine is containerd and dockerd of one lab host, in the host's
// network namespace and a mount namespace of their own, where a tmpfs on
// /run holds /run/docker/plugins (bound to the host's plugin directory, so
// this dockerd finds this host's sdnd as driver "sdn") and containerd's
// shim sockets, apart from any other containerd of the machine.
type dockerEngine struct {
	host int
	dir  string
	cmd  *exec.Cmd
}

func startDocker(t *testing.T, l *lab.Lab, i int) *dockerEngine {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn-docker-") // short: socket paths
	if err != nil {
		t.Fatal(err)
	}
	e := &dockerEngine{host: i, dir: dir}
	script := fmt.Sprintf(`set -e
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/docker/plugins
mount --bind %[2]s /run/docker/plugins
%[3]s --address %[1]s/containerd.sock --root %[1]s/containerd --state %[1]s/containerd-state >%[1]s/containerd.log 2>&1 &
echo $! >%[1]s/containerd.pid
n=0; while [ ! -S %[1]s/containerd.sock ]; do n=$((n+1)); [ $n -lt 200 ] || exit 1; sleep 0.1; done
%[4]s --data-root %[1]s/data --exec-root %[1]s/exec --pidfile %[1]s/dockerd.pid -H unix://%[1]s/docker.sock \
  --containerd %[1]s/containerd.sock --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
  --userland-proxy=false --storage-driver=vfs >%[1]s/dockerd.log 2>&1 &
echo $! >%[1]s/dockerd.sh.pid
wait
`, dir, l.DockerPluginDir(i), containerd, dockerd)
	e.cmd = exec.Command("nsenter", "--net=/run/netns/"+l.HostNS(i), "unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.stop(t) })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := e.run("version"); err == nil {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("host%d: dockerd did not answer within 60 s; %s:\n%s", i, filepath.Join(dir, "dockerd.log"), tailFile(filepath.Join(dir, "dockerd.log"), 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stop removes every container, then ends dockerd and containerd (the
// shell that started them waits for both) and removes their files.
func (e *dockerEngine) stop(t *testing.T) {
	if out, err := e.run("ps", "-aq"); err == nil && strings.TrimSpace(out) != "" {
		e.run(append([]string{"rm", "-f"}, strings.Fields(out)...)...)
	}
	// dockerd first (it stops its containers), then containerd; the shell
	// that started them reaps both and exits.
	for _, pidfile := range []string{"dockerd.sh.pid", "containerd.pid"} {
		signalPidfile(filepath.Join(e.dir, pidfile), syscall.SIGTERM)
		waitPidfileGone(filepath.Join(e.dir, pidfile), 20*time.Second)
	}
	done := make(chan error, 1)
	go func() { done <- e.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Errorf("host%d: dockerd or containerd did not stop within 20 s; killed", e.host)
	}
	if t.Failed() {
		t.Logf("host%d dockerd.log:\n%s", e.host, tailFile(filepath.Join(e.dir, "dockerd.log"), 30))
	}
	os.RemoveAll(e.dir)
}

func (e *dockerEngine) run(args ...string) (string, error) {
	cmd := exec.Command(dockerCLI, append([]string{"-H", "unix://" + e.dir + "/docker.sock"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (e *dockerEngine) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.run(args...)
	if err != nil {
		t.Fatalf("host%d: docker %s: %v\n%s", e.host, strings.Join(args, " "), err, out)
	}
	return out
}

// ping pings ip from a container: three echo requests, at least one
// answered (a new endpoint's flows reach the other host within a realize).
func (e *dockerEngine) ping(t *testing.T, name, ip string) {
	t.Helper()
	out, err := e.run("exec", name, "ping", "-c", "3", "-W", "2", ip)
	if err != nil { // busybox ping fails when no reply came
		t.Errorf("host%d: %s cannot ping %s: %v\n%s", e.host, name, ip, err, out)
	}
}

// dockerContainer is what Docker says of a container's sdn endpoint.
type dockerContainer struct {
	host       int
	endpointID string
	ip, mac    string
}

func (e *dockerEngine) container(t *testing.T, name string) dockerContainer {
	t.Helper()
	out := e.mustRun(t, "inspect", "-f", "{{json .NetworkSettings.Networks.proj1}}", name)
	var ep struct{ EndpointID, IPAddress, MacAddress string }
	if err := json.Unmarshal([]byte(out), &ep); err != nil || ep.IPAddress == "" {
		t.Fatalf("host%d: container %s has no address on proj1: %v: %s", e.host, name, err, out)
	}
	return dockerContainer{host: e.host, endpointID: ep.EndpointID, ip: ep.IPAddress, mac: ep.MacAddress}
}

// checkWorkload checks that the servers hold (or no longer hold) the
// container's workload, with Docker's address.
func checkWorkload(t *testing.T, l *lab.Lab, c dockerContainer, want bool) {
	t.Helper()
	out, err := l.Sdnctl("get", "workloads", "-o", "wide")
	if err != nil {
		t.Fatal(err)
	}
	name := "docker-" + c.endpointID[:12]
	var line string
	for _, ln := range strings.Split(out, "\n") {
		if strings.Contains(ln, name) {
			line = ln
		}
	}
	switch {
	case want && (line == "" || !strings.Contains(line, c.ip) || !strings.Contains(line, lab.HostName(c.host))):
		t.Errorf("no workload %s with %s on %s:\n%s", name, c.ip, lab.HostName(c.host), out)
	case !want && line != "":
		t.Errorf("workload %s is still there: %s", name, line)
	}
}

// checkNoLeaks checks host i for veths and OVS ports of the endpoints.
func checkNoLeaks(t *testing.T, l *lab.Lab, i int, cs []dockerContainer) {
	t.Helper()
	links, err := l.Exec(l.HostNS(i), "ip", "-o", "link")
	if err != nil {
		t.Fatal(err)
	}
	ports, err := l.OVS(i).Ports(context.Background(), "br-int")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		host := link.HostVethName(c.endpointID, dockerdrv.OwnerIfname)
		peer := "sdp" + host[3:]
		for _, n := range []string{host, peer} {
			if strings.Contains(links, n+"@") || strings.Contains(links, n+":") {
				t.Errorf("host%d: veth %s of endpoint %s is left:\n%s", i, n, c.endpointID[:12], links)
			}
		}
		if _, ok := ports[host]; ok {
			t.Errorf("host%d: OVS port %s of endpoint %s is left: %v", i, host, c.endpointID[:12], ports)
		}
	}
}

func signalPidfile(path string, sig syscall.Signal) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 0 {
		syscall.Kill(pid, sig)
	}
}

func waitPidfileGone(path string, timeout time.Duration) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(st), ") Z ") {
			return
		}
	}
}
