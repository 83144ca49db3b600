package suites

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sdn-dev/sdn/bench"
	"github.com/sdn-dev/sdn/cluster/alloc"
	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/integration/lab"
)

// Dataplane measures TCP throughput (iperf3) between workloads on two hosts
// of a lab (real sdnd, OVS, CNI plugin), against kernel baselines in
// namespaces of its own: a plain veth pair, and VXLAN over a veth underlay
// with offloads on and off; and minimal-ovs: the same lab with sdnd stopped
// and br-int's pipeline replaced by one forwarding flow per direction, which
// says what sdn's pipeline costs over OVS itself. Underlay MTU 1500 only.
func Dataplane() bench.Suite {
	d := &dataplane{}
	return bench.Suite{
		Name:        "dataplane",
		Description: "TCP throughput (iperf3) between proj1 workloads on two lab hosts vs kernel veth, kernel VXLAN (offloads on/off) and the same lab with br-int reduced to one flow per direction (minimal-ovs), underlay MTU 1500.",
		Setup:       d.setup,
		Figures: []bench.Figure{{
			Name: "TCP throughput across hosts (Gbit/s)", Unit: "Gbit/s", HigherIsBetter: true,
			Variants: []bench.Variant{
				{Name: "sdn", Run: d.run(&d.sdn)},
				{Name: "kernel-veth", Run: d.run(&d.veth)},
				{Name: "kernel-vxlan-offload", Run: d.run(&d.vxOn)},
				{Name: "kernel-vxlan-no-offload", Run: d.run(&d.vxOff)},
				{Name: "minimal-ovs", Run: d.minimalOVS},
			},
			Ratios: [][2]string{{"sdn", "kernel-vxlan-no-offload"}, {"sdn", "kernel-veth"}, {"sdn", "minimal-ovs"}},
		}},
	}
}

// iperfPair is where one variant's iperf3 server listens and its client runs.
type iperfPair struct {
	serverNS, clientNS string
	serverIP           string
}

type dataplane struct {
	seconds                int
	sdn, veth, vxOn, vxOff iperfPair
	servers                []*exec.Cmd
	lab                    *lab.Lab
	ws                     [2]*lab.Workload // server (host1), client (host2)
	vnid                   uint32           // proj1's
}

// noOffloadFlags is what the no-offload variant turns off, with
// `ethtool -K DEV <flags>` on ul0 and vx0 in both of its namespaces.
const noOffloadFlags = "tx off rx off tso off gso off gro off"

// Kernel baselines' addresses (all in 198.18.0.0/15, the project's range).
const (
	vethNet    = "198.18.201." // veth pair, /24
	vxOnUnder  = "198.18.200." // underlay veth of the offload variant
	vxOnOver   = "198.19.200." // its VXLAN
	vxOffUnder = "198.18.202."
	vxOffOver  = "198.19.202."
	vxlanMTU   = 1450
)

