package suites

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sdn-dev/sdn/bench"
	"github.com/sdn-dev/sdn/integration/lab"
)

// The dataplane suite's setup: the kernel baselines' namespaces, the
// binaries, one lab per MTU and the servers every variant measures against,
// and the teardown of all of it.

// noOffloadFlags is what the no-offload variant turns off, with
// `ethtool -K DEV <flags>` on ul0 and vx0 in both of its namespaces.
const noOffloadFlags = "tx off rx off tso off gso off gro off"

// vxlanOverhead is what VXLAN over IPv4 adds to a frame (and what sdn
// takes off the underlay MTU for workloads).
const vxlanOverhead = 50

// kernelNets returns the kernel baselines' addresses at one MTU (index k
// in d.mtus): /24 prefixes in 198.18.0.0/15, the project's range.
func kernelNets(k int) (veth, vxOnUnder, vxOnOver, vxOffUnder, vxOffOver string) {
	n := func(second, third int) string {
		return fmt.Sprintf("198.%d.%d.", second, third+10*k)
	}
	return n(18, 201), n(18, 200), n(19, 200), n(18, 202), n(19, 202)
}

// setupTools are the programs the dataplane suite runs.
var setupTools = []string{"iperf3", "sockperf", "wrk", "ethtool", "ip", "ss", "ovs-vswitchd", "ovsdb-server", "ovs-vsctl", "ovs-ofctl", "go"}

// dpSetup is what one dataplane setup has created so far, so that its
// teardown removes exactly that, also when the setup failed halfway.
type dpSetup struct {
	d   *dataplane
	env *bench.Env
	id  string // random, in every namespace and lab name of this run

	mu    sync.Mutex        // nss, labs and upped: the labs come up in parallel
	nss   []string          // namespaces created, in order
	labs  map[string]string // name → dir of every lab started
	upped []*lab.Lab        // labs whose Up returned one (up, or failed after)
}

// setup is the suite's Setup, in phases: the tools, the kernel baselines,
// the binaries, the labs (in parallel), the servers, the notes. Its
// teardown (nil only when setup failed before creating anything) removes
// whatever setup created.
func (d *dataplane) setup(ctx context.Context, env *bench.Env) (func(), error) {
	if err := checkSetupTools(); err != nil {
		return nil, err
	}
	d.tools = fullTools
	if env.Quick {
		d.tools = quickTools
	}
	s := &dpSetup{d: d, env: env, id: runID(), labs: map[string]string{}}
	if err := s.kernelBaselines(ctx); err != nil {
		return s.teardown, err
	}
	bin, err := s.buildBinaries(ctx)
	if err != nil {
		return s.teardown, err
	}
	if err := s.labsUp(ctx, bin); err != nil {
		return s.teardown, err
	}
	if err := d.startAllServers(ctx); err != nil {
		return s.teardown, err
	}
	d.noteMinimal(env)
	env.Note("tools", d.tools.describe())
	return s.teardown, nil
}

// checkSetupTools checks the setup runs as root and finds every program
// it needs.
func checkSetupTools() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, OVS, sdnd); run as root")
	}
	for _, bin := range setupTools {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("needs %s (%v); run `make deps` as root", bin, err)
		}
	}
	return nil
}

// runID is 6 random hex digits, naming this run's namespaces and labs.
func runID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// teardown stops the servers, deletes the namespaces and takes the labs
// down: those that came up and those whose Up failed halfway. It runs
// after the setup has returned, so after every lab's goroutine has ended.
func (s *dpSetup) teardown() {
	s.d.stopServers()
	for _, ns := range s.nss {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			s.env.Logf("teardown: ip netns del %s: %v: %s", ns, err, out)
		}
	}
	for _, l := range s.upped {
		if err := l.Down(); err != nil {
			s.env.Logf("teardown: lab %s down: %v", l.Name, err)
		}
		delete(s.labs, l.Name)
	}
	s.halfUpLabsDown()
}

// halfUpLabsDown takes down the labs whose Up failed halfway (returned no
// lab), as far as their directory says what they left.
func (s *dpSetup) halfUpLabsDown() {
	for name, dir := range s.labs {
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		if ol, err := lab.Open(name, dir, nil); err == nil {
			if err := ol.Down(); err != nil {
				s.env.Logf("teardown: lab %s down: %v", name, err)
			}
		}
	}
}

// stopServers kills the servers startServers started and waits for them.
func (d *dataplane) stopServers() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.servers {
		_ = c.Process.Kill()
		_ = c.Wait()
	}
	d.servers = nil
}

