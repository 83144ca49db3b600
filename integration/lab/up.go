package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sdn-dev/sdn/pki"
)

// Up brings the lab up and returns it: namespaces, underlay, one OVS
// instance and one sdnd per host, then applies the HCL files with --wait.
// On a lab that is already up it keeps what runs and repairs what does not
// (a missing namespace, link, OVS daemon or sdnd), so running it twice
// changes nothing the second time.
func Up(ctx context.Context, cfg Config) (*Lab, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if cfg.HostServers > 1 {
		return nil, fmt.Errorf("lab %s: %d hosts as servers is for the VM labs (Prepare); the netns lab runs host1 as its server, UpServers adds separate ones", cfg.Name, cfg.HostServers)
	}
	l := newLab(cfg)
	if err := l.preflight(); err != nil {
		return nil, err
	}
	if err := l.claimDir(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(l.binPath(), []byte(l.Bin), 0o644); err != nil {
		return nil, err
	}
	var hclDir string
	if !cfg.UnderlayOnly {
		var err error
		if hclDir, err = l.prepareHCL(); err != nil {
			return nil, err
		}
	}
	if err := l.upUnderlay(); err != nil {
		return nil, err
	}
	l.logf("underlay: %s, bridge br0 in netns %s, MTU %d", Subnet(l.Name), l.UnderlayNS(), l.cfg.UnderlayMTU)
	if err := l.eachHost(func(i int) error { return l.upHost(ctx, i) }); err != nil {
		return nil, err
	}
	if cfg.UnderlayOnly {
		return l, l.checkUnderlay()
	}
	if err := l.ensureTLS(0); err != nil {
		return nil, err
	}
	if err := l.upSDND(ctx, 1); err != nil {
		return nil, err
	}
	if err := l.waitServing(ctx); err != nil {
		return nil, err
	}
	l.logf("host1: sdnd server ready at %s", l.SdnctlServer())
	if err := l.eachHost(func(i int) error {
		if i == 1 {
			return nil
		}
		return l.upSDND(ctx, i)
	}); err != nil {
		return nil, err
	}
	if err := l.waitRegistered(ctx); err != nil {
		return nil, err
	}
	l.logf("applying %s", l.cfg.Examples)
	out, err := l.Sdnctl("apply", "-f", hclDir, "--wait")
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", l.cfg.Examples, err)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) != "" {
			l.logf("  %s", line)
		}
	}
	// Now that the agents own the underlay (netdev: the address is on
	// br-phy), this also teaches OVS the tunnel neighbours.
	return l, l.checkUnderlay()
}

// checkUnderlay pings every host's underlay address from every other host
// namespace, in parallel. Besides checking the underlay, the kernel's ARP
// exchange through br-phy fills OVS's tunnel neighbour cache: without it the
// userspace datapath drops the first packet to each tunnel destination
// while it resolves the MAC (seen with OVS 3.1), and a one-ping matrix
// would report a spurious isolated pair.
func (l *Lab) checkUnderlay() error {
	var (
		mu     sync.Mutex
		failed []string
	)
	_ = l.eachHost(func(i int) error {
		for j := 1; j <= l.Hosts; j++ {
			if j == i {
				continue
			}
			// A few tries: an agent that just (re)started may still be
			// installing br-phy's flows, though the servers' status, which
			// remembers what its predecessor realized, says it is done.
			var err error
			for try := 0; try < 5; try++ {
				if _, err = l.Exec(l.HostNS(i), "ping", "-c", "1", "-W", "1", "-n", "-q", l.HostIP(j).String()); err == nil {
					break
				}
			}
			if err != nil {
				mu.Lock()
				failed = append(failed, fmt.Sprintf("%s -> %s (%s)", HostName(i), HostName(j), l.HostIP(j)))
				mu.Unlock()
			}
		}
		return nil
	})
	if len(failed) > 0 {
		sort.Strings(failed)
		return fmt.Errorf("underlay %s: hosts do not reach each other: %s", Subnet(l.Name), strings.Join(failed, ", "))
	}
	if l.Hosts > 1 {
		l.logf("underlay: every host reaches every other")
	}
	return nil
}

