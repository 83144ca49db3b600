package fsm

import (
	"maps"
	"net/netip"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Address groups are derived in the FSM, so every replica holds the same
// ones at the same revision and agents are sent only the groups their host
// needs (cluster/api's watch filter). After a command that changed
// workloads, networks or policies, every group is recomputed from the
// stored state and only those that changed are written (and recorded in
// the revision's changes, for watchers). A full recompute costs
// O(policies × workloads) selector matches plus O(groups × workloads); a
// command that touched none of those kinds (a heartbeat, liveness, a
// registration without waiting workloads) skips it entirely.

// groupInputs reports whether a command's changes can change a group.
func groupInputs(events []*sdnv1.ObjectChange) bool {
	for _, c := range events {
		switch model.Kind(c.Kind) {
		case model.KindWorkload, model.KindNetwork, model.KindPolicy:
			return true
		}
	}
	return false
}

// deriveGroups recomputes the address groups after the command's writes
// and writes those that changed, removing groups no policy refers to any
// more. Dry runs do not (their writes are not in the transaction).
func (e *exec) deriveGroups() error {
	if !e.write || !groupInputs(e.events) {
		return nil
	}
	if !e.tx.HasPolicies() && !e.tx.HasAddressGroups() {
		return nil
	}
	nets := map[string]*sdnv1.Network{}
	for _, n := range e.tx.Networks() {
		nets[n.Name] = n
	}
	want := DeriveGroups(e.tx.Policies(), nets, e.tx.Workloads(""))
	have := e.tx.AddressGroups()
	byName := map[string]*sdnv1.AddressGroup{}
	for _, g := range have {
		byName[g.Name] = g
	}
	for _, g := range want {
		old, ok := byName[g.Name]
		op := sdnv1.ChangeOp_CHANGE_OP_CREATE
		if ok {
			if sameGroup(old, g) {
				continue
			}
			op = sdnv1.ChangeOp_CHANGE_OP_UPDATE
		}
		g.ModRevision = e.rev
		e.recordEvent(op, model.KindAddressGroup, g.Name, &sdnv1.ObjectChange{AddressGroup: g})
		if err := e.tx.PutAddressGroup(g); err != nil {
			return err
		}
	}
	wanted := map[string]bool{}
	for _, g := range want {
		wanted[g.Name] = true
	}
	for _, g := range have {
		if wanted[g.Name] {
			continue
		}
		e.recordEvent(sdnv1.ChangeOp_CHANGE_OP_DELETE, model.KindAddressGroup, g.Name, &sdnv1.ObjectChange{AddressGroup: g})
		if err := e.tx.DeleteAddressGroup(g.Name); err != nil {
			return err
		}
	}
	return nil
}

// recordEvent notes a derived object's change for watchers only (not in
// the command's human-readable changes: users did not write it).
func (e *exec) recordEvent(op sdnv1.ChangeOp, kind model.Kind, name string, obj *sdnv1.ObjectChange) {
	obj.Op, obj.Kind, obj.Name = op, string(kind), name
	e.events = append(e.events, obj)
}

// sameGroup compares two groups but for their revision.
func sameGroup(a, b *sdnv1.AddressGroup) bool {
	x := proto.Clone(a).(*sdnv1.AddressGroup)
	x.ModRevision = b.ModRevision
	return proto.Equal(x, b)
}

// groupRef is one group and the policies whose peers refer to it.
type groupRef struct {
	g     policy.Group
	users []*sdnv1.Policy
}

// DeriveGroups computes the address groups of policies over the workloads
// (nets by name), sorted by name, without revisions: for every selector
// peer of every policy, its group (policy.PeerGroup), whose members are
// the workloads with an address it matches, sorted by address, and whose
// nodes are the hosts of the workloads the policies that refer to it
// select (those hosts compile the rules that use it). Deterministic: it
// ranges over sorted slices only.
func DeriveGroups(policies []*sdnv1.Policy, nets map[string]*sdnv1.Network, workloads []*sdnv1.Workload) []*sdnv1.AddressGroup {
	refs := map[string]*groupRef{}
	for _, p := range policies {
		for _, rules := range [][]*sdnv1.PolicyRule{p.Ingress, p.Egress} {
			for _, r := range rules {
				for _, peer := range r.Peers {
					g, ok := policy.PeerGroup(p, peer)
					if !ok {
						continue
					}
					ref := refs[g.Name()]
					if ref == nil {
						ref = &groupRef{g: g}
						refs[g.Name()] = ref
					}
					if !slices.Contains(ref.users, p) {
						ref.users = append(ref.users, p)
					}
				}
			}
		}
	}
	placed := make([]*sdnv1.Workload, 0, len(workloads))
	for _, w := range workloads {
		if w.Ip != "" && w.Pending == "" {
			placed = append(placed, w)
		}
	}
	hosts := selectedHosts(policies, nets, placed)
	out := make([]*sdnv1.AddressGroup, 0, len(refs))
	for _, name := range slices.Sorted(maps.Keys(refs)) {
		ref := refs[name]
		g := &sdnv1.AddressGroup{Name: name, Selector: ref.g.Key()}
		for _, w := range placed {
			if ref.g.Matches(w, nets[w.Network]) {
				g.Members = append(g.Members, &sdnv1.GroupMember{Ip: w.Ip, Workload: model.WorkloadKey(w.Network, w.Name), Vnid: w.Vnid, Ports: w.NamedPorts})
			}
		}
		slices.SortFunc(g.Members, compareMembers)
		nodes := map[string]bool{}
		for _, p := range ref.users {
			for _, h := range hosts[model.PolicyKey(p)] {
				nodes[h] = true
			}
		}
		g.Nodes = slices.Sorted(maps.Keys(nodes))
		out = append(out, g)
	}
	return out
}

// selectedHosts maps each policy's key to the sorted hosts of the
// workloads it selects.
func selectedHosts(policies []*sdnv1.Policy, nets map[string]*sdnv1.Network, placed []*sdnv1.Workload) map[string][]string {
	out := map[string][]string{}
	for _, p := range policies {
		set := map[string]bool{}
		for _, w := range placed {
			if policy.Selects(p, w, nets[w.Network]) {
				set[w.Node] = true
			}
		}
		out[model.PolicyKey(p)] = slices.Sorted(maps.Keys(set))
	}
	return out
}

// compareMembers orders members by address (as text when one does not
// parse), then workload key.
func compareMembers(a, b *sdnv1.GroupMember) int {
	x, errX := netip.ParseAddr(a.Ip)
	y, errY := netip.ParseAddr(b.Ip)
	c := strings.Compare(a.Ip, b.Ip)
	if errX == nil && errY == nil {
		c = x.Compare(y)
	}
	if c != 0 {
		return c
	}
	return strings.Compare(a.Workload, b.Workload)
}
