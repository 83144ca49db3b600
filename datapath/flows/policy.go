package flows

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sdn-dev/sdn/datapath/ovs"
	"github.com/sdn-dev/sdn/policy"
)

// RuleRef is what a policy flow's cookie stands for: one rule of one
// policy in one direction, or a policy's isolation (Rule IsolationRule).
type RuleRef struct {
	Policy    string // the policy's key ("network/name" or "name")
	Direction policy.Direction
	Rule      string // policy.Slot.RuleName, or IsolationRule
	Action    string // "allow", "deny" or "pass"
}

// IsolationRule is the rule name of a policy's isolation: the drop of
// whatever no rule decided for a workload the policy isolates.
const IsolationRule = "isolation"

// Priorities of the policy flows: rule levels count down from prioLevels
// in evaluation order (policy.Compare); isolation sits just above the
// tables' defaults.
const (
	prioLevels    = 60000
	prioIsolation = 1
)

// tiers says which table holds each direction's tiers.
var tiers = map[policy.Direction][2]Stage{
	policy.Egress:  {Egress, EgressPolicy},
	policy.Ingress: {Ingress, IngressPolicy},
}

// realized is one rule as it applies on this host: the local workloads it
// applies to (its subjects), in port order.
type realized struct {
	slot     policy.Slot
	key      string // policy key, direction and rule index: stable across hosts
	subjects []Workload
}

// plan is the policy flows of one direction before ids are known.
type plan struct {
	dir      policy.Direction
	rules    []*realized // in evaluation order
	isolated []Workload  // local workloads isolated in dir
}

// policies adds the flows of every rule that applies to a local workload
// (see doc.go): conjunctions, plain flows, isolation drops.
func (c *compiler) policies() {
	local := slices.Clone(c.h.Local)
	slices.SortFunc(local, func(a, b Workload) int { return cmp.Compare(a.Port, b.Port) })
	plans := []*plan{collect(local, policy.Egress), collect(local, policy.Ingress)}

	// Ids: the cookie of a rule's counted flows and the conjunction ids,
	// both derived from stable keys so one policy's change moves no other
	// policy's flows (and their counters).
	ids := newIDs()
	for _, p := range plans {
		for _, r := range p.rules {
			ids.want(ruleKey(r.key))
			for _, pt := range c.parts(r) {
				ids.want(conjKey(r.key, pt.key))
			}
		}
		for _, w := range p.isolated {
			ids.want(isolationKey(w, p.dir))
		}
	}
	ids.assign()
	c.rules = map[uint32]RuleRef{}
	for _, p := range plans {
		c.emit(p, ids)
	}
}

func ruleKey(k string) string { return "rule\x00" + k }
func conjKey(k, part string) string {
	return "conj\x00" + k + "\x00" + part
}
func isolationKey(w Workload, d policy.Direction) string {
	return "isolation\x00" + w.isolatedBy(d) + "\x00" + string(d)
}

func (w Workload) rules(d policy.Direction) Rules {
	if d == policy.Egress {
		return w.Egress
	}
	return w.Ingress
}

func (w Workload) isolatedBy(d policy.Direction) string {
	if by := w.rules(d).IsolatedBy; len(by) > 0 {
		return by[0]
	}
	return ""
}

// collect gathers the rules that apply to the local workloads in d, each
// with its subjects, in evaluation order.
func collect(local []Workload, d policy.Direction) *plan {
	p := &plan{dir: d}
	byKey := map[string]*realized{}
	for _, w := range local {
		rs := w.rules(d)
		for _, s := range rs.Slots {
			k := fmt.Sprintf("%s\x00%s\x00%d", policy.Key(s.Policy), d, s.Index)
			r := byKey[k]
			if r == nil {
				r = &realized{slot: s, key: k}
				byKey[k] = r
				p.rules = append(p.rules, r)
			}
			r.subjects = append(r.subjects, w)
		}
		if len(rs.IsolatedBy) > 0 {
			p.isolated = append(p.isolated, w)
		}
	}
	slices.SortFunc(p.rules, func(a, b *realized) int { return policy.Compare(a.slot, b.slot) })
	return p
}

// levelPriorities gives each level present in rules its OpenFlow priority
// within its table: higher for levels evaluated first.
func levelPriorities(rules []*realized) map[policy.Level]uint16 {
	prio := map[policy.Level]uint16{}
	next := map[policy.Tier]uint16{policy.TierCluster: prioLevels, policy.TierNetwork: prioLevels}
	for _, r := range rules { // in evaluation order
		l := policy.LevelOf(r.slot)
		if _, ok := prio[l]; !ok {
			prio[l] = next[l.Tier]
			next[l.Tier]--
		}
	}
	return prio
}

