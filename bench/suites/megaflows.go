package suites

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sdn-dev/sdn/bench"
	"github.com/sdn-dev/sdn/integration/lab"
)

// Megaflows measures what OVS's datapath caches after a defined traffic
// mix: megaflows and their masks on each host of a two-host lab, in both
// isolation modes that isolate networks. The datapath looks a packet up
// once per distinct mask (per in_port subtable in the userspace datapath),
// so a flow table that unwildcards fields per connection shows up here as
// masks in the hundreds; the goal is tens.
//
// Each measurement sets the cluster's isolation mode (live, through the
// API), empties both datapaths (`revalidator/purge`), their conntrack tables
// and the workloads' neighbour caches, runs the mix and reads both
// datapaths, so every round is independent of the one before.
func Megaflows() bench.Suite {
	m := &megaflows{}
	b := bench.Batch{}
	for _, what := range mixFigures {
		for host := 1; host <= 2; host++ {
			b.Figures = append(b.Figures, bench.Figure{Name: mixFigure(what.name, host), Unit: what.unit})
		}
	}
	for _, mode := range mixModes {
		b.Variants = append(b.Variants, bench.BatchVariant{Name: mode, Run: func(ctx context.Context, env *bench.Env) (map[string]float64, error) {
			return m.measure(ctx, env, mode)
		}})
	}
	return bench.Suite{
		Name:        "megaflows",
		Description: "Datapath megaflows and masks (dpctl) on each host of a 2-host lab after a defined mix of TCP, UDP and ICMP connections between workloads of 3 networks, in multitenant and policy isolation.",
		Setup:       m.setup,
		Batches:     []bench.Batch{b},
	}
}

// mixFigures are what is read on each host after the mix.
var mixFigures = []struct {
	name, unit string
	get        func(dpStats) int
}{
	{"datapath masks after the mix", "masks", func(s dpStats) int { return s.Masks }},
	{"datapath flows after the mix", "flows", func(s dpStats) int { return s.Flows }},
	{"userspace classifier subtables (in_port x mask) after the mix", "subtables", func(s dpStats) int { return s.Subtables }},
}

func mixFigure(name string, host int) string { return name + ", " + lab.HostName(host) }

// mixModes are the isolation modes measured, in the order each round runs
// them.
var mixModes = []string{"multitenant", "policy"}

// The mix's servers: every workload listens on these.
var (
	mixTCPPorts = []int{8080, 8443}
	mixUDPPort  = 5353
)

// mixConcurrency is how many probes run at once.
const mixConcurrency = 32

// mixProbe is one connection of the mix.
type mixProbe struct {
	from, to *lab.Workload
	kind     string // "tcp", "udp", "icmp"
	port     int    // tcp and udp
}

func (p mixProbe) String() string {
	s := fmt.Sprintf("%s -> %s %s", p.from.ID(), p.to.ID(), p.kind)
	if p.port != 0 {
		s += "/" + strconv.Itoa(p.port)
	}
	return s
}

// mixKinds is the protocol cycle of the mix (see buildMix).
var mixKinds = []struct {
	kind string
	port int
}{{"tcp", mixTCPPorts[0]}, {"udp", mixUDPPort}, {"icmp", 0}, {"tcp", mixTCPPorts[1]}}

// buildMix returns the mix for ws: one connection for every ordered pair of
// distinct workloads, its kind chosen by the sum of the two workloads'
// indices (so a pair gets the same kind both ways, and every kind occurs
// within and across hosts and networks).
func buildMix(ws []*lab.Workload) []mixProbe {
	var mix []mixProbe
	for i, a := range ws {
		for j, b := range ws {
			if i == j {
				continue
			}
			k := mixKinds[(i+j)%len(mixKinds)]
			mix = append(mix, mixProbe{from: a, to: b, kind: k.kind, port: k.port})
		}
	}
	return mix
}

type megaflows struct {
	lab      *lab.Lab
	ws       []*lab.Workload
	networks map[string]bool
	mix      []mixProbe
	servers  []*nsServers
	mode     string // the cluster's isolation now
	dumps    int    // dumps written to SDNBENCH_DUMP_DIR
}

