package fsm

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Policies are declared in HCL only (ApplyRequest.policies) and stored by
// model.PolicyKey. The checks here refuse only what the new fields bring
// (policies, named ports): an entry written before they existed carries
// none, so it is applied exactly as it was, without the envelope-format
// gate (CONTRIBUTING.md, "Shape").

// policyPut is one policy an apply writes.
type policyPut struct {
	op      sdnv1.ChangeOp
	p       *sdnv1.Policy
	details []string
}

// checkPolicies checks the request's policies: each on its own
// (policy.Check), its network among those that remain, names unique.
func (a *configApply) checkPolicies() {
	e := a.e
	a.storedP = map[string]*sdnv1.Policy{}
	for _, p := range e.tx.Policies() {
		a.storedP[model.PolicyKey(p)] = p
	}
	a.wantedP = map[string]*sdnv1.Policy{}
	for _, p := range a.req.Policies {
		key := model.PolicyKey(p)
		if _, dup := a.wantedP[key]; dup {
			e.vs.add(CodeInvalid, model.KindPolicy, key, "", "declared twice; a network's policy names are unique in the network, a cluster-wide policy's among cluster-wide policies")
			continue
		}
		for _, pr := range policy.Check(p) {
			e.vs.add(CodeInvalid, model.KindPolicy, key, pr.Field, pr.Message)
		}
		if p.Network != "" && !a.remaining[p.Network] {
			e.vs.add(CodeNotFound, model.KindPolicy, key, "network", fmt.Sprintf("unknown network %q; declare it in a network block or check `sdnctl get networks`", p.Network))
		}
		if old, ok := a.storedP[key]; ok && old.GetOrigin().GetKind() != sdnv1.OriginKind_ORIGIN_KIND_HCL {
			e.vs.add(CodeConflict, model.KindPolicy, key, "", fmt.Sprintf("exists and was created by %s, not HCL; choose another name", originName(old.Origin)))
		}
		a.wantedP[key] = p
	}
}

// planPolicyPrunes lists the HCL policies a prune removes, and refuses to
// remove a network (pruned) that keeps policies.
func (a *configApply) planPolicyPrunes() {
	if a.req.Prune {
		for _, key := range slices.Sorted(maps.Keys(a.storedP)) {
			p := a.storedP[key]
			if _, keep := a.wantedP[key]; !keep && p.GetOrigin().GetKind() == sdnv1.OriginKind_ORIGIN_KIND_HCL {
				a.pruneP = append(a.pruneP, p)
			}
		}
	}
	for _, n := range a.pruneN {
		var left []string
		for _, key := range slices.Sorted(maps.Keys(a.storedP)) {
			p := a.storedP[key]
			if _, wanted := a.wantedP[key]; p.Network == n.Name && !wanted && !slices.Contains(a.pruneP, p) {
				left = append(left, key)
			}
		}
		if len(left) > 0 {
			a.e.vs.add(CodeConflict, model.KindNetwork, n.Name, "", fmt.Sprintf("cannot prune: it still has %d policies (%s); remove them in the same apply or delete them first", len(left), summarize(left, 3)))
		}
	}
}

// planPolicies lists the policies to write: new ones and changed ones.
func (a *configApply) planPolicies() {
	for _, key := range slices.Sorted(maps.Keys(a.wantedP)) {
		p := storedPolicy(a.wantedP[key])
		old, exists := a.storedP[key]
		if !exists {
			a.polPuts = append(a.polPuts, policyPut{sdnv1.ChangeOp_CHANGE_OP_CREATE, p, nil})
			continue
		}
		p.CreateRevision = old.CreateRevision
		if d := policyDetails(old, p); len(d) > 0 {
			a.polPuts = append(a.polPuts, policyPut{sdnv1.ChangeOp_CHANGE_OP_UPDATE, p, d})
		}
	}
}

// writePolicies writes the planned policies and removes the pruned ones.
func (a *configApply) writePolicies() *Error {
	for _, p := range a.polPuts {
		if err := a.e.putPolicy(p.op, p.p, p.details); err != nil {
			return ioError(err)
		}
	}
	for _, p := range a.pruneP {
		if err := a.e.deletePolicy(p); err != nil {
			return ioError(err)
		}
	}
	return nil
}

// storedPolicy is a requested policy as it is stored: input-only fields
// (source ranges) and output-only ones (status, revisions) cleared, its
// origin HCL.
func storedPolicy(in *sdnv1.Policy) *sdnv1.Policy {
	p := proto.Clone(in).(*sdnv1.Policy)
	p.Ranges, p.Status, p.CreateRevision, p.ModRevision = nil, nil, 0, 0
	for _, rules := range [][]*sdnv1.PolicyRule{p.Ingress, p.Egress} {
		for _, r := range rules {
			r.Ranges = nil
		}
	}
	p.Origin = hclFrom(in.GetOrigin().GetFile())
	return p
}

