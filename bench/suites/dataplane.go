package suites

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sdn-dev/sdn/bench"
	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/integration/lab"
	"github.com/sdn-dev/sdn/model"
)

// Dataplane measures traffic between proj1 workloads on two hosts of a lab
// (real sdnd, OVS with the userspace datapath, CNI plugin), at underlay MTU
// 1500 and 9000 (one lab each): TCP throughput (iperf3), TCP
// request/response round trip (sockperf ping-pong), new TCP connections per
// second (wrk, "Connection: close") and, for the OVS variants, CPU seconds
// of both hosts' ovs-vswitchd per GB received. Baselines: a kernel veth
// pair, kernel VXLAN over a veth underlay with offloads on and off, and
// minimal-ovs: the same labs with br-int's pipeline bypassed by one
// forwarding flow per direction, which says what sdn's pipeline costs over
// OVS itself.
//
// Each MTU and kind of measurement is one batch (throughput and CPU come
// from the same iperf3 run), so within a round sdn and minimal-ovs are
// measured a few seconds apart; minimal-ovs switches its lab's flows on and
// off around each of its measurements (a few flow-mods, no restart).
func Dataplane() bench.Suite {
	d := &dataplane{mtus: []int{1500, 9000}}
	var batches []bench.Batch
	for k, m := range d.mtus {
		vsAll := func(kind metric, ovsFigs, kernelFigs []string) []bench.BatchVariant {
			// sdn and minimal-ovs back to back: their ratio is the
			// pipeline's cost.
			return []bench.BatchVariant{
				{Name: "sdn", Figures: ovsFigs, Run: d.measure(k, kind, "sdn")},
				{Name: "minimal-ovs", Figures: ovsFigs, Run: d.measure(k, kind, "minimal-ovs")},
				{Name: "kernel-vxlan-no-offload", Figures: kernelFigs, Run: d.measure(k, kind, "kernel-vxlan-no-offload")},
				{Name: "kernel-vxlan-offload", Figures: kernelFigs, Run: d.measure(k, kind, "kernel-vxlan-offload")},
				{Name: "kernel-veth", Figures: kernelFigs, Run: d.measure(k, kind, "kernel-veth")},
			}
		}
		thr, cpu, rtt, conns := figThroughput(m), figCPU(m), figRTT(m), figConns(m)
		batches = append(batches,
			bench.Batch{
				Figures: []bench.Figure{
					{Name: thr, Unit: "Gbit/s", HigherIsBetter: true, Ratios: [][2]string{
						{"sdn", "minimal-ovs"}, {"sdn", "kernel-vxlan-no-offload"}, {"sdn", "kernel-vxlan-offload"}, {"minimal-ovs", "kernel-vxlan-no-offload"}}},
					{Name: cpu, Unit: "CPU s/GB", Ratios: [][2]string{{"sdn", "minimal-ovs"}}},
				},
				Variants: vsAll(throughput, []string{thr, cpu}, []string{thr}),
			},
			bench.Batch{
				Figures:  []bench.Figure{{Name: rtt, Unit: "µs", Ratios: [][2]string{{"sdn", "minimal-ovs"}, {"sdn", "kernel-vxlan-no-offload"}}}},
				Variants: vsAll(roundTrip, nil, nil),
			},
			bench.Batch{
				Figures:  []bench.Figure{{Name: conns, Unit: "conn/s", HigherIsBetter: true, Ratios: [][2]string{{"sdn", "minimal-ovs"}, {"sdn", "kernel-vxlan-no-offload"}}}},
				Variants: vsAll(connections, nil, nil),
			},
		)
	}
	return bench.Suite{
		Name: "dataplane",
		Description: "TCP throughput (iperf3), request/response round trip (sockperf), connections/s (wrk) and ovs-vswitchd CPU per GB between proj1 workloads on two lab hosts, " +
			"at underlay MTU 1500 and 9000, vs the same labs with br-int reduced to one flow per direction (minimal-ovs), kernel VXLAN (offloads off and on) and a kernel veth pair.",
		Setup:   d.setup,
		Batches: batches,
	}
}