// verdict is the actions of a rule's counted flows: allow ends the
// direction's evaluation (egress goes on to forward, ingress to output),
// deny drops, pass goes on to the network's tier.
func verdict(action string, d policy.Direction) string {
	switch action {
	case "deny":
		return "drop"
	case "pass":
		return gotoTable(tiers[d][1])
	}
	if d == policy.Egress {
		return gotoTable(Forward)
	}
	return gotoTable(Output)
}

// subjectMatch matches a local workload as the subject of d: the port a
// packet comes from (egress), or the port forward chose for it (ingress).
func subjectMatch(d policy.Direction, port int) string {
	if d == policy.Egress {
		return fmt.Sprintf("in_port=%d", port)
	}
	return fmt.Sprintf("reg2=%d", port)
}

// counted adds the two flows that count one decision: new connections
// (ct_state=+new) and the packets of established ones apart.
func (c *compiler) counted(s Stage, prio uint16, match, actions string, cookie uint32) {
	for _, ct := range []string{"ct_state=+new+trk", "ct_state=-new+trk"} {
		c.flows = append(c.flows, ovs.Flow{Table: s.Table(), Priority: prio, Match: match + "," + ct, Actions: actions, Cookie: uint64(cookie)})
	}
}

// member is a conjunction's dimension flow, shared by every conjunction
// that has the same match at the same priority in the same table.
type member struct {
	table    Stage
	priority uint16
	match    string
}

// emit adds one direction's policy flows.
func (c *compiler) emit(p *plan, ids *idSet) {
	prio := levelPriorities(p.rules)
	members := map[member][]string{}
	// Plain flows first: at one level a plain flow (the rule has no peer
	// and no port dimension) decides all of a subject's traffic, so a
	// conjunction of the same level for that subject is redundant, and
	// would clash with it.
	plain := map[policy.Level]map[int]bool{}
	var conj []func()
	for _, r := range p.rules {
		l := policy.LevelOf(r.slot)
		table := tiers[p.dir][l.Tier]
		action := policy.ActionName(r.slot.Action())
		rid := ids.of(ruleKey(r.key))
		c.rules[rid] = RuleRef{Policy: policy.Key(r.slot.Policy), Direction: p.dir, Rule: r.slot.RuleName(), Action: action}
		act := verdict(action, p.dir)
		if plain[l] == nil {
			plain[l] = map[int]bool{}
		}
		for _, pt := range c.parts(r) {
			if pt.anyPeer && pt.anyPort {
				for _, port := range pt.subjects {
					if !plain[l][port] {
						plain[l][port] = true
						c.counted(table, prio[l], subjectMatch(p.dir, port), act, rid)
					}
				}
				continue
			}
			conj = append(conj, func() {
				c.conjunction(members, table, prio[l], ids.of(conjKey(r.key, pt.key)), p.dir, pt, plain[l], act, rid)
			})
		}
	}
	for _, f := range conj {
		f()
	}
	for _, m := range slices.SortedFunc(maps.Keys(members), func(a, b member) int {
		return cmp.Or(cmp.Compare(a.table.Table(), b.table.Table()), cmp.Compare(b.priority, a.priority), cmp.Compare(a.match, b.match))
	}) {
		acts := members[m]
		slices.Sort(acts)
		c.flows = append(c.flows, ovs.Flow{Table: m.table.Table(), Priority: m.priority, Match: m.match, Actions: strings.Join(slices.Compact(acts), ",")})
	}
	for _, w := range p.isolated {
		by := w.isolatedBy(p.dir)
		id := ids.of(isolationKey(w, p.dir))
		c.rules[id] = RuleRef{Policy: by, Direction: p.dir, Rule: IsolationRule, Action: "deny"}
		c.counted(tiers[p.dir][1], prioIsolation, subjectMatch(p.dir, w.Port), "drop", id)
	}
}

// conjunction adds one part of a rule as a conjunction: its dimension
// flows into members (merged later), its conj_id flows directly. Subjects
// a plain flow of the same level already decides are left out.
func (c *compiler) conjunction(members map[member][]string, table Stage, prio uint16, id uint32, d policy.Direction,
	pt part, covered map[int]bool, act string, rid uint32) {
	var subjects []string
	for _, port := range pt.subjects {
		if !covered[port] {
			subjects = append(subjects, subjectMatch(d, port))
		}
	}
	dims := [][]string{subjects}
	if !pt.anyPeer {
		dims = append(dims, pt.peers)
	}
	if !pt.anyPort {
		dims = append(dims, pt.ports)
	}
	for _, dim := range dims {
		if len(dim) == 0 {
			return // matches nothing: no subject left, no peer address, no resolved port
		}
	}
	for k, dim := range dims {
		for _, m := range dim {
			key := member{table, prio, m}
			members[key] = append(members[key], fmt.Sprintf("conjunction(%d,%d/%d)", id, k+1, len(dims)))
		}
	}
	c.counted(table, prio, fmt.Sprintf("conj_id=%d", id), act, rid)
}