// policyDetails lists what changed between two versions of a policy, one
// line per attribute (rules coarsely: how many, and that they changed).
func policyDetails(old, cur *sdnv1.Policy) []string {
	var d []string
	sel := func(name string, a, b *sdnv1.LabelSelector) {
		if !proto.Equal(a, b) {
			d = append(d, fmt.Sprintf("%s: %s -> %s", name, selectorText(a), selectorText(b)))
		}
	}
	sel("networks", old.Networks, cur.Networks)
	sel("workloads", old.Workloads, cur.Workloads)
	if old.Priority != cur.Priority {
		d = append(d, fmt.Sprintf("priority: %d -> %d", old.Priority, cur.Priority))
	}
	if !slices.Equal(old.Isolate, cur.Isolate) {
		d = append(d, fmt.Sprintf("isolate: %q -> %q", old.Isolate, cur.Isolate))
	}
	rules := func(name string, a, b []*sdnv1.PolicyRule) {
		if len(a) != len(b) {
			d = append(d, fmt.Sprintf("%s: %d rules -> %d rules", name, len(a), len(b)))
			return
		}
		for i := range a {
			if !proto.Equal(a[i], b[i]) {
				d = append(d, fmt.Sprintf("%s[%d]: changed", name, i))
			}
		}
	}
	rules("ingress", old.Ingress, cur.Ingress)
	rules("egress", old.Egress, cur.Egress)
	if old.GetOrigin().GetFile() != cur.GetOrigin().GetFile() {
		d = append(d, fmt.Sprintf("file: %q -> %q", old.GetOrigin().GetFile(), cur.GetOrigin().GetFile()))
	}
	return d
}

// selectorText renders a selector for change details ("(none)" when absent).
func selectorText(s *sdnv1.LabelSelector) string {
	if s == nil {
		return "(none)"
	}
	return "{" + policy.SelectorString(s) + "}"
}

func (e *exec) putPolicy(op sdnv1.ChangeOp, p *sdnv1.Policy, details []string) error {
	p.ModRevision = e.rev
	if op == sdnv1.ChangeOp_CHANGE_OP_CREATE {
		p.CreateRevision = e.rev
	}
	e.record(op, model.KindPolicy, model.PolicyKey(p), details, &sdnv1.ObjectChange{Policy: p})
	if !e.write {
		return nil
	}
	return e.tx.PutPolicy(p)
}

func (e *exec) deletePolicy(p *sdnv1.Policy) error {
	key := model.PolicyKey(p)
	e.record(sdnv1.ChangeOp_CHANGE_OP_DELETE, model.KindPolicy, key, nil, &sdnv1.ObjectChange{Policy: p})
	if !e.write {
		return nil
	}
	return e.tx.DeletePolicy(key)
}

// deletePolicyObject handles `sdnctl delete policy NAME|NETWORK/NAME`.
func deletePolicyObject(e *exec, name string) (*Result, *Error) {
	p, ok := e.tx.Policy(name)
	if !ok {
		return nil, refuse(CodeNotFound, model.KindPolicy, name, "", fmt.Sprintf("no policy %q; name a network's policy NETWORK/NAME, a cluster-wide one NAME (`sdnctl get policies` lists them)", name))
	}
	if err := e.deletePolicy(p); err != nil {
		return nil, ioError(err)
	}
	return e.finish()
}

// networkPolicies lists the keys of the policies of a network, sorted.
func networkPolicies(e *exec, network string) []string {
	var keys []string
	for _, p := range e.tx.Policies() {
		if p.Network == network {
			keys = append(keys, model.PolicyKey(p))
		}
	}
	sort.Strings(keys)
	return keys
}

// checkNamedPorts validates a workload's named ports; "" when they are fine.
func checkNamedPorts(ports []*sdnv1.NamedPort) string {
	if err := policy.CheckNamedPorts(ports); err != nil {
		return err.Error()
	}
	return ""
}

// namedPortsText renders named ports for change details.
func namedPortsText(ports []*sdnv1.NamedPort) string {
	if len(ports) == 0 {
		return "(none)"
	}
	s := ""
	for i, np := range ports {
		if i > 0 {
			s += ","
		}
		proto := np.Protocol
		if proto == "" {
			proto = "tcp"
		}
		s += fmt.Sprintf("%s=%s/%d", np.Name, proto, np.Port)
	}
	return s
}

// normalNamedPorts is how named ports are stored: protocol spelled out
// ("tcp" when unset), sorted by name.
func normalNamedPorts(in []*sdnv1.NamedPort) []*sdnv1.NamedPort {
	if len(in) == 0 {
		return nil
	}
	out := make([]*sdnv1.NamedPort, len(in))
	for i, np := range in {
		c := proto.Clone(np).(*sdnv1.NamedPort)
		if c.Protocol == "" {
			c.Protocol = "tcp"
		}
		out[i] = c
	}
	slices.SortFunc(out, func(a, b *sdnv1.NamedPort) int { return strings.Compare(a.Name, b.Name) })
	return out
}