// metric is what one batch measures.
type metric int

const (
	throughput  metric = iota // iperf3, and ovs-vswitchd CPU for the OVS variants
	roundTrip                 // sockperf ping-pong
	connections               // wrk
)

func figThroughput(mtu int) string { return fmt.Sprintf("TCP throughput, underlay MTU %d", mtu) }
func figRTT(mtu int) string {
	return fmt.Sprintf("TCP request/response round trip, median, underlay MTU %d", mtu)
}
func figConns(mtu int) string { return fmt.Sprintf("new TCP connections/s, underlay MTU %d", mtu) }
func figCPU(mtu int) string {
	return fmt.Sprintf("ovs-vswitchd CPU per GB received, underlay MTU %d", mtu)
}

// Ports of the servers running in every server namespace.
const (
	iperfPort    = 5201
	sockperfPort = 11111
	httpPort     = 8080
)

// endpoints is where one variant's servers listen and its clients run.
type endpoints struct {
	serverNS, clientNS string
	serverIP           string
}

// world is everything measured at one underlay MTU: a lab with a proj1
// workload on host1 (server) and host2 (client), and the kernel baselines.
type world struct {
	mtu    int
	lab    *lab.Lab
	ws     [2]*lab.Workload
	sdn    endpoints
	kernel map[string]endpoints // by variant name
	// minimal-ovs: br-int flows per host, and each workload's gateway
	// and the MAC sdn's ARP responder gives it.
	minimal [2][]string
	gws     [2]netip.Addr
	gwMACs  [2]string
}

type dataplane struct {
	mtus   []int
	worlds []*world
	tools  toolSettings
	probe  string // sdnprobe binary

	mu      sync.Mutex
	servers []*exec.Cmd
	rounds  map[string]int // variant/world/metric → runs so far
}

// skipRound reports whether this run of a variant (key: variant and batch)
// is to be skipped. A full run measures everything in every round; a quick
// one (a smoke test, CI's, to stay well under 3 minutes) measures the round
// trip (sockperf sleeps 2 s after its warm-up whatever -t says) and the
// kernel baselines other than kernel-vxlan-no-offload (the same code path)
// in its first round only.
func (d *dataplane) skipRound(key, variant string, kind metric) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rounds == nil {
		d.rounds = map[string]int{}
	}
	d.rounds[key]++
	once := kind == roundTrip || variant == "kernel-vxlan-offload" || variant == "kernel-veth"
	return d.tools.quick && once && d.rounds[key] > 1
}

// minimalCookie marks the minimal-ovs flows: not sdn's AppTag, so sdnd's
// reconciler leaves them alone, and easy to delete by cookie.
const minimalCookie = "0x5db0"

// minimalPriority is above every flow sdn installs, so in table 0 the
// minimal flows take every packet of the two workloads' ports and the
// tunnel, and the classifier looks no further (the datapath flows match
// what a one-rule table would).
const minimalPriority = 65535

// measure returns variant's Run in a batch: one measurement of kind in
// world k.
func (d *dataplane) measure(k int, kind metric, variant string) func(context.Context, *bench.Env) (map[string]float64, error) {
	return func(ctx context.Context, env *bench.Env) (vals map[string]float64, err error) {
		vals = map[string]float64{}
		if d.skipRound(fmt.Sprintf("%s/%d/%d", variant, k, kind), variant, kind) {
			return vals, nil
		}
		w := d.worlds[k]
		defer func() {
			if err != nil {
				err = fmt.Errorf("MTU %d: %w", w.mtu, err)
			}
		}()
		switch variant {
		case "sdn":
			for i := 1; i <= 2; i++ {
				n, err := minimalFlowPackets(ctx, w.lab, i)
				if err != nil {
					return nil, err
				}
				if len(n) > 0 {
					return nil, fmt.Errorf("%s: br-int still holds minimal-ovs flows (cookie %s); sdn would not be measured", lab.HostName(i), minimalCookie)
				}
			}
			return vals, d.measureEndpoints(ctx, w, w.sdn, kind, true, vals)
		case "minimal-ovs":
			return vals, d.measureMinimal(ctx, w, kind, vals)
		default:
			return vals, d.measureEndpoints(ctx, w, w.kernel[variant], kind, false, vals)
		}
	}
}