func (m *megaflows) setup(ctx context.Context, env *bench.Env) (func(), error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root (network namespaces, OVS, sdnd); run as root")
	}
	for _, bin := range []string{"ip", "ovs-vswitchd", "ovsdb-server", "ovs-vsctl", "ovs-appctl", "go"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("needs %s (%v); run `make deps` as root", bin, err)
		}
	}
	perNet := 3 // per network per host: 18 workloads, 306 connections
	if env.Quick {
		perNet = 2 // 12 workloads, 132 connections
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	labName := "mf" + hex.EncodeToString(b)
	labDir := filepath.Join(env.Dir, "lab")
	teardown := func() {
		for _, s := range m.servers {
			s.Close()
		}
		downLab(env, m.lab, labName, labDir)
	}

	bin := filepath.Join(env.Dir, "bin")
	if err := buildLabBinaries(ctx, env, bin); err != nil {
		return teardown, err
	}
	env.Logf("lab %s up (2 hosts)", labName)
	m.mode = mixModes[0]
	var err error
	if m.lab, err = lab.Up(ctx, lab.Config{Name: labName, Hosts: 2, Dir: labDir, Bin: bin, Isolation: m.mode}); err != nil {
		return teardown, fmt.Errorf("lab up: %w", err)
	}
	if m.networks, _, err = m.lab.Networks(); err != nil {
		return teardown, err
	}
	nets := slices.Sorted(func(yield func(string) bool) {
		for n := range m.networks {
			if !yield(n) {
				return
			}
		}
	})
	// Megaflows expire after 10 s idle by default: keep them for the
	// whole mix and the reading after it.
	for i := 1; i <= 2; i++ {
		if _, err := m.lab.OVS(i).Vsctl(ctx, "set", "Open_vSwitch", ".", "other_config:max-idle=600000"); err != nil {
			return teardown, err
		}
	}
	env.Logf("attaching %d workloads per network per host (%s) with the CNI plugin", perNet, strings.Join(nets, ", "))
	start := time.Now()
	var wmu sync.Mutex
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := 1; i <= 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, n := range nets {
				for k := 1; k <= perNet; k++ {
					w, err := m.lab.Attach(lab.HostName(i), n, fmt.Sprintf("%s-%d", n, k), map[string]string{"bench": "megaflows"})
					if err != nil {
						errs[i-1] = err
						return
					}
					wmu.Lock()
					m.ws = append(m.ws, w)
					wmu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return teardown, err
	}
	if err := m.lab.WaitRealized(ctx, 2*time.Minute); err != nil {
		return teardown, err
	}
	if m.ws, err = m.lab.Workloads(); err != nil {
		return teardown, err
	}
	env.Logf("attached %d workloads in %v", len(m.ws), time.Since(start).Round(time.Millisecond))
	for _, w := range m.ws {
		s, err := serveInNS(w.NS, mixTCPPorts, mixUDPPort)
		if err != nil {
			return teardown, err
		}
		m.servers = append(m.servers, s)
	}
	m.mix = buildMix(m.ws)

	env.Note("lab", fmt.Sprintf("lab %s: 2 hosts (host1 runs the server), OVS 'netdev' datapath per host with other_config:max-idle=600000 (no megaflow expires during a round); networks %s (%s admin), %d workloads per network per host attached by the CNI plugin: %d workloads",
		labName, strings.Join(nets, ", "), adminOf(m.networks), perNet, len(m.ws)))
	env.Note("mix", m.describeMix())
	env.Note("round", "per round and mode: cluster isolation set through `sdnctl apply` of a cluster block (--wait); on both hosts `revalidator/purge` (datapath flows and their ukeys: after `dpctl/del-flows` alone OVS does not reinstall a flow identical to a deleted one) and `dpctl/flush-conntrack`; `ip neigh flush all` in every workload; the mix, all probes "+
		strconv.Itoa(mixConcurrency)+" at a time, each outcome checked against the mode (a mismatch fails the round); then on each host `dpctl/show` (flows) and `dpctl/dump-flows -m` (masks, subtables). Each round runs multitenant then policy (the batch's variants); all figures of a mode in a round come from its one measurement")
	env.Note("counted", "the whole netdev datapath of each host, which br-int and br-phy share: the mix's flows, its ARP, the underlay's VXLAN and ARP, and whatever else the namespaces sent (IPv6 neighbour discovery). "+
		"masks = distinct megaflow masks in the dump (fields not wholly wildcarded, with their masks; fields sharing a flow-key slot, e.g. tcp/udp ports and icmp type/code, counted as one), which is what the kernel datapath's `masks: total` counts (the userspace datapath's dpctl/show prints none); "+
		"subtables = distinct (in_port, mask): the userspace datapath classifies by in_port first, so this is how many subtables its lookups can visit")
	return teardown, nil
}

// describeMix says what the mix holds, for the report.
func (m *megaflows) describeMix() string {
	count := map[string]int{}
	for _, p := range m.mix {
		where := "same host"
		if p.from.Host != p.to.Host {
			where = "across hosts"
		}
		count[p.kind+" "+where]++
	}
	var kinds []string
	for _, k := range mixKinds {
		s := k.kind
		if k.port != 0 {
			s += "/" + strconv.Itoa(k.port)
		}
		kinds = append(kinds, s)
	}
	var parts []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range count {
			if !yield(k) {
				return
			}
		}
	}) {
		parts = append(parts, fmt.Sprintf("%s %d", k, count[k]))
	}
	var denied []string
	for _, mode := range mixModes {
		exp := lab.Expected(mode, m.ws, m.networks)
		n := 0
		for _, p := range m.mix {
			if !exp.Reach[p.from.ID()][p.to.ID()] {
				n++
			}
		}
		denied = append(denied, fmt.Sprintf("%s %d", mode, n))
	}
	return fmt.Sprintf("%d connections: one per ordered pair of distinct workloads, its kind cycling through %s by the sum of the two workloads' indices (a TCP connect and the server's reply; a UDP datagram and its echo; an ICMP echo), from inside the source workload's namespace. "+
		"By kind and place: %s. Denied (cross-network) by mode: %s. A probe sends the same packets whatever its expected outcome: TCP waits %v for the connect (one SYN retransmission), UDP and ICMP try %d times, %v each",
		len(m.mix), strings.Join(kinds, ", "), strings.Join(parts, ", "), strings.Join(denied, ", "), tcpProbeTimeout, probeTries, probeWait)
}

