package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/integration/lab"
)

// podmanHost is Debian's podman on one lab host, as docs/runtimes.md
// ("Podman") sets it up: the CNI backend reading the conflists `sdnctl cni
// install` wrote for that host (its agent's socket), runc, vfs storage, and
// its own --root, --runroot and --tmpdir, so that each lab host has its own
// containers (the same name can exist on two). podman runs in the root
// namespace and executes the plugin, which talks to the host's agent; the
// containers' namespaces are podman's (/run/netns/netns-*).
type podmanHost struct {
	l      *lab.Lab
	i      int
	podman string
	dir    string
	rootfs string
}

// podmanConf is containers.conf for one host: network_backend "cni" with
// the plugin and conflist directories, runc, and limits runc can set here.
const podmanConf = `[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[network]
network_backend = "cni"
cni_plugin_dirs = [%q]
network_config_dir = %q

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`

func newPodmanHost(t *testing.T, l *lab.Lab, i int, podman, base, binDir, rootfs string) *podmanHost {
	t.Helper()
	p := &podmanHost{l: l, i: i, podman: podman, dir: filepath.Join(base, lab.HostName(i)), rootfs: rootfs}
	confDir := filepath.Join(p.dir, "net.d")
	for _, network := range []string{"proj1", "proj2"} {
		cniInstall(t, l, i, network, binDir, confDir)
	}
	conf := fmt.Sprintf(podmanConf, binDir, confDir)
	if err := os.WriteFile(filepath.Join(p.dir, "containers.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if out, err := p.cmd("rm", "--all", "--force", "--time", "0"); err != nil {
			t.Errorf("podman rm --all on host%d: %v", i, err)
		} else if strings.TrimSpace(out) != "" {
			t.Logf("host%d: removed %s", i, strings.Join(strings.Fields(out), " "))
		}
	})
	return p
}