// measureEndpoints measures kind between e's namespaces into vals; with
// ovsCPU (the lab's endpoints) also the CPU both hosts' ovs-vswitchd spend
// on the iperf3 run.
func (d *dataplane) measureEndpoints(ctx context.Context, w *world, e endpoints, kind metric, ovsCPU bool, vals map[string]float64) error {
	var err error
	switch kind {
	case throughput:
		var cpu0, cpu1 time.Duration
		if ovsCPU {
			if cpu0, err = vswitchdCPU(w.lab); err != nil {
				return err
			}
		}
		tr, err := d.tools.iperf(ctx, e)
		if err != nil {
			return err
		}
		vals[figThroughput(w.mtu)] = tr.gbps
		if ovsCPU {
			if cpu1, err = vswitchdCPU(w.lab); err != nil {
				return err
			}
			vals[figCPU(w.mtu)] = (cpu1 - cpu0).Seconds() / (float64(tr.bytes) / 1e9)
		}
	case roundTrip:
		vals[figRTT(w.mtu)], err = d.tools.sockperf(ctx, e)
	case connections:
		vals[figConns(w.mtu)], err = d.tools.wrk(ctx, e)
	}
	return err
}

// measureMinimal bypasses sdn's pipeline in w's lab with the minimal flows,
// measures, checks they carried the traffic, and puts sdn back (also when
// the measurement failed).
func (d *dataplane) measureMinimal(ctx context.Context, w *world, kind metric, vals map[string]float64) (err error) {
	defer func() {
		if rerr := d.restoreSDN(ctx, w); rerr != nil {
			err = errors.Join(err, fmt.Errorf("restoring sdn: %w", rerr))
		}
	}()
	for i, wl := range w.ws {
		if out, err := w.lab.Exec(wl.NS, "ip", "neigh", "replace", w.gws[i].String(), "lladdr", w.gwMACs[i], "nud", "permanent", "dev", "eth0"); err != nil {
			return fmt.Errorf("%s: ip neigh replace: %w: %s", wl.NS, err, out)
		}
		for _, f := range w.minimal[i] {
			if _, err := w.lab.OVS(i+1).Ofctl(ctx, "-O", "OpenFlow15", "add-flow", "br-int", f); err != nil {
				return err
			}
		}
	}
	if err := d.measureEndpoints(ctx, w, w.sdn, kind, true, vals); err != nil {
		return err
	}
	for i := 1; i <= 2; i++ {
		n, err := minimalFlowPackets(ctx, w.lab, i)
		if err != nil {
			return err
		}
		if len(n) != len(w.minimal[i-1]) || slices.Contains(n, 0) {
			return fmt.Errorf("%s: the minimal-ovs flows counted %v packets; each should have carried the traffic", lab.HostName(i), n)
		}
	}
	return nil
}

