package api

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// counterFanout bounds how many hosts are asked for counters at once.
const counterFanout = 16

// policyCounters fills each listed policy's status.counters with its
// per-rule counters summed over the hosts that run a workload it selects
// (ListPolicies with counters, `sdnctl get policies -o wide`), asking
// those hosts' datapath services in parallel (at most counterFanout at
// once, hostCallTimeout each). A host that cannot be asked is named in
// status.counter_errors of each policy it enforces: its counts are
// missing, not zero.
func (s *Server) policyCounters(ctx context.Context, resp *sdnv1.ListPoliciesResponse) {
	var hostsOf map[string][]string // policy key -> hosts, sorted
	var nodes map[string]*sdnv1.Node
	s.cluster.FSM().View(func(tx *state.Tx) error {
		hostsOf, nodes = policyHosts(tx, resp.Policies)
		return nil
	})
	var all []string
	for _, hs := range hostsOf {
		all = append(all, hs...)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	got, errs := s.readCounters(ctx, all, nodes)
	for _, p := range resp.Policies {
		if p.Status == nil {
			p.Status = &sdnv1.PolicyStatus{}
		}
		key := policy.Key(p)
		sum := map[[2]string]*sdnv1.RuleCounters{}
		for _, h := range hostsOf[key] {
			if err, bad := errs[h]; bad {
				p.Status.CounterErrors = append(p.Status.CounterErrors, err.Error()) // it names the host
				continue
			}
			for _, hc := range got[h] {
				if hc.Policy == key {
					addCounters(sum, hc.Counters)
				}
			}
		}
		p.Status.Counters = orderCounters(p, sum)
	}
}

// policyHosts finds, for each policy, the hosts that run a workload it
// selects (those hosts enforce it), and the nodes by name.
func policyHosts(tx *state.Tx, policies []*sdnv1.Policy) (map[string][]string, map[string]*sdnv1.Node) {
	nets := map[string]*sdnv1.Network{}
	for _, n := range tx.Networks() {
		nets[n.Name] = n
	}
	nodes := map[string]*sdnv1.Node{}
	for _, n := range tx.Nodes() {
		nodes[n.Name] = n
	}
	workloads := tx.Workloads("")
	out := map[string][]string{}
	for _, p := range policies {
		seen := map[string]bool{}
		for _, w := range workloads {
			if w.Node == "" || w.Pending != "" || seen[w.Node] || !policy.Selects(p, w, nets[w.Network]) {
				continue
			}
			seen[w.Node] = true
			out[policy.Key(p)] = append(out[policy.Key(p)], w.Node)
		}
		slices.Sort(out[policy.Key(p)])
	}
	return out, nodes
}

// readCounters asks each host for its rule counters, counterFanout at a
// time; it returns the answers and the errors by host.
func (s *Server) readCounters(ctx context.Context, hosts []string, nodes map[string]*sdnv1.Node) (map[string][]*sdnv1.HostRuleCounters, map[string]error) {
	got, errs := map[string][]*sdnv1.HostRuleCounters{}, map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, counterFanout)
	for _, h := range hosts {
		n := nodes[h]
		if n == nil {
			errs[h] = fmt.Errorf("host %s is not registered", h)
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var resp *sdnv1.RuleCountersResponse
			err := s.callHost(ctx, n, func(ctx context.Context, c sdnv1.DatapathServiceClient) error {
				var err error
				resp, err = c.RuleCounters(ctx, &sdnv1.RuleCountersRequest{})
				return err
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[h] = err
				return
			}
			got[h] = resp.Policies
		}()
	}
	wg.Wait()
	return got, errs
}

// addCounters adds one host's counters of a policy into sum, by direction
// and rule.
func addCounters(sum map[[2]string]*sdnv1.RuleCounters, cs []*sdnv1.RuleCounters) {
	for _, c := range cs {
		k := [2]string{c.Direction, c.Rule}
		t := sum[k]
		if t == nil {
			t = &sdnv1.RuleCounters{Direction: c.Direction, Rule: c.Rule, Action: c.Action}
			sum[k] = t
		}
		t.Packets += c.Packets
		t.Connections += c.Connections
	}
}

// orderCounters lists the sums as the policy declares its rules: ingress
// then egress, each in rule order, then the isolation default deny; rules
// the policy no longer has (a host not yet caught up) come last, by name.
func orderCounters(p *sdnv1.Policy, sum map[[2]string]*sdnv1.RuleCounters) []*sdnv1.RuleCounters {
	rank := map[[2]string]int{}
	for di, d := range []policy.Direction{policy.Ingress, policy.Egress} {
		rules := p.Ingress
		if d == policy.Egress {
			rules = p.Egress
		}
		for i, r := range rules {
			rank[[2]string{string(d), policy.RuleName(d, i, r)}] = di*100000 + i
		}
		rank[[2]string{string(d), "isolation"}] = di*100000 + 99999
	}
	out := make([]*sdnv1.RuleCounters, 0, len(sum))
	for _, c := range sum {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		ri, oki := rank[[2]string{out[i].Direction, out[i].Rule}]
		rj, okj := rank[[2]string{out[j].Direction, out[j].Rule}]
		if oki != okj {
			return oki
		}
		if c := cmp.Compare(ri, rj); c != 0 {
			return c < 0
		}
		return out[i].Direction+"/"+out[i].Rule < out[j].Direction+"/"+out[j].Rule
	})
	return out
}