func adminOf(networks map[string]bool) string {
	for n, admin := range networks {
		if admin {
			return n
		}
	}
	return "none"
}

// measure runs the mix once in mode on emptied datapaths and reads them:
// a value for every figure.
func (m *megaflows) measure(ctx context.Context, env *bench.Env, mode string) (map[string]float64, error) {
	var hosts [2]dpStats
	if m.mode != mode {
		file := filepath.Join(env.Dir, "isolation-"+mode+".hcl")
		if err := os.WriteFile(file, fmt.Appendf(nil, "cluster {\n  isolation = %q\n}\n", mode), 0o644); err != nil {
			return nil, err
		}
		if _, err := m.lab.Sdnctl("apply", "-f", file, "--wait"); err != nil {
			return nil, fmt.Errorf("set isolation %s: %w", mode, err)
		}
		m.mode = mode
	}
	for i := 1; i <= 2; i++ {
		// Not dpctl/del-flows: it leaves the upcall layer's ukeys behind,
		// and OVS then does not reinstall a flow identical to a deleted
		// one (seen with OVS 3.1: a slow-path ARP flow never came back),
		// so later rounds would miss flows the first one counted.
		for _, cmd := range [][]string{{"revalidator/purge"}, {"dpctl/flush-conntrack"}} {
			if _, err := m.lab.OVS(i).Appctl(ctx, "ovs-vswitchd", cmd...); err != nil {
				return nil, err
			}
		}
	}
	for _, w := range m.ws {
		if _, err := m.lab.Exec(w.NS, "ip", "neigh", "flush", "all"); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	wrong, err := m.runMix(ctx, mode)
	if err != nil {
		return nil, err
	}
	took := time.Since(start)
	for i := 1; i <= 2; i++ {
		show, err := m.lab.OVS(i).Appctl(ctx, "ovs-vswitchd", "dpctl/show")
		if err != nil {
			return nil, err
		}
		dump, err := m.lab.OVS(i).Appctl(ctx, "ovs-vswitchd", "dpctl/dump-flows", "-m")
		if err != nil {
			return nil, err
		}
		s := parseDumpFlows(dump)
		if s.Flows, err = parseShowFlows(show); err != nil {
			return nil, fmt.Errorf("%s: %w", lab.HostName(i), err)
		}
		hosts[i-1] = s
		if dir := os.Getenv("SDNBENCH_DUMP_DIR"); dir != "" {
			m.dumps++
			file := filepath.Join(dir, fmt.Sprintf("megaflows-%02d-%s-%s.txt", m.dumps, mode, lab.HostName(i)))
			if err := os.WriteFile(file, []byte(dump), 0o644); err != nil {
				return nil, err
			}
		}
	}
	env.Logf("%s: mix of %d in %v; host1 %d flows %d masks %d subtables, host2 %d flows %d masks %d subtables",
		mode, len(m.mix), took.Round(time.Millisecond),
		hosts[0].Flows, hosts[0].Masks, hosts[0].Subtables, hosts[1].Flows, hosts[1].Masks, hosts[1].Subtables)
	if len(wrong) > 0 {
		if len(wrong) > 10 {
			wrong = append(wrong[:10], fmt.Sprintf("and %d more", len(wrong)-10))
		}
		return nil, fmt.Errorf("%s: %d of %d connections did not behave as the mode promises: %s", mode, len(wrong), len(m.mix), strings.Join(wrong, "; "))
	}
	vals := map[string]float64{}
	for _, f := range mixFigures {
		for i, s := range hosts {
			vals[mixFigure(f.name, i+1)] = float64(f.get(s))
		}
	}
	return vals, nil
}

// runMix runs every probe of the mix and returns those whose outcome
// differs from what mode promises.
func (m *megaflows) runMix(ctx context.Context, mode string) ([]string, error) {
	exp := lab.Expected(mode, m.ws, m.networks)
	var (
		mu    sync.Mutex
		wrong []string
		errs  []error
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, mixConcurrency)
	for _, p := range m.mix {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var ok bool
			var err error
			switch p.kind {
			case "tcp":
				ok, err = probeTCP(ctx, p.from.NS, p.to.IP, p.port)
			case "udp":
				ok, err = probeUDP(ctx, p.from.NS, p.to.IP, p.port)
			default:
				ok, err = probeICMP(ctx, p.from.NS, p.to.IP)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p, err))
				return
			}
			if want := exp.Reach[p.from.ID()][p.to.ID()]; ok != want {
				wrong = append(wrong, fmt.Sprintf("%s: passed=%v, want %v", p, ok, want))
			}
		}()
	}
	wg.Wait()
	slices.Sort(wrong)
	return wrong, errors.Join(errs...)
}