func (d *dataplane) setup(ctx context.Context, env *bench.Env) (func(), error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root (network namespaces, OVS, sdnd); run as root")
	}
	for _, bin := range []string{"iperf3", "ethtool", "ip", "ovs-vswitchd", "ovsdb-server", "ovs-vsctl", "go"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("needs %s (%v); run `make deps` as root", bin, err)
		}
	}
	d.seconds = 4
	if env.Quick {
		d.seconds = 2
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	var nss []string
	var l *lab.Lab
	labName := "dp" + id
	labDir := filepath.Join(env.Dir, "lab")
	teardown := func() {
		for _, c := range d.servers {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		for _, ns := range nss {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				env.Logf("teardown: ip netns del %s: %v: %s", ns, err, out)
			}
		}
		if l != nil {
			if err := l.Down(); err != nil {
				env.Logf("teardown: lab %s down: %v", labName, err)
			}
		} else if ol, err := lab.Open(labName, labDir, nil); err == nil {
			if _, serr := os.Stat(labDir); serr == nil {
				if err := ol.Down(); err != nil {
					env.Logf("teardown: lab %s down: %v", labName, err)
				}
			}
		}
	}

	// Kernel baselines: namespaces of our own.
	addNS := func(name string) error {
		if out, err := exec.CommandContext(ctx, "ip", "netns", "add", name).CombinedOutput(); err != nil {
			return fmt.Errorf("ip netns add %s: %v: %s", name, err, out)
		}
		nss = append(nss, name)
		return run(ctx, "ip", "-n", name, "link", "set", "lo", "up")
	}
	pair := func(kind string) (string, string, error) {
		a, b := "sdnbench-dp"+id+"-"+kind+"a", "sdnbench-dp"+id+"-"+kind+"b"
		if err := addNS(a); err != nil {
			return "", "", err
		}
		if err := addNS(b); err != nil {
			return "", "", err
		}
		return a, b, nil
	}
	a, bns, err := pair("v")
	if err != nil {
		return teardown, err
	}
	if err := vethPair(ctx, a, bns, "eth0", vethNet); err != nil {
		return teardown, err
	}
	d.veth = iperfPair{serverNS: a, clientNS: bns, serverIP: vethNet + "1"}

	for _, v := range []struct {
		kind, under, over string
		off               bool
		p                 *iperfPair
	}{{"x", vxOnUnder, vxOnOver, false, &d.vxOn}, {"n", vxOffUnder, vxOffOver, true, &d.vxOff}} {
		a, bns, err := pair(v.kind)
		if err != nil {
			return teardown, err
		}
		if err := vxlanPair(ctx, a, bns, v.under, v.over, v.off); err != nil {
			return teardown, err
		}
		*v.p = iperfPair{serverNS: a, clientNS: bns, serverIP: v.over + "1"}
	}
	env.Note("kernel-veth", fmt.Sprintf("two netns joined by a veth pair (eth0, %s1/24 and .2, MTU 1500, default offloads)", vethNet))
	env.Note("kernel-vxlan", fmt.Sprintf("two netns joined by a veth underlay ul0 (%s1/24 and .2, MTU 1500); vx0 = vxlan id 42 dstport 4789 over ul0, %s1/24 and .2, MTU %d", vxOnUnder, vxOnOver, vxlanMTU))
	env.Note("kernel-vxlan-no-offload", fmt.Sprintf("the same (underlay %s0/24, overlay %s0/24), then in both netns: `ethtool -K ul0 %s` and `ethtool -K vx0 %s`", vxOffUnder, vxOffOver, noOffloadFlags, noOffloadFlags))

	// The lab: two hosts, one proj1 workload on each.
	bin := filepath.Join(env.Dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return teardown, err
	}
	env.Logf("building sdnd, sdnctl, sdn into %s", bin)
	for out, pkg := range map[string]string{"sdnd": "sdnd", "sdnctl": "sdnctl", "sdn": "cni"} {
		if o, err := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, out), "github.com/sdn-dev/sdn/"+pkg).CombinedOutput(); err != nil {
			return teardown, fmt.Errorf("go build %s: %v\n%s", pkg, err, o)
		}
	}
	env.Logf("lab %s up (2 hosts)", labName)
	if l, err = lab.Up(ctx, lab.Config{Name: labName, Hosts: 2, Dir: labDir, Bin: bin}); err != nil {
		return teardown, fmt.Errorf("lab up: %w", err)
	}
	w1, err := l.Attach("host1", "proj1", "iperfs", nil)
	if err != nil {
		return teardown, err
	}
	w2, err := l.Attach("host2", "proj1", "iperfc", nil)
	if err != nil {
		return teardown, err
	}
	if err := l.WaitRealized(ctx, time.Minute); err != nil {
		return teardown, err
	}
	d.sdn = iperfPair{serverNS: w1.NS, clientNS: w2.NS, serverIP: w1.IP}
	d.lab, d.ws = l, [2]*lab.Workload{w1, w2}
	if d.vnid, err = networkVNID(l, w1.Network); err != nil {
		return teardown, err
	}
	mtu, _ := l.Exec(w1.NS, "cat", "/sys/class/net/eth0/mtu")
	env.Note("sdn", fmt.Sprintf("lab %s, 2 hosts (underlay MTU 1500, OVS per host as the lab runs it), proj1 workloads %s (%s, server) and %s (%s, client), workload eth0 MTU %s",
		labName, w1.ID(), w1.IP, w2.ID(), w2.IP, strings.TrimSpace(mtu)))

	// One iperf3 server per variant, in the server namespace, for the run.
	for _, p := range []iperfPair{d.sdn, d.veth, d.vxOn, d.vxOff} {
		c := exec.Command("ip", "netns", "exec", p.serverNS, "iperf3", "-s", "-B", p.serverIP)
		if err := c.Start(); err != nil {
			return teardown, fmt.Errorf("iperf3 server in %s: %w", p.serverNS, err)
		}
		d.servers = append(d.servers, c)
	}
	mf, err := d.minimalFlows(ctx)
	if err != nil {
		return teardown, err
	}
	env.Note("minimal-ovs", fmt.Sprintf("the sdn lab (same bridges, ports, MTU, offloads, iperf3 server), per round: both hosts' sdnd killed (SIGKILL), "+
		"`ip neigh replace GW lladdr GWMAC nud permanent dev eth0` in both workloads (no ARP responder), br-int's flows replaced (`ovs-ofctl -O OpenFlow15 replace-flows`) by one flow per direction: "+
		"%s; afterwards those flows and neighbour entries deleted, sdnd started on both hosts, WaitRealized, br-int's flows checked back and the server pinged from the client",
		fmt.Sprintf("host1 `%s`, host2 `%s`", strings.Join(mf[0], "` `"), strings.Join(mf[1], "` `"))))
	env.Note("iperf3", fmt.Sprintf("client `iperf3 -c SERVER -t %d -J` (one TCP stream, default settings), figure = end.sum_received.bits_per_second; one server per variant for the whole run; MTU 9000 not measured", d.seconds))
	return teardown, nil
}