// restoreSDN deletes the minimal flows and the permanent neighbour
// entries, and checks the client reaches the server through sdn again.
func (d *dataplane) restoreSDN(ctx context.Context, w *world) error {
	var errs []error
	for i, wl := range w.ws {
		if _, err := w.lab.OVS(i+1).Ofctl(ctx, "-O", "OpenFlow15", "del-flows", "br-int", "cookie="+minimalCookie+"/-1"); err != nil {
			errs = append(errs, err)
		}
		if out, err := w.lab.Exec(wl.NS, "ip", "neigh", "del", w.gws[i].String(), "dev", "eth0"); err != nil && !strings.Contains(out, "No such file") {
			errs = append(errs, fmt.Errorf("%s: ip neigh del: %w: %s", wl.NS, err, out))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// The first packet may wait for ARP (now answered by sdn's flows).
	var err error
	for try := 0; try < 5; try++ {
		if _, err = w.lab.Exec(w.sdn.clientNS, "ping", "-c", "1", "-W", "1", w.sdn.serverIP); err == nil {
			return nil
		}
	}
	return fmt.Errorf("sdn does not carry traffic after the minimal-ovs flows were removed: %w", err)
}

// minimalFlowPackets returns the packet counts of host i's minimal-ovs
// flows on br-int (none when there are none).
func minimalFlowPackets(ctx context.Context, l *lab.Lab, i int) ([]int, error) {
	out, err := l.OVS(i).Ofctl(ctx, "-O", "OpenFlow15", "dump-flows", "br-int", "cookie="+minimalCookie+"/-1")
	if err != nil {
		return nil, err
	}
	var ns []int
	for _, line := range strings.Split(out, "\n") {
		for _, f := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' }) {
			if v, ok := strings.CutPrefix(f, "n_packets="); ok {
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, fmt.Errorf("%s: dump-flows: %q: %w", lab.HostName(i), line, err)
				}
				ns = append(ns, n)
			}
		}
	}
	return ns, nil
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

// minimalFlows returns, for host1 and host2, the minimal-ovs flows: the
// workload's port to the tunnel toward the other host (with the network's
// VNID), and the tunnel to the workload's port (with its MAC as
// destination).
func minimalFlows(ctx context.Context, l *lab.Lab, ws [2]*lab.Workload, vnid uint32) ([2][]string, error) {
	var flows [2][]string
	for i, w := range ws {
		host, peer := i+1, 2-i
		veth := link.HostVethName(w.ContainerID, "eth0")
		out, err := l.OVS(host).Vsctl(ctx, "get", "Interface", veth, "ofport")
		if err != nil {
			return flows, err
		}
		port, err := strconv.Atoi(strings.TrimSpace(out))
		if err != nil || port <= 0 {
			return flows, fmt.Errorf("%s: ofport of %s is %q", lab.HostName(host), veth, strings.TrimSpace(out))
		}
		mac, err := l.Exec(w.NS, "cat", "/sys/class/net/eth0/address")
		if err != nil {
			return flows, err
		}
		head := fmt.Sprintf("cookie=%s,priority=%d,", minimalCookie, minimalPriority)
		flows[i] = []string{
			head + fmt.Sprintf("in_port=%d,actions=set_field:%s->tun_dst,set_field:%d->tun_id,output:%d", port, l.HostIP(peer), vnid, tunnelOFPort),
			head + fmt.Sprintf("in_port=%d,actions=set_field:%s->eth_dst,output:%d", tunnelOFPort, strings.TrimSpace(mac), port),
		}
	}
	return flows, nil
}

// gateway returns the default gateway of a workload's namespace and the MAC
// sdn's ARP responder gives it (datapath/host: model.MACForIP).
func gateway(l *lab.Lab, w *lab.Workload) (netip.Addr, string, error) {
	out, err := l.Exec(w.NS, "ip", "-4", "route", "show", "default")
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
			return gw, model.MACForIP(gw).String(), nil
		}
	}
	return netip.Addr{}, "", fmt.Errorf("%s: no default gateway in %q", w.NS, out)
}

// vswitchdCPU is the CPU time (user + system, all threads) both hosts'
// ovs-vswitchd have used so far.
func vswitchdCPU(l *lab.Lab) (time.Duration, error) {
	var sum time.Duration
	for i := 1; i <= 2; i++ {
		pid := l.VswitchdPID(i)
		if pid == 0 {
			return 0, fmt.Errorf("%s: ovs-vswitchd is not running", lab.HostName(i))
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		t, err := procCPU(stat)
		if err != nil {
			return 0, fmt.Errorf("%s: ovs-vswitchd (pid %d): %w", lab.HostName(i), pid, err)
		}
		sum += t
	}
	return sum, nil
}