// buildLabBinaries builds sdnd, sdnctl and the CNI plugin (sdn) into dir.
func buildLabBinaries(ctx context.Context, env *bench.Env, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	env.Logf("building sdnd, sdnctl, sdn into %s", dir)
	for out, pkg := range map[string]string{"sdnd": "sdnd", "sdnctl": "sdnctl", "sdn": "cni"} {
		args := []string{"build", "-o", filepath.Join(dir, out)}
		if out == "sdn" {
			args = append(args, "-ldflags=-s -w") // as the Makefile builds the plugin
		}
		if o, err := exec.CommandContext(ctx, "go", append(args, "github.com/sdn-dev/sdn/"+pkg)...).CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, o)
		}
	}
	return nil
}

// downLab removes a lab the suite brought up (l nil: Up failed or never
// returned; then by name and dir, if dir exists).
func downLab(env *bench.Env, l *lab.Lab, name, dir string) {
	if l == nil {
		if _, err := os.Stat(dir); err != nil {
			return
		}
		var err error
		if l, err = lab.Open(name, dir, nil); err != nil {
			env.Logf("teardown: lab %s: %v", name, err)
			return
		}
	}
	if err := l.Down(); err != nil {
		env.Logf("teardown: lab %s down: %v", name, err)
	}
}
