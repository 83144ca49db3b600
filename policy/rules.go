package policy

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Direction is the side of a workload a rule guards.
type Direction string

// The two directions.
const (
	Ingress Direction = "ingress"
	Egress  Direction = "egress"
)

// Tier is where a rule is evaluated: cluster-wide policies first.
type Tier int

// The tiers, in evaluation order.
const (
	TierCluster Tier = iota
	TierNetwork
)

// DefaultPriority is the priority of a policy that does not set one (HCL).
const DefaultPriority = 1000

// MaxPriority is the largest priority a policy may have.
const MaxPriority = 10000

// Key is how a policy is stored and named: "network/name" for a network's
// policy, "name" for a cluster-wide one.
func Key(p *sdnv1.Policy) string { return model.PolicyKey(p) }

// Slot is one rule as it applies to one workload in one direction.
type Slot struct {
	Policy *sdnv1.Policy
	Tier   Tier
	Dir    Direction
	Index  int // the rule's index in its policy's list for Dir
	Rule   *sdnv1.PolicyRule
}

// RuleName is the rule's name, or "ingress[2]" (direction and index) for an
// unnamed one.
func (s Slot) RuleName() string { return RuleName(s.Dir, s.Index, s.Rule) }

// RuleName names rule i of a direction.
func RuleName(d Direction, i int, r *sdnv1.PolicyRule) string {
	if r.Name != "" {
		return r.Name
	}
	return fmt.Sprintf("%s[%d]", d, i)
}

// Action is the slot's action (allow when unspecified).
func (s Slot) Action() sdnv1.PolicyAction { return ActionOf(s.Rule) }

// ActionOf is a rule's action; unspecified means allow.
func ActionOf(r *sdnv1.PolicyRule) sdnv1.PolicyAction {
	if r.Action == sdnv1.PolicyAction_POLICY_ACTION_UNSPECIFIED {
		return sdnv1.PolicyAction_POLICY_ACTION_ALLOW
	}
	return r.Action
}

// actionRank orders actions at equal priority: deny first, then pass, then
// allow (the more restrictive choice wins a tie).
func actionRank(a sdnv1.PolicyAction) int {
	switch a {
	case sdnv1.PolicyAction_POLICY_ACTION_DENY:
		return 0
	case sdnv1.PolicyAction_POLICY_ACTION_PASS:
		return 1
	}
	return 2
}

// ActionName is the HCL spelling of an action.
func ActionName(a sdnv1.PolicyAction) string {
	switch a {
	case sdnv1.PolicyAction_POLICY_ACTION_DENY:
		return "deny"
	case sdnv1.PolicyAction_POLICY_ACTION_PASS:
		return "pass"
	}
	return "allow"
}

// Selects reports whether p applies to w, whose network is n (nil when
// unknown: a cluster-wide policy with a networks selector then does not
// apply).
func Selects(p *sdnv1.Policy, w *sdnv1.Workload, n *sdnv1.Network) bool {
	if p.Network != "" {
		if w.Network != p.Network {
			return false
		}
	} else if p.Networks != nil && (n == nil || !Matches(p.Networks, n.Labels)) {
		return false
	}
	return p.Workloads == nil || Matches(p.Workloads, w.Labels)
}

// Isolates reports whether p isolates the workloads it selects in d.
func Isolates(p *sdnv1.Policy, d Direction) bool {
	return slices.Contains(p.Isolate, string(d))
}

// Applicable returns the rules that apply to w (of network n) in d, in
// evaluation order (Less), and the keys of the policies that isolate it in
// d, sorted.
func Applicable(policies []*sdnv1.Policy, w *sdnv1.Workload, n *sdnv1.Network, d Direction) (slots []Slot, isolatedBy []string) {
	for _, p := range policies {
		if !Selects(p, w, n) {
			continue
		}
		if Isolates(p, d) {
			isolatedBy = append(isolatedBy, Key(p))
		}
		tier := TierNetwork
		if p.Network == "" {
			tier = TierCluster
		}
		rules := p.Ingress
		if d == Egress {
			rules = p.Egress
		}
		for i, r := range rules {
			slots = append(slots, Slot{Policy: p, Tier: tier, Dir: d, Index: i, Rule: r})
		}
	}
	slices.SortFunc(slots, Compare)
	slices.Sort(isolatedBy)
	return slots, isolatedBy
}

// Compare orders slots for evaluation: cluster-wide tier first, then lower
// priority, then deny before pass before allow, then policy key and rule
// index (which only makes the order stable: slots that tie up to there
// have the same action, so which matches first does not change a verdict).
func Compare(a, b Slot) int {
	return cmp.Or(
		cmp.Compare(a.Tier, b.Tier),
		cmp.Compare(a.Policy.Priority, b.Policy.Priority),
		cmp.Compare(actionRank(a.Action()), actionRank(b.Action())),
		cmp.Compare(Key(a.Policy), Key(b.Policy)),
		cmp.Compare(a.Index, b.Index),
	)
}

// Level is what makes two slots equivalent for the datapath: slots of equal
// level share an OpenFlow priority. Slots of different levels never do.
type Level struct {
	Tier     Tier
	Priority int32
	Action   sdnv1.PolicyAction
}

// LevelOf is a slot's level.
func LevelOf(s Slot) Level { return Level{s.Tier, s.Policy.Priority, s.Action()} }
