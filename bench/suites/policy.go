package suites

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/sdn-dev/sdn/bench"
	"github.com/sdn-dev/sdn/integration/lab"
)

// Policy measures label policies (docs/policy.md) against the issue's
// goals:
//
//   - the OVS flows one policy costs on a host with N selected local
//     workloads and M peer workloads elsewhere (policyflows.go): a flow per
//     pair would be N×M, as OpenShift-SDN needs; conjunction flows grow with
//     N+M;
//   - the time from one label change until every host realized it and a
//     packet probe saw it (policylabel.go), in a 2-host lab loaded with
//     static workloads and policies;
//   - iperf3 throughput, new connections per second and datapath masks
//     between two workloads on the two hosts with many policy rules
//     selecting them versus none (policyperf.go);
//   - the agents' and the server's memory with the large load
//     (policymem.go).
//
// One lab serves the last three: seeded with the label figure's load, it
// grows to the memory figure's at the end (batches run in order).
func Policy() bench.Suite {
	p := &policyBench{}
	rulesRatios := [][2]string{{"rules", "no rules"}}
	return bench.Suite{
		Name: "policy",
		Description: "Label policies: OVS flows for N selected × M peer workloads (goal < 2,000 at 200×200); label change → realized on every host and seen by a packet probe (goal p99 < 100 ms); " +
			"throughput and connections/s with policy rules selecting the pair vs none (goal ≥ 0.95); datapath masks with those rules (goal: tens); sdnd memory with 1,000 policies and 10,000 workloads.",
		Setup: p.setup,
		Figures: []bench.Figure{{
			Name: figPolicyFlows, Unit: "flows",
			Variants: []bench.Variant{
				{Name: "sdn", Run: p.policyFlows},
				{Name: "one flow per pair (OpenShift-SDN)", Run: p.pairFlows},
			},
			Ratios: [][2]string{{"sdn", "one flow per pair (OpenShift-SDN)"}},
		}},
		Batches: []bench.Batch{{
			Figures: []bench.Figure{
				{Name: figLabelRealized50, Unit: "ms"}, {Name: figLabelRealized99, Unit: "ms"},
				{Name: figLabelProbe50, Unit: "ms"}, {Name: figLabelProbe99, Unit: "ms"},
			},
			Variants: []bench.BatchVariant{{Name: "label flips", Run: p.labelRound}},
		}, {
			Figures: []bench.Figure{
				{Name: figRulesThroughput, Unit: "Gbit/s", HigherIsBetter: true, Ratios: rulesRatios},
				{Name: figRulesConns, Unit: "conn/s", HigherIsBetter: true, Ratios: rulesRatios},
				{Name: mixFigure(figRulesMasks, 1), Unit: "masks"},
				{Name: mixFigure(figRulesMasks, 2), Unit: "masks"},
			},
			Variants: []bench.BatchVariant{
				{Name: "rules", Run: p.rulesRound(true)},
				{Name: "no rules", Run: p.rulesRound(false)},
			},
		}, {
			Figures:  polMemFigures(),
			Variants: []bench.BatchVariant{{Name: "lab", Run: p.memRound}},
		}},
	}
}

const (
	figPolicyFlows     = "policy flows for N selected × M peer workloads"
	figLabelRealized50 = "label change until realized on every host, p50"
	figLabelRealized99 = "label change until realized on every host, p99"
	figLabelProbe50    = "label change until a packet probe confirms it, p50"
	figLabelProbe99    = "label change until a packet probe confirms it, p99"
	figRulesThroughput = "TCP throughput across hosts"
	figRulesConns      = "new TCP connections/s across hosts"
	figRulesMasks      = "datapath masks after throughput, connections and a mix"
)

// policyBench is what the suite's setup makes and its figures share.
type policyBench struct {
	sizes policySizes
	bin   string

	flows polFlows // the flows figure's OVS instance

	lab     *lab.Lab
	hcl     string // the base HCL directory (what lab.Up applied)
	rules   string // the rules file
	lat     [2]*lab.Workload
	perf    [2]*lab.Workload // server (host1), client (host2)
	servers []*nsServers
	dp      *dataplane // starts and stops the perf pair's iperf3 and http servers
	tools   toolSettings

	labelState // the label figure's
	rulesOn    bool
	rulesFlows [2][2]int // br-int flows per host, [off, on], as last seen
	memGrown   bool
}

