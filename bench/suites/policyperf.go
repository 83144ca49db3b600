package suites

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sdn-dev/sdn/bench"
	"github.com/sdn-dev/sdn/integration/lab"
)

// The rules figures: perf-cli (host2) → perf-srv (host1) in the perf
// network, with sizes.rules policy rules selecting them (half ingress
// rules of the server's policies, half egress rules of the client's; see
// polRulesHCL) or none. Each round runs "rules" then "no rules"; the
// switch is an `sdnctl apply --wait` of the base files with the rules file
// (rules) or with --prune (none), checked by the flows on both br-ints.

// polMixTCPPorts are the mix's TCP servers in both perf workloads (8080
// is the HTTP server's, in perf-srv).
var polMixTCPPorts = []int{8443, 9443}

// rulesRound returns the round's measurement with the rules installed
// (on) or none.
func (p *policyBench) rulesRound(on bool) func(context.Context, *bench.Env) (map[string]float64, error) {
	return func(ctx context.Context, env *bench.Env) (map[string]float64, error) {
		if err := p.setRules(ctx, env, on); err != nil {
			return nil, err
		}
		for i := 1; i <= polLabHosts; i++ {
			for _, cmd := range [][]string{{"revalidator/purge"}, {"dpctl/flush-conntrack"}} {
				if _, err := p.lab.OVS(i).Appctl(ctx, "ovs-vswitchd", cmd...); err != nil {
					return nil, err
				}
			}
		}
		e := p.perfEndpoints()
		tr, err := p.tools.iperf(ctx, e)
		if err != nil {
			return nil, err
		}
		conns, err := p.tools.wrk(ctx, e)
		if err != nil {
			return nil, err
		}
		if err := p.perfMix(ctx); err != nil {
			return nil, err
		}
		vals := map[string]float64{figRulesThroughput: tr.gbps, figRulesConns: conns}
		var masks []string
		for i := 1; i <= polLabHosts; i++ {
			dump, err := p.lab.OVS(i).Appctl(ctx, "ovs-vswitchd", "dpctl/dump-flows", "-m")
			if err != nil {
				return nil, err
			}
			s := parseDumpFlows(dump)
			vals[mixFigure(figRulesMasks, i)] = float64(s.Masks)
			masks = append(masks, fmt.Sprintf("%s %d masks (%d subtables)", lab.HostName(i), s.Masks, s.Subtables))
		}
		env.Logf("%s: %.2f Gbit/s, %.0f conn/s, %s", reachRules(on), tr.gbps, conns, strings.Join(masks, ", "))
		return vals, nil
	}
}

func reachRules(on bool) string {
	if on {
		return "rules"
	}
	return "no rules"
}

// setRules installs or removes the rules (if they are not already so),
// waits until both hosts realized it, and checks on br-int that the flows
// came or went.
func (p *policyBench) setRules(ctx context.Context, env *bench.Env, on bool) error {
	if p.rulesOn == on && p.rulesFlows[0][b2i(on)] != 0 {
		return nil
	}
	start := time.Now()
	var err error
	if on {
		err = p.sdnctlApply("-f", p.hcl, "-f", p.rules)
	} else {
		err = p.sdnctlApply("-f", p.hcl, "--prune")
	}
	if err != nil {
		return err
	}
	took := time.Since(start)
	p.rulesOn = on
	var counts []string
	for i := 1; i <= polLabHosts; i++ {
		n, err := brIntFlows(ctx, p.lab, i)
		if err != nil {
			return err
		}
		p.rulesFlows[i-1][b2i(on)] = n
		counts = append(counts, fmt.Sprintf("%s %d", lab.HostName(i), n))
	}
	env.Logf("%s applied and realized in %v; br-int flows %s", reachRules(on), took.Round(time.Millisecond), strings.Join(counts, ", "))
	// Each rule costs at least two flows on its host (docs/policy.md,
	// "Where it is enforced"): half the rules are on each host.
	for i := range polLabHosts {
		off, with := p.rulesFlows[i][0], p.rulesFlows[i][1]
		if off != 0 && with != 0 && with-off < p.sizes.rules {
			return fmt.Errorf("%s: br-int holds %d flows with the rules and %d without: the %d rules (half on each host, at least two flows each) did not come or go; is `sdnctl apply --prune` deleting policies?",
				lab.HostName(i+1), with, off, p.sizes.rules)
		}
	}
	env.Note("rules switch", fmt.Sprintf("`sdnctl apply -f BASE -f rules.hcl --wait` (rules) or `sdnctl apply -f BASE --prune --wait` (no rules), last taking %v; br-int flows without / with the rules: %s %d / %d, %s %d / %d",
		took.Round(time.Millisecond), lab.HostName(1), p.rulesFlows[0][0], p.rulesFlows[0][1], lab.HostName(2), p.rulesFlows[1][0], p.rulesFlows[1][1]))
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// brIntFlows counts the flows on host i's br-int.
func brIntFlows(ctx context.Context, l *lab.Lab, i int) (int, error) {
	out, err := l.OVS(i).Ofctl(ctx, "-O", "OpenFlow15", "dump-flows", "--no-stats", "br-int")
	if err != nil {
		return 0, err
	}
	return strings.Count(out, "actions="), nil
}

// perfMix runs the mix after throughput and connections: TCP to both mix
// ports, a UDP datagram and an ICMP echo, each way between the pair; every
// one must pass (the last rule of each direction allows the pair; the
// other direction is not isolated).
func (p *policyBench) perfMix(ctx context.Context) error {
	var bad []string
	for _, d := range [][2]*lab.Workload{{p.perf[1], p.perf[0]}, {p.perf[0], p.perf[1]}} {
		from, to := d[0], d[1]
		type probe struct {
			what string
			run  func() (bool, error)
		}
		probes := []probe{
			{"udp/5353", func() (bool, error) { return probeUDP(ctx, from.NS, to.IP, mixUDPPort) }},
			{"icmp", func() (bool, error) { return probeICMP(ctx, from.NS, to.IP) }},
		}
		for _, port := range polMixTCPPorts {
			probes = append(probes, probe{fmt.Sprintf("tcp/%d", port), func() (bool, error) { return probeTCP(ctx, from.NS, to.IP, port) }})
		}
		for _, pr := range probes {
			ok, err := pr.run()
			if err != nil {
				return err
			}
			if !ok {
				bad = append(bad, fmt.Sprintf("%s -> %s %s", from.ID(), to.ID(), pr.what))
			}
		}
	}
	if len(bad) > 0 {
		return errors.New("the mix's connections must all pass, these did not: " + strings.Join(bad, "; "))
	}
	return nil
}
