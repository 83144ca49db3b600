package suites

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/sdn-dev/sdn/bench"
	"github.com/sdn-dev/sdn/datapath/flows"
	"github.com/sdn-dev/sdn/datapath/ovs"
)

// The flows figure: datapath/flows compiles flows.PolicyScale's host, N
// local workloads (network proj1, app=web), once without policy and once
// with one policy selecting all N (ingress from role=client on tcp/80 and
// 443) whose peer group has M members outside the host's block; both are
// installed into a real OVS (one
// instance in a namespace of its own, as the programming suite runs it)
// and counted with `ovs-ofctl dump-flows`. The figure is the difference:
// what the policy costs. OpenShift-SDN's NetworkPolicy needs a flow per
// (selected, peer) pair: N×M, the other variant (computed, not measured).

const polFlowsBridge = "br-polbench"

// polFlows is the flows figure's OVS instance and compiled hosts.
type polFlows struct {
	netns      string
	inst       *ovs.Instance
	base, with []ovs.Flow
	n, m       int
	gen        uint16
}

func (f *polFlows) setup(ctx context.Context, env *bench.Env, sz policySizes) error {
	f.n, f.m = sz.selected, sz.peers
	f.base, f.with = flows.Compile(flows.PolicyScale(f.n, 0)), flows.Compile(flows.PolicyScale(f.n, f.m))
	f.netns = "sdnbench-pf" + runID()
	if out, err := exec.CommandContext(ctx, "ip", "netns", "add", f.netns).CombinedOutput(); err != nil {
		f.netns = ""
		return fmt.Errorf("ip netns add: %v: %s", err, out)
	}
	var err error
	cfg := ovs.InstanceConfig{RunDir: filepath.Join(env.Dir, "ovs-flows"), NetNS: f.netns, Logger: slog.New(slog.DiscardHandler)}
	if f.inst, err = ovs.StartInstance(ctx, cfg); err != nil {
		return err
	}
	env.Note("flows figure", fmt.Sprintf("datapath/flows.Compile of flows.PolicyScale(%d, M): %d local workloads of proj1 (app=web) selected by one policy (ingress from role=client on tcp/80 and tcp/443, isolating ingress) whose address group holds M = %d peers outside the host's block (%d flows compiled), and of the same host without the policy (M = 0: %d flows compiled). "+
		"Each round installs both into bridge %s of one OVS instance (netns %s, datapath netdev) with Instance.Reconcile and counts `ovs-ofctl dump-flows` lines; the figure is with − without. The per-pair variant is N×M = %d, computed, not measured",
		f.n, f.n, f.m, len(f.with), len(f.base), polFlowsBridge, f.netns, f.n*f.m))
	return nil
}

// stop stops the instance and deletes its namespace.
func (f *polFlows) stop(env *bench.Env) {
	if f.inst != nil {
		if err := f.inst.Stop(); err != nil {
			env.Logf("teardown: %v", err)
		}
	}
	if f.netns != "" {
		if out, err := exec.Command("ip", "netns", "del", f.netns).CombinedOutput(); err != nil {
			env.Logf("teardown: ip netns del %s: %v: %s", f.netns, err, out)
		}
	}
}

// policyFlows installs the host without, then with the policy, and
// returns the difference of the bridge's flow counts.
func (p *policyBench) policyFlows(ctx context.Context, env *bench.Env) (float64, error) {
	f := &p.flows
	if _, err := f.inst.Vsctl(ctx, "--if-exists", "del-br", polFlowsBridge); err != nil {
		return 0, err
	}
	if err := f.inst.EnsureBridge(ctx, ovs.BridgeConfig{Name: polFlowsBridge, DatapathType: "netdev"}); err != nil {
		return 0, err
	}
	var counts [2]int
	for i, fl := range [][]ovs.Flow{f.base, f.with} {
		f.gen++
		if _, err := f.inst.Reconcile(ctx, polFlowsBridge, f.gen, fl); err != nil {
			return 0, err
		}
		out, err := f.inst.Ofctl(ctx, "-O", "OpenFlow15", "dump-flows", "--no-stats", polFlowsBridge)
		if err != nil {
			return 0, err
		}
		counts[i] = strings.Count(out, "actions=")
	}
	if counts[0] != len(f.base) || counts[1] != len(f.with) {
		return 0, fmt.Errorf("OVS holds %d flows without the policy and %d with; compiled %d and %d", counts[0], counts[1], len(f.base), len(f.with))
	}
	env.Logf("flows: %d without the policy, %d with: %d for %d selected × %d peers", counts[0], counts[1], counts[1]-counts[0], f.n, f.m)
	return float64(counts[1] - counts[0]), nil
}

// pairFlows is the per-pair count: N×M.
func (p *policyBench) pairFlows(context.Context, *bench.Env) (float64, error) {
	return float64(p.flows.n * p.flows.m), nil
}
