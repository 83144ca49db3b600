package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Group is a selector peer in the context of its policy: the workloads it
// stands for. Scope is the policy's network for a network's policy whose
// peer has no networks selector (the peer means workloads of that network),
// and "" otherwise.
type Group struct {
	Scope     string
	Networks  *sdnv1.LabelSelector // nil: not by network
	Workloads *sdnv1.LabelSelector // nil: every workload of the networks
}

// PeerGroup returns the group a selector peer of p stands for; ok is false
// for a CIDR peer.
func PeerGroup(p *sdnv1.Policy, peer *sdnv1.PolicyPeer) (g Group, ok bool) {
	if peer.Workloads == nil && peer.Networks == nil {
		return Group{}, false
	}
	g = Group{Networks: peer.Networks, Workloads: peer.Workloads}
	if peer.Networks == nil {
		g.Scope = p.Network
	}
	return g, true
}

// Key is the group's canonical text: equal groups have equal keys.
func (g Group) Key() string {
	var s string
	switch {
	case g.Scope != "":
		s = "in network " + g.Scope
	case g.Networks != nil:
		s = "in networks{" + SelectorString(g.Networks) + "}"
	default:
		s = "in any network"
	}
	if g.Workloads == nil {
		return s + ": all workloads"
	}
	return s + ": workloads{" + SelectorString(g.Workloads) + "}"
}

// Name is the group's stored name: "g" and 16 hex digits of the key's
// SHA-256, so names are short and every server and agent derives the same.
func (g Group) Name() string { return GroupName(g.Key()) }

// GroupName is the name of the group with canonical key key.
func GroupName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "g" + hex.EncodeToString(sum[:8])
}

// Matches reports whether w (of network n, which may be nil when unknown)
// is in the group.
func (g Group) Matches(w *sdnv1.Workload, n *sdnv1.Network) bool {
	switch {
	case g.Scope != "":
		if w.Network != g.Scope {
			return false
		}
	case g.Networks != nil:
		if n == nil || !Matches(g.Networks, n.Labels) {
			return false
		}
	}
	return g.Workloads == nil || Matches(g.Workloads, w.Labels)
}

// Groups returns every group p's peers stand for, by name.
func Groups(p *sdnv1.Policy) map[string]Group {
	out := map[string]Group{}
	for _, rules := range [][]*sdnv1.PolicyRule{p.Ingress, p.Egress} {
		for _, r := range rules {
			for _, peer := range r.Peers {
				if g, ok := PeerGroup(p, peer); ok {
					out[g.Name()] = g
				}
			}
		}
	}
	return out
}

// String is the key, for messages.
func (g Group) String() string { return fmt.Sprint(g.Key()) }
