package suites

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/sdn-dev/sdn/bench"
	"github.com/sdn-dev/sdn/datapath/flows"
	"github.com/sdn-dev/sdn/datapath/ovs"
	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// The flows figure: datapath/flows compiles a host with N local workloads
// (network proj1, app=web), once without policy and once with one policy
// selecting all N (ingress from app=client on tcp/80) whose peer group has
// M members on other hosts; both are installed into a real OVS (one
// instance in a namespace of its own, as the programming suite runs it)
// and counted with `ovs-ofctl dump-flows`. The figure is the difference:
// what the policy costs. OpenShift-SDN's NetworkPolicy needs a flow per
// (selected, peer) pair: N×M, the other variant (computed, not measured).

const (
	polFlowsBridge  = "br-polbench"
	polFlowsVNID    = 5
	polFlowsRemotes = 10 // hosts holding the peers
)

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
	base, with := polFlowsHosts(f.n, f.m)
	f.base, f.with = flows.Compile(base), flows.Compile(with)
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
	env.Note("flows figure", fmt.Sprintf("datapath/flows.Compile of a host with %d local workloads (proj1, VNID %d, app=web) and %d remote hosts holding %d peer workloads (app=client), without policy (%d flows compiled) and with one policy "+
		"(network proj1, workloads app=web, ingress from workloads app=client on tcp/80; its address group the %d peers) (%d flows compiled); each round installs both into bridge %s of one OVS instance (netns %s, datapath netdev) with Instance.Reconcile and counts `ovs-ofctl dump-flows` lines; the figure is with − without. "+
		"The per-pair variant is N×M = %d, not measured",
		f.n, polFlowsVNID, polFlowsRemotes, f.m, len(f.base), f.m, len(f.with), polFlowsBridge, f.netns, f.n*f.m))
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

// polFlowsHosts returns the flows figure's host without and with the
// policy.
func polFlowsHosts(n, m int) (base, with *flows.Host) {
	mk := func() *flows.Host {
		h := &flows.Host{
			Isolation:   flows.Multitenant,
			Subnet:      netip.MustParsePrefix("10.128.0.0/23"),
			Gateway:     netip.MustParseAddr("10.128.0.1"),
			GatewayMAC:  model.MACForIP(netip.MustParseAddr("10.128.0.1")),
			ClusterCIDR: netip.MustParsePrefix("10.128.0.0/14"),
			TunnelPort:  1,
			GatewayPort: 2,
		}
		for r := range polFlowsRemotes {
			h.Remote = append(h.Remote, flows.RemoteHost{
				Name:       fmt.Sprintf("host%d", r+2),
				Subnet:     netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 128, byte(2 * (r + 1)), 0}), 23),
				UnderlayIP: netip.AddrFrom4([4]byte{198, 18, 0, byte(r + 2)}),
			})
		}
		return h
	}
	base, with = mk(), mk()
	p := &sdnv1.Policy{
		Name: "web", Network: "proj1", Isolate: []string{"ingress"}, Priority: 1000,
		Workloads: &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		Ingress: []*sdnv1.PolicyRule{{
			Name:  "clients",
			Peers: []*sdnv1.PolicyPeer{{Workloads: &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": "client"}}}},
			Ports: []*sdnv1.PolicyPort{{Protocol: "tcp", Port: 80}},
		}},
	}
	net := &sdnv1.Network{Name: "proj1", Vnid: polFlowsVNID}
	for i := range n {
		ip := netip.AddrFrom4([4]byte{10, 128, byte((i + 2) / 256), byte((i + 2) % 256)})
		w := flows.Workload{Name: fmt.Sprintf("proj1/web-%03d", i), IP: ip, MAC: model.MACForIP(ip), VNID: polFlowsVNID, Port: 10 + i}
		base.Local = append(base.Local, w)
		sw := &sdnv1.Workload{Name: fmt.Sprintf("web-%03d", i), Network: "proj1", Ip: ip.String(), Labels: map[string]string{"app": "web"}}
		w.Ingress.Slots, w.Ingress.IsolatedBy = policy.Applicable([]*sdnv1.Policy{p}, sw, net, policy.Ingress)
		w.Egress.Slots, w.Egress.IsolatedBy = policy.Applicable([]*sdnv1.Policy{p}, sw, net, policy.Egress)
		with.Local = append(with.Local, w)
	}
	g, _ := policy.PeerGroup(p, p.Ingress[0].Peers[0])
	ag := &sdnv1.AddressGroup{Name: g.Name(), Selector: g.Key(), Nodes: []string{"host1"}}
	for i := range m {
		r := i % polFlowsRemotes
		ip := netip.AddrFrom4([4]byte{10, 128, byte(2*(r+1) + (i/polFlowsRemotes+2)/256), byte((i/polFlowsRemotes + 2) % 256)})
		ag.Members = append(ag.Members, &sdnv1.GroupMember{Ip: ip.String(), Workload: fmt.Sprintf("proj1/client-%03d", i), Vnid: polFlowsVNID})
	}
	with.AddressGroups = map[string]*sdnv1.AddressGroup{ag.Name: ag}
	return base, with
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
