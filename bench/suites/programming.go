package suites

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/sdn-dev/sdn/bench"
	"github.com/sdn-dev/sdn/datapath/flows"
	"github.com/sdn-dev/sdn/datapath/ovs"
)

// Programming measures how fast flows get into OVS: our reconciler
// (ovs.Instance.Reconcile from an empty bridge) against the fastest plain
// way, `ovs-ofctl --bundle add-flows` of the same flows, and what a
// reconcile costs when nothing changed or after an agent restart.
//
// It runs one OVS instance (userspace datapath) in a network namespace and
// directory of its own, both removed by its teardown.
func Programming() bench.Suite {
	p := &programming{}
	return bench.Suite{
		Name:        "programming",
		Description: "Flows into a fresh netdev bridge of a real OVS instance: sdn's reconciler vs ovs-ofctl --bundle add-flows of the same flows (compiled by datapath/flows for a synthetic busy host).",
		Setup:       p.setup,
		Figures: []bench.Figure{{
			Name: "install flows into an empty bridge", Unit: "flows/s", HigherIsBetter: true,
			Variants: []bench.Variant{
				{Name: "reconcile", Run: p.installReconcile(false)},
				{Name: "reconcile-warm-cache", Run: p.installReconcile(true)},
				{Name: "ofctl-bundle", Run: p.installOfctl},
			},
			Ratios: [][2]string{{"reconcile", "ofctl-bundle"}, {"reconcile-warm-cache", "ofctl-bundle"}},
		}, {
			Name: "reconcile with the flows already installed", Unit: "ms",
			Variants: []bench.Variant{
				{Name: "no-op", Run: p.steady(false)},
				{Name: "restart (new generation)", Run: p.steady(true)},
			},
		}},
	}
}

const benchBridge = "br-bench"

type programming struct {
	netns  string
	inst   *ovs.Instance // long-lived handle: its canonicalization cache stays warm
	cfg    ovs.InstanceConfig
	flows  []ovs.Flow
	canon  string // the flows as OVS dumps them, one per line: ovs-ofctl's input
	gen    uint16
	ofFile string
}

func (p *programming) setup(ctx context.Context, env *bench.Env) (func(), error) {
	for _, bin := range []string{"ovs-vswitchd", "ovsdb-server", "ovsdb-tool", "ovs-vsctl", "ovs-ofctl", "ovs-appctl", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("needs Open vSwitch and iproute2 (%s: %v); run `make deps` as root", bin, err)
		}
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root (network namespace and OVS daemons); run as root")
	}
	n := 10000
	if env.Quick {
		n = 2000
	}
	host, count := syntheticHost(n)
	p.flows = flows.Compile(host)
	env.Note("flows", fmt.Sprintf("%d (asked %d): %d local workloads in 10 networks, %d remote hosts, multitenant", count, n, len(host.Local), len(host.Remote)))

	b := make([]byte, 4)
	_, _ = rand.Read(b)
	p.netns = "sdnbench-" + hex.EncodeToString(b)
	if out, err := exec.CommandContext(ctx, "ip", "netns", "add", p.netns).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %v: %s", p.netns, err, out)
	}
	teardown := func() {
		if p.inst != nil {
			if err := p.inst.Stop(); err != nil {
				env.Logf("teardown: %v", err)
			}
		}
		if out, err := exec.Command("ip", "netns", "del", p.netns).CombinedOutput(); err != nil {
			env.Logf("teardown: ip netns del %s: %v: %s", p.netns, err, out)
		}
	}
	p.cfg = ovs.InstanceConfig{RunDir: filepath.Join(env.Dir, "ovs"), NetNS: p.netns, Logger: slog.New(slog.DiscardHandler)}
	var err error
	if p.inst, err = ovs.StartInstance(ctx, p.cfg); err != nil {
		return teardown, err
	}
	env.Note("OVS", fmt.Sprintf("one instance, netns %s, bridge %s (datapath netdev)", p.netns, benchBridge))

	// One reconcile warms the long-lived handle's cache and gives the
	// canonical text ovs-ofctl will install: the same flows, as OVS prints
	// them.
	if err := p.freshBridge(ctx); err != nil {
		return teardown, err
	}
	if _, err := p.reconcile(ctx, p.inst, true, ovs.Result{Added: len(p.flows)}); err != nil {
		return teardown, err
	}
	dumped, err := p.inst.DumpFlows(ctx, benchBridge, 0, 0)
	if err != nil {
		return teardown, err
	}
	var sb strings.Builder
	for _, f := range dumped {
		sb.WriteString(f.String() + "\n")
	}
	p.canon = sb.String()
	p.ofFile = filepath.Join(env.Dir, "flows.txt")
	if err := os.WriteFile(p.ofFile, []byte(p.canon), 0o644); err != nil {
		return teardown, err
	}
	return teardown, nil
}