// preflight checks what Up needs before it changes anything.
func (l *Lab) preflight() error {
	if os.Geteuid() != 0 {
		return errors.New("the lab needs root (network namespaces, veths, OVS); run it with sudo or as root")
	}
	var missing []string
	for _, p := range []string{"ip", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl"} {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if !l.cfg.UnderlayOnly {
		for _, p := range []string{"sdnd", "sdnctl", "sdn"} {
			if fi, err := os.Stat(filepath.Join(l.Bin, p)); err != nil || fi.Mode()&0o111 == 0 {
				missing = append(missing, filepath.Join(l.Bin, p))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("lab %s: missing %s; `make deps` installs iproute2 and openvswitch-switch, `go build -o bin/ ./sdnd ./sdnctl ./cni` the binaries",
			l.Name, strings.Join(missing, ", "))
	}
	return nil
}

// eachHost runs fn for every host in parallel and joins the errors.
func (l *Lab) eachHost(fn func(i int) error) error {
	errs := make([]error, l.Hosts+1)
	var wg sync.WaitGroup
	for i := 1; i <= l.Hosts; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(i); err != nil {
				errs[i] = fmt.Errorf("%s: %w", HostName(i), err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// upHost makes host i's namespace, underlay link and OVS instance exist.
func (l *Lab) upHost(ctx context.Context, i int) error {
	if err := os.MkdirAll(l.HostDir(i), 0o755); err != nil {
		return err
	}
	created, err := l.upHostNet(i)
	if err != nil {
		return err
	}
	if created {
		l.logf("%s: netns %s, ul0 %s/24", HostName(i), l.HostNS(i), l.HostIP(i))
	}
	running := l.ovsRunning(i)
	if _, err := l.startOVS(ctx, i); err != nil {
		return err
	}
	if running {
		l.logf("%s: ovs running (kept)", HostName(i))
	} else {
		l.logf("%s: ovs started", HostName(i))
	}
	return nil
}

// upSDND starts host i's sdnd unless it runs.
func (l *Lab) upSDND(ctx context.Context, i int) error {
	d := l.sdnd(i)
	if pid := d.pid(); pid != 0 {
		var why string
		switch {
		case binaryReplaced(pid):
			// Restarts are normal for sdnd: run the rebuilt binary.
			why = "bin/sdnd was rebuilt"
		case !strings.Contains(string(cmdline(pid)), "--"+pki.FlagCert+"="):
			why = "it runs without TLS (started by an older lab)"
		case startTime(l.vswitchdPID(i)) > startTime(pid):
			// A new ovs-vswitchd starts with no flows, and this agent
			// does not replay them (yet); a fresh one realizes everything.
			why = "its ovs-vswitchd is younger than it"
		default:
			l.logf("%s: sdnd running (pid %d, kept)", HostName(i), pid)
			return nil
		}
		l.logf("%s: %s; restarting sdnd (pid %d)", HostName(i), why, pid)
		if err := d.stop(15 * time.Second); err != nil {
			return err
		}
	}
	args := l.sdndArgs(i)
	if err := os.MkdirAll(l.dataDir(i), 0o700); err != nil {
		return err
	}
	pid, err := d.start(l.HostNS(i), l.sdndLog(i), filepath.Join(l.Bin, "sdnd"), args...)
	if err != nil {
		return err
	}
	role := "agent"
	if i == 1 {
		role = "server+agent"
	}
	l.logf("%s: sdnd %s started (pid %d, mutual TLS, log %s)", HostName(i), role, pid, l.sdndLog(i))
	return nil
}

func (l *Lab) sdnd(i int) daemon {
	return daemon{pidfile: filepath.Join(l.HostDir(i), "sdnd.pid"), mark: "--data-dir=" + l.dataDir(i)}
}

func (l *Lab) dataDir(i int) string { return filepath.Join(l.HostDir(i), "data") }
func (l *Lab) sdndLog(i int) string { return filepath.Join(l.HostDir(i), "sdnd.log") }
func (l *Lab) ovsDir(i int) string  { return filepath.Join(l.HostDir(i), "ovs") }

// sdndArgs is host i's sdnd command line (NodeArgs, shared with the VM
// labs): the netdev datapath on ul0, the host's own OVS instance, and the
// lab's extra flags.
func (l *Lab) sdndArgs(i int) []string {
	args := l.NodeArgs(Node{Index: i, Server: i == 1, UnderlayIface: "ul0", Datapath: "netdev", OVSDir: l.ovsDir(i)})
	if i == 1 {
		args = append(args, l.cfg.ServerArgs...)
	}
	args = append(args, l.cfg.AgentArgs...)
	if l.cfg.Docker {
		args = append(args, "--docker-plugin-socket="+filepath.Join(l.DockerPluginDir(i), "sdn.sock"))
	}
	return args
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
