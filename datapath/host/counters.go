package host

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sdn-dev/sdn/datapath/flows"
	"github.com/sdn-dev/sdn/datapath/ovs"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// remember keeps what Apply installed: the compiler's input (ports,
// workloads, remote hosts) and its rule table, which map a trace and the
// flow statistics back to workloads, hosts and rules.
func (d *Datapath) remember(h *flows.Host, rules map[uint32]flows.RuleRef) {
	d.lastMu.Lock()
	defer d.lastMu.Unlock()
	d.lastHost, d.lastRules = h, rules
}

func (d *Datapath) last() (*flows.Host, map[uint32]flows.RuleRef) {
	d.lastMu.Lock()
	defer d.lastMu.Unlock()
	return d.lastHost, d.lastRules
}

var (
	dumpCookie  = regexp.MustCompile(`cookie=(0x[0-9a-f]+)`)
	dumpPackets = regexp.MustCompile(`n_packets=(\d+)`)
)

// RuleCounters reads the statistics of the policy flows on br-int (the
// flows that decide: conj_id, plain and isolation flows, whose cookies
// carry their rule's id) and sums them per policy, direction, rule and
// action: packets, and connections (the packets of the ct_state=+new
// half). Rules of this host that no packet matched are listed with zeros.
func (d *Datapath) RuleCounters(ctx context.Context) ([]*sdnv1.HostRuleCounters, error) {
	_, rules := d.last()
	if rules == nil {
		return nil, fmt.Errorf("rule counters of node %q: the datapath has not realized a desired state yet; wait for the agent's first sync", d.cfg.NodeName)
	}
	out, err := d.ovs.Ofctl(ctx, "-O", "OpenFlow15", "--no-names", "dump-flows", IntegrationBridge,
		fmt.Sprintf("cookie=%#x/%#x", ovs.TagCookie(), ovs.TagMask))
	if err != nil {
		return nil, fmt.Errorf("rule counters of node %q: dump flows of %s: %w", d.cfg.NodeName, IntegrationBridge, err)
	}
	sums := map[flows.RuleRef]*sdnv1.RuleCounters{}
	for ref := range maps.Values(rules) {
		sums[ref] = &sdnv1.RuleCounters{Direction: string(ref.Direction), Rule: ref.Rule, Action: ref.Action}
	}
	for _, line := range strings.Split(out, "\n") {
		c, p := dumpCookie.FindStringSubmatch(line), dumpPackets.FindStringSubmatch(line)
		if c == nil || p == nil {
			continue
		}
		cookie, err1 := strconv.ParseUint(c[1], 0, 64)
		n, err2 := strconv.ParseUint(p[1], 10, 64)
		ref, ok := rules[ovs.CookieCategory(cookie)]
		if err1 != nil || err2 != nil || !ok {
			continue
		}
		rc := sums[ref]
		rc.Packets += n
		if strings.Contains(line, "ct_state=+new") {
			rc.Connections += n
		}
	}
	byPolicy := map[string]*sdnv1.HostRuleCounters{}
	for ref, rc := range sums {
		hp := byPolicy[ref.Policy]
		if hp == nil {
			hp = &sdnv1.HostRuleCounters{Policy: ref.Policy}
			byPolicy[ref.Policy] = hp
		}
		hp.Counters = append(hp.Counters, rc)
	}
	var res []*sdnv1.HostRuleCounters
	for _, k := range slices.Sorted(maps.Keys(byPolicy)) {
		hp := byPolicy[k]
		slices.SortFunc(hp.Counters, func(a, b *sdnv1.RuleCounters) int {
			return cmp.Or(cmp.Compare(a.Direction, b.Direction), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Action, b.Action))
		})
		res = append(res, hp)
	}
	return res, nil
}