// freshBridge deletes and recreates the bridge: every install starts from
// an empty one.
func (p *programming) freshBridge(ctx context.Context) error {
	if _, err := p.inst.Vsctl(ctx, "--if-exists", "del-br", benchBridge); err != nil {
		return err
	}
	return p.inst.EnsureBridge(ctx, ovs.BridgeConfig{Name: benchBridge, DatapathType: "netdev"})
}

// reconcile runs one timed reconcile, with a new generation when newGen
// (as after an agent start), and checks its result against want.
func (p *programming) reconcile(ctx context.Context, inst *ovs.Instance, newGen bool, want ovs.Result) (time.Duration, error) {
	if newGen {
		p.gen++
	}
	start := time.Now()
	res, err := inst.Reconcile(ctx, benchBridge, p.gen, p.flows)
	took := time.Since(start)
	if err != nil {
		return 0, err
	}
	if res.Added != want.Added || res.Unchanged != want.Unchanged || res.Modified+res.Deleted != 0 {
		return 0, fmt.Errorf("reconcile of %d flows did %s; want %d added, %d unchanged", len(p.flows), res, want.Added, want.Unchanged)
	}
	return took, nil
}

// installReconcile: Reconcile from an empty bridge. Cold (warm false) uses
// a fresh Instance handle, as an agent just started has: every flow is
// canonicalized through ovs-ofctl parse-flows. Warm reuses the long-lived
// handle, whose cache already holds every flow.
func (p *programming) installReconcile(warm bool) func(context.Context, *bench.Env) (float64, error) {
	return func(ctx context.Context, env *bench.Env) (float64, error) {
		if err := p.freshBridge(ctx); err != nil {
			return 0, err
		}
		inst := p.inst
		if !warm {
			var err error
			if inst, err = ovs.StartInstance(ctx, p.cfg); err != nil { // adopts the running daemons
				return 0, err
			}
		}
		took, err := p.reconcile(ctx, inst, true, ovs.Result{Added: len(p.flows)})
		if err != nil {
			return 0, err
		}
		return float64(len(p.flows)) / took.Seconds(), nil
	}
}

// installOfctl: ovs-ofctl -O OpenFlow15 --bundle add-flows of the
// canonical text, from an empty bridge; then (untimed) a reconcile checks
// that the bridge holds exactly the reconciler's flows.
func (p *programming) installOfctl(ctx context.Context, env *bench.Env) (float64, error) {
	if err := p.freshBridge(ctx); err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := p.inst.Ofctl(ctx, "-O", "OpenFlow15", "--bundle", "add-flows", benchBridge, p.ofFile); err != nil {
		return 0, err
	}
	took := time.Since(start)
	if _, err := p.reconcile(ctx, p.inst, true, ovs.Result{Unchanged: len(p.flows)}); err != nil {
		return 0, fmt.Errorf("after ovs-ofctl: %w", err)
	}
	return float64(len(p.flows)) / took.Seconds(), nil
}

// steady: a reconcile when OVS already holds every flow. No-op uses the
// long-lived handle (the agent's periodic resync); restart a fresh handle
// (an agent restart: cold cache, new generation, nothing sent to OVS).
func (p *programming) steady(restart bool) func(context.Context, *bench.Env) (float64, error) {
	return func(ctx context.Context, env *bench.Env) (float64, error) {
		if _, err := p.inst.Reconcile(ctx, benchBridge, p.gen, p.flows); err != nil { // untimed: make sure all are there
			return 0, err
		}
		inst := p.inst
		if restart {
			var err error
			if inst, err = ovs.StartInstance(ctx, p.cfg); err != nil {
				return 0, err
			}
		}
		took, err := p.reconcile(ctx, inst, restart, ovs.Result{Unchanged: len(p.flows)})
		if err != nil {
			return 0, err
		}
		return float64(took.Microseconds()) / 1000, nil
	}
}