func (p *policyBench) setup(ctx context.Context, env *bench.Env) (func(), error) {
	if err := checkPolicyTools(); err != nil {
		return nil, err
	}
	p.sizes, p.tools = fullPolicySizes, fullTools
	if env.Quick {
		p.sizes, p.tools = quickPolicySizes, quickTools
	}
	name := "pol" + runID()
	labDir := filepath.Join(env.Dir, "lab")
	teardown := func() {
		if p.dp != nil {
			p.dp.stopServers()
		}
		for _, s := range p.servers {
			s.Close()
		}
		downLab(env, p.lab, name, labDir)
		p.flows.stop(env)
	}
	var err error
	if p.bin, err = buildPolicyBinaries(ctx, env); err != nil {
		return teardown, err
	}
	if err := p.flows.setup(ctx, env, p.sizes); err != nil {
		return teardown, err
	}
	if err := p.labUp(ctx, env, name, labDir); err != nil {
		return teardown, err
	}
	if err := p.startServers(ctx); err != nil {
		return teardown, err
	}
	return teardown, nil
}

// checkPolicyTools checks the suite runs as root and finds every program
// it needs.
func checkPolicyTools() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, OVS, sdnd); run as root")
	}
	for _, bin := range []string{"ip", "ovs-vswitchd", "ovsdb-server", "ovs-vsctl", "ovs-ofctl", "ovs-appctl", "iperf3", "sockperf", "wrk", "ss", "go"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("needs %s (%v); run `make deps` as root", bin, err)
		}
	}
	return nil
}

// buildPolicyBinaries builds sdnd, sdnctl, the CNI plugin and sdnprobe
// into env.Dir/bin and returns that directory.
func buildPolicyBinaries(ctx context.Context, env *bench.Env) (string, error) {
	bin := filepath.Join(env.Dir, "bin")
	if err := buildLabBinaries(ctx, env, bin); err != nil {
		return "", err
	}
	if o, err := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, "sdnprobe"), "github.com/sdn-dev/sdn/integration/cmd/sdnprobe").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build sdnprobe: %v\n%s", err, o)
	}
	return bin, nil
}

// labUp writes the base HCL (cluster, networks, the label figure's static
// workloads and policies), seeds the lab's raft state with it (so the
// hosts get /18 blocks, room for the memory load), brings the lab up and
// attaches the four real workloads.
func (p *policyBench) labUp(ctx context.Context, env *bench.Env, name, dir string) error {
	p.hcl = filepath.Join(env.Dir, "hcl")
	if err := os.MkdirAll(p.hcl, 0o755); err != nil {
		return err
	}
	files := map[string]string{
		"base.hcl":       polBaseHCL(),
		"static.hcl":     polStaticHCL(0, p.sizes.workloads),
		"background.hcl": polBackgroundHCL(0, p.sizes.policies),
	}
	for f, s := range files {
		if err := os.WriteFile(filepath.Join(p.hcl, f), []byte(s), 0o644); err != nil {
			return err
		}
	}
	p.rules = filepath.Join(env.Dir, "rules.hcl")
	if err := os.WriteFile(p.rules, []byte(polRulesHCL(p.sizes.rules)), 0o644); err != nil {
		return err
	}
	env.Logf("lab %s: underlay and OVS (%d hosts)", name, polLabHosts)
	cfg := lab.Config{Name: name, Hosts: polLabHosts, Dir: dir, Bin: p.bin, Examples: p.hcl, UnderlayOnly: true}
	var err error
	if p.lab, err = lab.Up(ctx, cfg); err != nil {
		return fmt.Errorf("lab up (underlay): %w", err)
	}
	start := time.Now()
	if err := seedServer(ctx, p.lab, p.hcl, nil); err != nil {
		return err
	}
	env.Logf("lab %s: seeded in %v; sdnd on every host", name, time.Since(start).Round(time.Millisecond))
	cfg.UnderlayOnly = false
	if p.lab, err = lab.Up(ctx, cfg); err != nil {
		return fmt.Errorf("lab up: %w", err)
	}
	if err := p.attach(ctx); err != nil {
		return err
	}
	env.Logf("lab %s: up, loaded and realized %v after the seed", name, time.Since(start).Round(time.Millisecond))
	env.Note("lab", fmt.Sprintf("lab %s: %d hosts (OVS netdev datapath each; host1 runs the server and an agent in one sdnd, host2 an agent); cluster 10.128.0.0/14, /18 per host (seeded before the agents start, as the memory suite does), multitenant, networks net-0..net-%d and %s. "+
		"Load: %d static workloads declared in HCL (no veth: they count in address groups, not as local ports), spread over both hosts and the ten networks, labelled app=a0..a19 and role=r0..r6 (one in 50 of net-0's role=allowed); %d background policies bg-NNNN, each in one network selecting one app, with an ingress rule from a role on a TCP port and one from networks labelled env=eN on a UDP port; "+
		"the gate policy lat-gate (net-0: app=lat-srv admits tcp/%d from role=allowed). Real workloads (CNI): %s and %s (net-0, the label figure; the client is app=a0, selected by the background policies of net-0 for a0), %s and %s (%s, the rules figures)",
		name, polLabHosts, polLabNetworks-1, polPerf, p.sizes.workloads, p.sizes.policies, polLatPort,
		p.lat[0].ID(), p.lat[1].ID(), p.perf[0].ID(), p.perf[1].ID(), polPerf))
	return nil
}