// cmd runs podman with this host's configuration.
func (p *podmanHost) cmd(args ...string) (string, error) {
	base := []string{"--root", filepath.Join(p.dir, "root"), "--runroot", filepath.Join(p.dir, "run"),
		"--tmpdir", filepath.Join(p.dir, "tmp"), "--storage-driver", "vfs"}
	cmd := exec.Command(p.podman, append(base, args...)...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+filepath.Join(p.dir, "containers.conf"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("host%d: podman %s: %w\n%s", p.i, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// run starts a detached container on the busybox root and returns its id.
func (p *podmanHost) run(t *testing.T, name, network string, opts []string, command ...string) string {
	t.Helper()
	args := append([]string{"run", "--detach", "--name", name, "--network", network}, opts...)
	args = append(append(args, "--rootfs", p.rootfs), command...)
	out, err := p.cmd(args...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// ping says whether one of three pings from container name reaches ip.
func (p *podmanHost) ping(name, ip string) bool {
	_, err := p.cmd("exec", name, "ping", "-c", "3", "-i", "0.2", "-W", "1", ip)
	return err == nil
}

// podmanCase is what the subtests share.
type podmanCase struct {
	l      *lab.Lab
	h1, h2 *podmanHost
	web1   *sdnWorkload // host1's web (proj1), serving tcp/8080, host port 18080
	other1 *sdnWorkload // host1's other (proj2)
	web2   *sdnWorkload // host2's web (proj1), or web2 without per-host names
	ports2 map[string]int
}

// TestPodman runs Debian's podman with the CNI backend on a 3-host lab:
// containers on two hosts (the same name on both), connectivity and
// isolation by packets from busybox inside them, a host port reached from
// another host's underlay, and `podman rm` with the agent down leaking
// nothing once the agent is back.
func TestPodman(t *testing.T) {
	paths := needRuntime(t, "podman", "runc")
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, _ := upLab(ctx, t, "pod", 3)
	base := t.TempDir()
	rootfs, binDir := filepath.Join(base, "rootfs"), filepath.Join(base, "cni-bin")
	busyboxRoot(t, rootfs)
	c := &podmanCase{l: l,
		h1: newPodmanHost(t, l, 1, paths["podman"], base, binDir, rootfs),
		h2: newPodmanHost(t, l, 2, paths["podman"], base, binDir, rootfs)}
	var err error
	if c.ports2, err = l.OVS(2).Ports(ctx, "br-int"); err != nil {
		t.Fatal(err)
	}
	t.Run("names", c.testNames)
	t.Run("connectivity", c.testConnectivity)
	t.Run("hostport", c.testHostPort)
	t.Run("rm-agent-down", c.testRemoveAgentDown)
	t.Logf("TestPodman took %s", time.Since(start).Round(time.Second))
}

// testNames: host1 runs web (proj1, httpd on 8080, -p 18080:8080) and
// other (proj2); host2 runs a container also named web. Podman passes the
// container's name as K8S_POD_NAME and K8S_POD_NAMESPACE, unique only on
// its host: sdn names them web-host1 and web-host2 (docs/runtimes.md,
// "Names").
func (c *podmanCase) testNames(t *testing.T) {
	id1 := c.h1.run(t, "web", "sdn-proj1", []string{"--publish", "18080:8080"},
		"sh", "-c", "echo web-host1 > /tmp/web-host1.txt; exec httpd -f -p 8080 -h /tmp")
	idOther := c.h1.run(t, "other", "sdn-proj2", nil, "sleep", "3600")
	c.web1 = mustWorkload(t, c.l, "proj1", id1)
	c.other1 = mustWorkload(t, c.l, "proj2", idOther)
	if c.web1.Name != "web-host1" {
		t.Fatalf("host1's container web is workload %q; want web-host1 (a Podman name is unique only on its host)", c.web1.Name)
	}
	c.web2 = mustWorkload(t, c.l, "proj1", c.h2.run(t, "web", "sdn-proj1", nil, "sleep", "3600"))
	if c.web2.Name != "web-host2" || c.other1.Name != "other-host1" {
		t.Errorf("workload names %q and %q; want web-host2 and other-host1", c.web2.Name, c.other1.Name)
	}
	if c.web1.Node != "host1" || c.web2.Node != "host2" || c.web1.Origin.Kind != "ORIGIN_KIND_CNI" {
		t.Errorf("web-host1 on %s (%s), web-host2 on %s", c.web1.Node, c.web1.Origin.Kind, c.web2.Node)
	}
}

func mustWorkload(t *testing.T, l *lab.Lab, network, containerID string) *sdnWorkload {
	t.Helper()
	w := workloadOf(t, l, network, containerID)
	if w == nil {
		t.Fatalf("no workload of %s has container id %s: %v", network, containerID, sdnWorkloads(t, l, network))
	}
	return w
}

// testConnectivity: web and web reach each other across hosts (ping, and
// httpd's file over TCP); other, in proj2, reaches neither (multitenant).
func (c *podmanCase) testConnectivity(t *testing.T) {
	if c.web2 == nil {
		t.Skip("the containers did not start")
	}
	if !c.h1.ping("web", c.web2.IP) || !c.h2.ping("web", c.web1.IP) {
		t.Errorf("web on host1 (%s) and host2 (%s) do not ping each other", c.web1.IP, c.web2.IP)
	}
	out, err := c.h2.cmd("exec", "web", "sh", "-c", httpGet("nc", c.web1.IP, 8080, "/web-host1.txt"))
	if err != nil || !strings.Contains(out, "\nweb-host1") {
		t.Errorf("host2's web fetching host1's web over TCP: %q, %v", out, err)
	}
	if c.h1.ping("other", c.web1.IP) || c.h1.ping("other", c.web2.IP) {
		t.Errorf("other (proj2, %s) reaches a proj1 container: the networks are not isolated", c.other1.IP)
	}
	if out, _ := c.h1.cmd("exec", "other", "sh", "-c", httpGet("nc", c.web1.IP, 8080, "/web-host1.txt")); strings.Contains(out, "web-host1") {
		t.Errorf("other (proj2) fetched from web (proj1) over TCP")
	}
}

// httpGet is a shell command that fetches path from ip:port over HTTP/1.0
// with busybox's nc (busybox-static's wget crashes in glibc's static
// resolver) and prints the response, headers and body.
func httpGet(nc, ip string, port int, path string) string {
	return fmt.Sprintf(`printf 'GET %s HTTP/1.0\r\n\r\n' | %s -w 3 %s %d`, path, nc, ip, port)
}

// testHostPort: -p 18080:8080 on host1 is reached from host3's namespace
// (another host's underlay) at host1's underlay address; a proj2
// container is not let through it to proj1's web.
func (c *podmanCase) testHostPort(t *testing.T) {
	if c.web1 == nil {
		t.Skip("the containers did not start")
	}
	hostIP := c.l.HostIP(1).String()
	target := net.JoinHostPort(hostIP, "18080")
	out, err := c.l.Exec(c.l.HostNS(3), "sh", "-c", httpGet(busyboxPath+" nc", hostIP, 18080, "/web-host1.txt"))
	if err != nil || !strings.Contains(out, "\nweb-host1") {
		t.Fatalf("GET %s from host3: %q, %v; want web-host1 (web-host1's port mappings: %v)", target, out, err,
			workloadOf(t, c.l, "proj1", c.web1.Origin.ContainerID).PortMappings)
	}
	if out, _ := c.h1.cmd("exec", "other", "sh", "-c", httpGet("nc", hostIP, 18080, "/web-host1.txt")); strings.Contains(out, "web-host1") {
		t.Errorf("other (proj2) reached proj1's web through host port 18080")
	}
}

// testRemoveAgentDown: host2's agent is killed, its container removed
// (podman's CNI DEL fails: the agent is down); once the agent is back the
// workload is released and its OVS port removed (the leak loop, node/leaks).
func (c *podmanCase) testRemoveAgentDown(t *testing.T) {
	if c.web2 == nil {
		t.Skip("the containers did not start")
	}
	name := c.web2.Name
	if err := c.l.KillSDND(2); err != nil {
		t.Fatal(err)
	}
	out, rmErr := c.h2.cmd("rm", "--force", "--time", "0", "web")
	t.Logf("podman rm with the agent down: %v %s", rmErr, strings.TrimSpace(out))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.l.StartSDND(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if ps, err := c.h2.cmd("ps", "--all", "--quiet"); err != nil || strings.TrimSpace(ps) != "" {
		t.Fatalf("podman rm did not remove the container with the agent down: ps %q, %v (rm: %v)", ps, err, rmErr)
	}
	var ports map[string]int
	released := eventually(30*time.Second, func() bool {
		var err error
		ports, err = c.l.OVS(2).Ports(ctx, "br-int")
		return err == nil && workloadOf(t, c.l, "proj1", c.web2.Origin.ContainerID) == nil && len(ports) == len(c.ports2)
	})
	if released {
		return
	}
	t.Fatalf("30s after host2's agent came back: workload %s still listed: %v; br-int ports %v (before the containers: %v)",
		name, workloadOf(t, c.l, "proj1", c.web2.Origin.ContainerID) != nil, ports, c.ports2)
}