// addNS creates namespace name, for the teardown to delete, with lo up.
func (s *dpSetup) addNS(ctx context.Context, name string) error {
	if out, err := exec.CommandContext(ctx, "ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add %s: %v: %s", name, err, out)
	}
	s.mu.Lock()
	s.nss = append(s.nss, name)
	s.mu.Unlock()
	return run(ctx, "ip", "-n", name, "link", "set", "lo", "up")
}

// nsPair creates the server (a) and client (b) namespaces of one kernel
// baseline; kind tells them apart.
func (s *dpSetup) nsPair(ctx context.Context, kind string) (a, b string, err error) {
	a, b = "sdnbench-dp"+s.id+"-"+kind+"a", "sdnbench-dp"+s.id+"-"+kind+"b"
	if err := s.addNS(ctx, a); err != nil {
		return "", "", err
	}
	if err := s.addNS(ctx, b); err != nil {
		return "", "", err
	}
	return a, b, nil
}

// kernelBaselines makes one world per MTU (in d.mtus' order) with its
// kernel baselines: namespaces of our own.
func (s *dpSetup) kernelBaselines(ctx context.Context) error {
	for k, mtu := range s.d.mtus {
		w := &world{mtu: mtu, kernel: map[string]endpoints{}}
		s.d.worlds = append(s.d.worlds, w)
		if err := s.kernelWorld(ctx, k, w); err != nil {
			return err
		}
	}
	return nil
}

// kernelWorld sets up w's kernel baselines (w is world k): kernel-veth,
// kernel-vxlan-offload and kernel-vxlan-no-offload, and notes them.
func (s *dpSetup) kernelWorld(ctx context.Context, k int, w *world) error {
	mtu := w.mtu
	veth, onU, onO, offU, offO := kernelNets(k)
	m := strconv.Itoa(mtu)
	a, bns, err := s.nsPair(ctx, "v"+m)
	if err != nil {
		return err
	}
	if err := vethPair(ctx, a, bns, "eth0", veth, mtu); err != nil {
		return err
	}
	w.kernel["kernel-veth"] = endpoints{serverNS: a, clientNS: bns, serverIP: veth + "1"}
	for _, v := range []struct {
		name, kind, under, over string
		off                     bool
	}{{"kernel-vxlan-offload", "x" + m, onU, onO, false}, {"kernel-vxlan-no-offload", "n" + m, offU, offO, true}} {
		a, bns, err := s.nsPair(ctx, v.kind)
		if err != nil {
			return err
		}
		if err := vxlanPair(ctx, a, bns, v.under, v.over, mtu, v.off); err != nil {
			return err
		}
		w.kernel[v.name] = endpoints{serverNS: a, clientNS: bns, serverIP: v.over + "1"}
	}
	noteKernel(s.env, k, mtu)
	return nil
}

// noteKernel notes how the kernel baselines of world k (at mtu) are made.
func noteKernel(env *bench.Env, k, mtu int) {
	veth, onU, onO, offU, offO := kernelNets(k)
	env.Note(fmt.Sprintf("kernel-veth, MTU %d", mtu), fmt.Sprintf("two netns joined by a veth pair (eth0, %s1/24 and .2, MTU %d, default offloads)", veth, mtu))
	env.Note(fmt.Sprintf("kernel-vxlan-offload, MTU %d", mtu), fmt.Sprintf("two netns joined by a veth underlay ul0 (%s1/24 and .2, MTU %d, default offloads); vx0 = vxlan id 42 dstport 4789 over ul0, %s1/24 and .2, MTU %d",
		onU, mtu, onO, mtu-vxlanOverhead))
	env.Note(fmt.Sprintf("kernel-vxlan-no-offload, MTU %d", mtu), fmt.Sprintf("the same (underlay %s0/24, overlay %s0/24), then in both netns: `ethtool -K ul0 %s` and `ethtool -K vx0 %s`",
		offU, offO, noOffloadFlags, noOffloadFlags))
}