// vethPair joins namespaces a and b by a veth pair named dev on both ends,
// with addresses net+"1"/24 (a) and net+"2"/24 (b).
func vethPair(ctx context.Context, a, b, dev, net string) error {
	if err := run(ctx, "ip", "-n", a, "link", "add", dev, "type", "veth", "peer", "name", dev, "netns", b); err != nil {
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

// vxlanPair joins a and b by a veth underlay ul0 (under+"1"/24, "2") and a
// VXLAN vx0 on each end (id 42, port 4789, over+"1"/24, "2", MTU 1450);
// noOffload turns offloads off on ul0 and vx0 on both ends.
func vxlanPair(ctx context.Context, a, b, under, over string, noOffload bool) error {
	if err := vethPair(ctx, a, b, "ul0", under); err != nil {
		return err
	}
	for i, ns := range []string{a, b} {
		local, remote := under+strconv.Itoa(i+1), under+strconv.Itoa(2-i)
		if err := run(ctx, "ip", "-n", ns, "link", "add", "vx0", "type", "vxlan", "id", "42", "dstport", "4789",
			"local", local, "remote", remote, "dev", "ul0"); err != nil {
			return err
		}
		if err := run(ctx, "ip", "-n", ns, "link", "set", "vx0", "mtu", strconv.Itoa(vxlanMTU), "up"); err != nil {
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

// run returns a variant measuring p: one iperf3 client run, in Gbit/s. The
// server may still be starting in the first round: a refused connection is
// retried for a few seconds.
func (d *dataplane) run(p *iperfPair) func(context.Context, *bench.Env) (float64, error) {
	return func(ctx context.Context, env *bench.Env) (float64, error) {
		deadline := time.Now().Add(5 * time.Second)
		for {
			cctx, cancel := context.WithTimeout(ctx, time.Duration(d.seconds+15)*time.Second)
			out, err := exec.CommandContext(cctx, "ip", "netns", "exec", p.clientNS,
				"iperf3", "-c", p.serverIP, "-t", strconv.Itoa(d.seconds), "-J").Output()
			cancel()
			gbps, perr := iperfGbps(out)
			if perr == nil && err == nil {
				return gbps, nil
			}
			if perr == nil {
				perr = err
			}
			if time.Now().After(deadline) || !strings.Contains(perr.Error(), "refused") || ctx.Err() != nil {
				return 0, fmt.Errorf("iperf3 -c %s in %s: %w", p.serverIP, p.clientNS, perr)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// iperfGbps returns end.sum_received.bits_per_second of iperf3 -J output,
// in Gbit/s, or iperf3's own error.
func iperfGbps(out []byte) (float64, error) {
	var r struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return 0, fmt.Errorf("iperf3 output is not JSON: %v: %.200q", err, out)
	}
	if r.Error != "" {
		return 0, errors.New(r.Error)
	}
	if r.End.SumReceived.BitsPerSecond <= 0 {
		return 0, fmt.Errorf("iperf3 reported no received bits: %.200q", out)
	}
	return r.End.SumReceived.BitsPerSecond / 1e9, nil
}

// networkVNID is the VNID of network name, from `sdnctl get networks`.
func networkVNID(l *lab.Lab, name string) (uint32, error) {
	out, err := l.Sdnctl("get", "networks")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == name {
			v, err := strconv.ParseUint(f[1], 10, 24)
			if err != nil {
				return 0, fmt.Errorf("sdnctl get networks: VNID of %s: %w", name, err)
			}
			return uint32(v), nil
		}
	}
	return 0, fmt.Errorf("sdnctl get networks: no network %s in\n%s", name, out)
}

// tunnelOFPort is sdn-tun0's OpenFlow port (datapath/host).
const tunnelOFPort = 1

// minimalFlows returns, for host1 and host2, br-int's minimal flows: the
// workload's port to the tunnel toward the other host, and the tunnel to the
// workload's port (with its MAC as destination).
func (d *dataplane) minimalFlows(ctx context.Context) ([2][]string, error) {
	var flows [2][]string
	for i, w := range d.ws {
		host, peer := i+1, 2-i
		veth := link.HostVethName(w.ContainerID, "eth0")
		out, err := d.lab.OVS(host).Vsctl(ctx, "get", "Interface", veth, "ofport")
		if err != nil {
			return flows, err
		}
		port, err := strconv.Atoi(strings.TrimSpace(out))
		if err != nil || port <= 0 {
			return flows, fmt.Errorf("%s: ofport of %s is %q", lab.HostName(host), veth, strings.TrimSpace(out))
		}
		mac, err := d.lab.Exec(w.NS, "cat", "/sys/class/net/eth0/address")
		if err != nil {
			return flows, err
		}
		flows[i] = []string{
			fmt.Sprintf("in_port=%d,actions=set_field:%s->tun_dst,set_field:%d->tun_id,output:%d", port, d.lab.HostIP(peer), d.vnid, tunnelOFPort),
			fmt.Sprintf("in_port=%d,actions=set_field:%s->eth_dst,output:%d", tunnelOFPort, strings.TrimSpace(mac), port),
		}
	}
	return flows, nil
}

// gateway returns the default gateway of a workload's namespace and the MAC
// sdn's ARP responder gives it (datapath/host: alloc.MACForIP).
func (d *dataplane) gateway(w *lab.Workload) (netip.Addr, string, error) {
	out, err := d.lab.Exec(w.NS, "ip", "-4", "route", "show", "default")
	if err != nil {
		return netip.Addr{}, "", err
	}
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "via" {
			gw, err := netip.ParseAddr(f[i+1])
			if err != nil {
				return netip.Addr{}, "", fmt.Errorf("%s: default route %q: %w", w.NS, out, err)
			}
			return gw, alloc.MACForIP(gw).String(), nil
		}
	}
	return netip.Addr{}, "", fmt.Errorf("%s: no default gateway in %q", w.NS, out)
}

// minimalOVS measures the sdn lab with br-int's pipeline replaced by
// minimalFlows and sdnd stopped, then puts sdn back (and checks it works)
// whether or not the measurement succeeded.
func (d *dataplane) minimalOVS(ctx context.Context, env *bench.Env) (gbps float64, err error) {
	flows, err := d.minimalFlows(ctx)
	if err != nil {
		return 0, err
	}
	var gws [2]netip.Addr
	var gwMACs [2]string
	for i, w := range d.ws {
		if gws[i], gwMACs[i], err = d.gateway(w); err != nil {
			return 0, err
		}
	}
	for i := range d.ws {
		if err := d.lab.KillSDND(i + 1); err != nil {
			return 0, errors.Join(err, d.restoreSDN(ctx, gws))
		}
	}
	defer func() {
		if rerr := d.restoreSDN(ctx, gws); rerr != nil {
			err = errors.Join(err, fmt.Errorf("restoring sdn: %w", rerr))
		}
	}()
	for i, w := range d.ws {
		if out, err := d.lab.Exec(w.NS, "ip", "neigh", "replace", gws[i].String(), "lladdr", gwMACs[i], "nud", "permanent", "dev", "eth0"); err != nil {
			return 0, fmt.Errorf("%s: ip neigh replace: %w: %s", w.NS, err, out)
		}
		file := filepath.Join(env.Dir, fmt.Sprintf("minimal-ovs-%s.flows", lab.HostName(i+1)))
		if err := os.WriteFile(file, []byte(strings.Join(flows[i], "\n")+"\n"), 0o644); err != nil {
			return 0, err
		}
		if _, err := d.lab.OVS(i+1).Ofctl(ctx, "-O", "OpenFlow15", "replace-flows", "br-int", file); err != nil {
			return 0, err
		}
	}
	return d.run(&d.sdn)(ctx, env)
}

// restoreSDN deletes the minimal flows (sdnd's reconciler leaves flows
// without its cookie alone) and the permanent neighbour entries, starts both
// sdnd, waits until they realized, checks br-int holds sdn's pipeline again
// and that the client reaches the server.
func (d *dataplane) restoreSDN(ctx context.Context, gws [2]netip.Addr) error {
	var errs []error
	for i, w := range d.ws {
		if _, err := d.lab.OVS(i+1).Ofctl(ctx, "-O", "OpenFlow15", "del-flows", "br-int"); err != nil {
			errs = append(errs, err)
		}
		if out, err := d.lab.Exec(w.NS, "ip", "neigh", "del", gws[i].String(), "dev", "eth0"); err != nil && !strings.Contains(out, "No such file") {
			errs = append(errs, fmt.Errorf("%s: ip neigh del: %w: %s", w.NS, err, out))
		}
	}
	for i := range d.ws {
		if err := d.lab.StartSDND(ctx, i+1); err != nil {
			return errors.Join(append(errs, err)...)
		}
	}
	if err := d.lab.WaitRealized(ctx, time.Minute); err != nil {
		return errors.Join(append(errs, err)...)
	}
	// WaitRealized may see revisions the killed agents reported: check
	// that the pipeline is back and carries traffic.
	deadline := time.Now().Add(time.Minute)
	for {
		var why string
		for i := range d.ws {
			out, err := d.lab.OVS(i+1).Ofctl(ctx, "-O", "OpenFlow15", "dump-flows", "--no-stats", "br-int")
			if n := strings.Count(out, "cookie="); err != nil || n < 10 {
				why = fmt.Sprintf("%s: br-int holds %d flows (%v)", lab.HostName(i+1), n, err)
			}
		}
		if why == "" {
			out, err := d.lab.Exec(d.sdn.clientNS, "ping", "-c", "1", "-W", "1", d.sdn.serverIP)
			if err == nil {
				return errors.Join(errs...)
			}
			why = fmt.Sprintf("ping %s from %s: %v: %s", d.sdn.serverIP, d.sdn.clientNS, err, strings.TrimSpace(out))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return errors.Join(append(errs, errors.New("sdn not back after restart: "+why))...)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