// attach attaches the real workloads: the label figure's server (host1)
// and client (host2, starting as role=blocked; app=a0, so the background
// policies of net-0 selecting a0 have flows on host2), the rules figures' server
// (host1) and client (host2); then waits until both hosts realized them.
func (p *policyBench) attach(ctx context.Context) error {
	type want struct {
		host, network, name string
		labels              map[string]string
		into                **lab.Workload
	}
	for _, w := range []want{
		{"host1", polLatNetwork, "lat-srv", map[string]string{"app": "lat-srv"}, &p.lat[0]},
		{"host2", polLatNetwork, "lat-cli", map[string]string{"role": "blocked", "app": "a0"}, &p.lat[1]},
		{"host1", polPerf, "perf-srv", map[string]string{"perf": "srv"}, &p.perf[0]},
		{"host2", polPerf, "perf-cli", map[string]string{"perf": "cli"}, &p.perf[1]},
	} {
		got, err := p.lab.Attach(w.host, w.network, w.name, w.labels)
		if err != nil {
			return err
		}
		*w.into = got
	}
	return p.lab.WaitRealized(ctx, 5*time.Minute)
}

// startServers starts the label figure's server (tcp/polLatPort in
// lat-srv), the rules figures' iperf3 and HTTP servers (perf-srv) and the
// mix's servers (both perf workloads).
func (p *policyBench) startServers(ctx context.Context) error {
	s, err := serveInNS(p.lat[0].NS, []int{polLatPort}, mixUDPPort)
	if err != nil {
		return err
	}
	p.servers = append(p.servers, s)
	for _, w := range p.perf {
		s, err := serveInNS(w.NS, polMixTCPPorts, mixUDPPort)
		if err != nil {
			return err
		}
		p.servers = append(p.servers, s)
	}
	p.dp = &dataplane{probe: filepath.Join(p.bin, "sdnprobe")}
	return p.dp.startServers(ctx, p.perfEndpoints())
}

// perfEndpoints is the measured pair as the dataplane tools take it.
func (p *policyBench) perfEndpoints() endpoints {
	return endpoints{serverNS: p.perf[0].NS, clientNS: p.perf[1].NS, serverIP: p.perf[0].IP}
}

// sdnctlApply runs `sdnctl apply ARGS --wait` in the lab, with a timeout
// long enough for the memory load.
func (p *policyBench) sdnctlApply(args ...string) error {
	args = append(append([]string{"apply"}, args...), "--wait", "--wait-timeout", "10m")
	_, err := p.lab.Sdnctl(args...)
	return err
}