// buildBinaries builds sdnd, sdnctl, sdnprobe and the CNI plugin into
// env.Dir/bin for the labs, and returns that directory.
func (s *dpSetup) buildBinaries(ctx context.Context) (string, error) {
	bin := filepath.Join(s.env.Dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	s.env.Logf("building sdnd, sdnctl, sdn, sdnprobe into %s", bin)
	const mod = "github.com/sdn-dev/sdn/"
	for _, args := range [][]string{
		{"-o", bin + "/", mod + "sdnd", mod + "sdnctl", mod + "integration/cmd/sdnprobe"},
		{"-o", filepath.Join(bin, "sdn"), mod + "cni"},
	} {
		if o, err := exec.CommandContext(ctx, "go", append([]string{"build"}, args...)...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", strings.Join(args[2:], " "), err, o)
		}
	}
	s.d.probe = filepath.Join(bin, "sdnprobe")
	return bin, nil
}

// labsUp brings up the labs, one per world and all at once: two hosts
// each, one proj1 workload on each host.
func (s *dpSetup) labsUp(ctx context.Context, bin string) error {
	errs := make([]error, len(s.d.worlds))
	var wg sync.WaitGroup
	for k, w := range s.d.worlds {
		name, dir := "dp"+s.id+strconv.Itoa(w.mtu), filepath.Join(s.env.Dir, "lab"+strconv.Itoa(w.mtu))
		s.mu.Lock()
		s.labs[name] = dir
		s.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = s.labUp(ctx, bin, name, dir, w)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// labUp brings up w's lab and prepares it (prepareLab).
func (s *dpSetup) labUp(ctx context.Context, bin, name, dir string, w *world) error {
	s.env.Logf("lab %s up (2 hosts, underlay MTU %d)", name, w.mtu)
	l, err := lab.Up(ctx, lab.Config{Name: name, Hosts: 2, Dir: dir, Bin: bin, UnderlayMTU: w.mtu})
	if l != nil {
		s.mu.Lock()
		s.upped = append(s.upped, l)
		s.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("lab %s up: %w", name, err)
	}
	return s.d.prepareLab(ctx, s.env, w, l)
}

// prepareLab attaches the two workloads of w's lab l and works out the
// minimal-ovs flows.
func (d *dataplane) prepareLab(ctx context.Context, env *bench.Env, w *world, l *lab.Lab) error {
	w1, err := l.Attach("host1", "proj1", "srv", nil)
	if err != nil {
		return err
	}
	w2, err := l.Attach("host2", "proj1", "cli", nil)
	if err != nil {
		return err
	}
	if err := l.WaitRealized(ctx, time.Minute); err != nil {
		return err
	}
	w.lab, w.ws = l, [2]*lab.Workload{w1, w2}
	w.sdn = endpoints{serverNS: w1.NS, clientNS: w2.NS, serverIP: w1.IP}
	vnid, err := networkVNID(l, w1.Network)
	if err != nil {
		return err
	}
	if w.minimal, err = minimalFlows(ctx, l, w.ws, vnid); err != nil {
		return err
	}
	for i, wl := range w.ws {
		if w.gws[i], w.gwMACs[i], err = gateway(l, wl); err != nil {
			return err
		}
	}
	mtu, _ := l.Exec(w1.NS, "cat", "/sys/class/net/eth0/mtu")
	env.Note(fmt.Sprintf("sdn, MTU %d", w.mtu), fmt.Sprintf("lab %s, 2 hosts (underlay MTU %d, ul0 tx checksum offload off, OVS userspace datapath as the lab runs it), proj1 workloads %s (%s, server) and %s (%s, client), workload eth0 MTU %s (tx checksum offload off)",
		l.Name, w.mtu, w1.ID(), w1.IP, w2.ID(), w2.IP, strings.TrimSpace(mtu)))
	return nil
}

// startAllServers starts the servers in every server namespace (sdn's,
// then the kernel baselines'), for the whole run.
func (d *dataplane) startAllServers(ctx context.Context) error {
	for _, w := range d.worlds {
		eps := []endpoints{w.sdn}
		for _, name := range []string{"kernel-veth", "kernel-vxlan-offload", "kernel-vxlan-no-offload"} {
			eps = append(eps, w.kernel[name])
		}
		for _, e := range eps {
			if err := d.startServers(ctx, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// startServers starts iperf3, sockperf and sdnprobe http-serve in e's
// server namespace and waits until all three listen.
func (d *dataplane) startServers(ctx context.Context, e endpoints) error {
	for _, args := range [][]string{
		{"iperf3", "-s", "-B", e.serverIP, "-p", strconv.Itoa(iperfPort)},
		{"sockperf", "server", "--tcp", "-i", e.serverIP, "-p", strconv.Itoa(sockperfPort), "--timeout=-1"},
		{d.probe, "http-serve", "-listen", netip.AddrPortFrom(netip.MustParseAddr(e.serverIP), httpPort).String()},
	} {
		c := exec.Command("ip", append([]string{"netns", "exec", e.serverNS}, args...)...)
		if err := c.Start(); err != nil {
			return fmt.Errorf("%s server in %s: %w", args[0], e.serverNS, err)
		}
		d.mu.Lock()
		d.servers = append(d.servers, c)
		d.mu.Unlock()
	}
	want := []string{fmt.Sprintf("%s:%d", e.serverIP, iperfPort), fmt.Sprintf("%s:%d", e.serverIP, sockperfPort), fmt.Sprintf("%s:%d", e.serverIP, httpPort)}
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", e.serverNS, "ss", "-Hltn").CombinedOutput()
		missing := []string{}
		for _, a := range want {
			if !strings.Contains(string(out), a) {
				missing = append(missing, a)
			}
		}
		if err == nil && len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("servers in %s: nothing listens on %s after 15 s (ss: %v)", e.serverNS, strings.Join(missing, ", "), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// vethPair joins namespaces a and b by a veth pair named dev on both ends,
// with addresses net+"1"/24 (a) and net+"2"/24 (b) and the given MTU.
func vethPair(ctx context.Context, a, b, dev, net string, mtu int) error {
	if err := run(ctx, "ip", "-n", a, "link", "add", dev, "mtu", strconv.Itoa(mtu), "type", "veth", "peer", "name", dev, "mtu", strconv.Itoa(mtu), "netns", b); err != nil {
		return err
	}
	for i, ns := range []string{a, b} {
		if err := run(ctx, "ip", "-n", ns, "addr", "add", net+strconv.Itoa(i+1)+"/24", "dev", dev); err != nil {
			return err
		}
		if err := run(ctx, "ip", "-n", ns, "link", "set", dev, "up"); err != nil {
			return err
		}
	}
	return nil
}

// vxlanPair joins a and b by a veth underlay ul0 (under+"1"/24, "2", MTU
// mtu) and a VXLAN vx0 on each end (id 42, port 4789, over+"1"/24, "2", MTU
// mtu-50); noOffload turns offloads off on ul0 and vx0 on both ends.
func vxlanPair(ctx context.Context, a, b, under, over string, mtu int, noOffload bool) error {
	if err := vethPair(ctx, a, b, "ul0", under, mtu); err != nil {
		return err
	}
	for i, ns := range []string{a, b} {
		local, remote := under+strconv.Itoa(i+1), under+strconv.Itoa(2-i)
		if err := run(ctx, "ip", "-n", ns, "link", "add", "vx0", "type", "vxlan", "id", "42", "dstport", "4789",
			"local", local, "remote", remote, "dev", "ul0"); err != nil {
			return err
		}
		if err := run(ctx, "ip", "-n", ns, "link", "set", "vx0", "mtu", strconv.Itoa(mtu-vxlanOverhead), "up"); err != nil {
			return err
		}
		if err := run(ctx, "ip", "-n", ns, "addr", "add", over+strconv.Itoa(i+1)+"/24", "dev", "vx0"); err != nil {
			return err
		}
		if noOffload {
			for _, dev := range []string{"ul0", "vx0"} {
				args := append([]string{"netns", "exec", ns, "ethtool", "-K", dev}, strings.Fields(noOffloadFlags)...)
				if err := run(ctx, "ip", args...); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func run(ctx context.Context, prog string, args ...string) error {
	if out, err := exec.CommandContext(ctx, prog, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", prog, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// noteMinimal notes how the minimal-ovs variant is made, with the first
// world's flows.
func (d *dataplane) noteMinimal(env *bench.Env) {
	env.Note("minimal-ovs", fmt.Sprintf("the sdn labs (same bridges, ports, MTU, offloads, servers; sdnd keeps running), around each of its measurements: "+
		"`ip neigh replace GW lladdr GWMAC nud permanent dev eth0` in both workloads (the flows answer no ARP), then on each host's br-int "+
		"`ovs-ofctl add-flow` of one flow per direction at priority %d, cookie %s (not sdn's, so sdnd's reconciler leaves them alone), "+
		"above every flow of sdn's pipeline, so the classifier stops there and the datapath flows are those of a one-rule table; "+
		"after the measurement they carried (checked: every one of them counted packets) they and the neighbour entries are deleted and the server pinged from the client. "+
		"MTU %d: host1 `%s`, host2 `%s`",
		minimalPriority, minimalCookie, d.worlds[0].mtu, strings.Join(d.worlds[0].minimal[0], "` `"), strings.Join(d.worlds[0].minimal[1], "` `")))
}
