package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// World is what a verdict depends on.
type World struct {
	Isolation sdnv1.IsolationMode
	// HostTrafficByPolicy: a workload's own host is decided by policy like
	// any peer (the cluster's host_traffic setting); otherwise it is
	// always let in.
	HostTrafficByPolicy bool
	Networks            map[string]*sdnv1.Network
	Policies            []*sdnv1.Policy
}

// End is one end of a packet: a workload, a host (its gateway address), or
// any other address.
type End struct {
	Workload *sdnv1.Workload
	IP       netip.Addr
	// Host is set when IP is a host's own address; Node names the host.
	Host bool
	Node string
}

// Name renders the end for messages.
func (e End) Name() string {
	switch {
	case e.Workload != nil:
		return e.Workload.Network + "/" + e.Workload.Name
	case e.Host:
		return "host " + e.Node + " (" + e.IP.String() + ")"
	}
	return e.IP.String()
}

// Packet is the first packet of a connection.
type Packet struct {
	From, To End
	Protocol string // "tcp", "udp", "icmp"
	Port     uint32 // destination port (tcp, udp)
}

// Verdict decides p: allowed when the source's egress and the
// destination's ingress both allow it.
func (w *World) Verdict(p Packet) *sdnv1.VerdictResponse {
	eg := w.Decide(Egress, p)
	in := w.Decide(Ingress, p)
	return &sdnv1.VerdictResponse{Allowed: eg.Allowed && in.Allowed, Egress: eg, Ingress: in}
}

// Decide decides one direction of p: egress at its source, ingress at its
// destination. An end that is not a workload decides nothing (allowed).
func (w *World) Decide(d Direction, p Packet) *sdnv1.Decision {
	subject, peer := p.From, p.To
	if d == Ingress {
		subject, peer = p.To, p.From
	}
	out := &sdnv1.Decision{Direction: string(d)}
	if subject.Workload == nil {
		out.Allowed, out.By = true, "none"
		out.Reason = fmt.Sprintf("%s is not a workload: no %s policy applies", subject.Name(), d)
		return out
	}
	sw := subject.Workload
	if d == Ingress && !w.HostTrafficByPolicy && peer.Host && peer.Node == sw.Node {
		out.Allowed, out.By = true, "host"
		out.Reason = fmt.Sprintf("traffic from %s's own host %s is always allowed (cluster host_traffic = \"allow\")", subject.Name(), sw.Node)
		return out
	}
	slots, isolatedBy := Applicable(w.Policies, sw, w.Networks[sw.Network], d)
	if w.decideByRules(out, slots, subject, peer, p) {
		return out
	}
	if len(isolatedBy) > 0 {
		out.Allowed, out.By, out.Policy = false, "isolation", isolatedBy[0]
		out.Reason = fmt.Sprintf("%s is isolated for %s by %s and no rule allows %s", subject.Name(), d, quoteList(isolatedBy), describe(d, peer, p))
		return out
	}
	w.baseline(out, d, subject, peer)
	return out
}

// decideByRules runs the rules in order: the first that matches decides,
// a pass skips the rest of the cluster-wide tier. It reports whether a
// rule decided.
func (w *World) decideByRules(out *sdnv1.Decision, slots []Slot, subject, peer End, p Packet) bool {
	passed := false
	for _, s := range slots {
		if passed && s.Tier == TierCluster {
			continue
		}
		if !w.RuleMatches(s, subject, peer, p) {
			continue
		}
		switch s.Action() {
		case sdnv1.PolicyAction_POLICY_ACTION_PASS:
			out.Passed = append(out.Passed, Key(s.Policy)+" rule "+s.RuleName())
			passed = true
			continue
		case sdnv1.PolicyAction_POLICY_ACTION_DENY:
			out.Allowed = false
		default:
			out.Allowed = true
		}
		out.By = "policy"
		if s.Tier == TierCluster {
			out.By = "cluster-policy"
		}
		out.Policy, out.Rule = Key(s.Policy), s.RuleName()
		out.Reason = fmt.Sprintf("%s rule %s of %s %s %s %s", d2(s.Dir), s.RuleName(), policyWord(s), Key(s.Policy),
			map[bool]string{true: "allows", false: "denies"}[out.Allowed], describe(s.Dir, peer, p))
		return true
	}
	return false
}

// baseline decides traffic no policy decided: egress is always allowed
// (isolation protects the receiving end); ingress follows the cluster's
// isolation mode.
func (w *World) baseline(out *sdnv1.Decision, d Direction, subject, peer End) {
	out.By = "baseline"
	mode := w.Isolation
	sn := subject.Workload.Network
	switch {
	case d == Egress:
		out.Allowed = true
		out.Reason = fmt.Sprintf("no policy decides egress from %s: egress is allowed unless a policy says otherwise", subject.Name())
	case mode == sdnv1.IsolationMode_ISOLATION_MODE_FLAT:
		out.Allowed = true
		out.Reason = fmt.Sprintf("no policy decides ingress to %s, and isolation \"flat\" lets every workload in", subject.Name())
	case peer.Workload == nil:
		out.Allowed = true
		out.Reason = fmt.Sprintf("no policy decides ingress to %s, and hosts and addresses outside the cluster's workloads reach every workload unless a policy isolates it", subject.Name())
	case peer.Workload.Network == sn:
		out.Allowed = true
		out.Reason = fmt.Sprintf("no policy decides ingress to %s, and isolation %q lets its own network (%s) in", subject.Name(), isolationWord(mode), sn)
	case mode != sdnv1.IsolationMode_ISOLATION_MODE_POLICY && (w.isAdmin(sn) || w.isAdmin(peer.Workload.Network)):
		out.Allowed = true
		out.Reason = fmt.Sprintf("no policy decides ingress to %s, and isolation \"multitenant\" lets the admin network's traffic through", subject.Name())
	default:
		out.Allowed = false
		out.Reason = fmt.Sprintf("no policy decides ingress to %s, and isolation %q keeps network %s from %s", subject.Name(), isolationWord(mode), peer.Workload.Network, sn)
	}
}

func (w *World) isAdmin(network string) bool {
	n := w.Networks[network]
	return n != nil && n.Admin
}

// RuleMatches reports whether slot s's rule matches the packet, seen from
// subject (the workload the rule guards) with the other end peer.
func (w *World) RuleMatches(s Slot, subject, peer End, p Packet) bool {
	return w.peerMatches(s, peer) && portMatches(s.Rule, p, s.Dir, subject, peer)
}

func (w *World) peerMatches(s Slot, peer End) bool {
	if len(s.Rule.Peers) == 0 {
		return true
	}
	for _, pp := range s.Rule.Peers {
		if g, ok := PeerGroup(s.Policy, pp); ok {
			if peer.Workload != nil && g.Matches(peer.Workload, w.Networks[peer.Workload.Network]) {
				return true
			}
			continue
		}
		if CIDRContains(pp, peer.IP) {
			return true
		}
	}
	return false
}

// CIDRContains reports whether a is in a CIDR peer's cidr and in none of
// its excepts.
func CIDRContains(pp *sdnv1.PolicyPeer, a netip.Addr) bool {
	c, err := netip.ParsePrefix(pp.Cidr)
	if err != nil || !a.IsValid() || !c.Contains(a) {
		return false
	}
	for _, e := range pp.Except {
		if x, err := netip.ParsePrefix(e); err == nil && x.Contains(a) {
			return false
		}
	}
	return true
}

// portMatches: no ports means any; a named port is looked up in the
// destination workload's declared ports (the subject for ingress, the peer
// for egress).
func portMatches(r *sdnv1.PolicyRule, p Packet, d Direction, subject, peer End) bool {
	if len(r.Ports) == 0 {
		return true
	}
	dst := subject
	if d == Egress {
		dst = peer
	}
	for _, pp := range r.Ports {
		if PortMatches(pp, p.Protocol, p.Port, dst.Workload) {
			return true
		}
	}
	return false
}

// PortMatches reports whether protocol/port is in pp; dst is the
// destination workload (for named ports; nil when it is none).
func PortMatches(pp *sdnv1.PolicyPort, protocol string, port uint32, dst *sdnv1.Workload) bool {
	if ProtocolOf(pp) != protocol {
		return false
	}
	switch {
	case protocol == "icmp":
		return true
	case pp.Name != "":
		n, ok := NamedPortOf(dst, pp.Name, protocol)
		return ok && n == port
	case pp.Port == 0:
		return true
	case pp.EndPort != 0:
		return port >= pp.Port && port <= pp.EndPort
	}
	return port == pp.Port
}

// ProtocolOf is a port's protocol (tcp when unspecified).
func ProtocolOf(pp *sdnv1.PolicyPort) string {
	if pp.Protocol == "" {
		return "tcp"
	}
	return pp.Protocol
}

// NamedPortOf finds the port a workload declares as name for protocol.
func NamedPortOf(w *sdnv1.Workload, name, protocol string) (uint32, bool) {
	if w == nil {
		return 0, false
	}
	for _, np := range w.NamedPorts {
		if np.Name == name && (np.Protocol == protocol || (np.Protocol == "" && protocol == "tcp")) {
			return np.Port, true
		}
	}
	return 0, false
}

func describe(d Direction, peer End, p Packet) string {
	what := p.Protocol
	if p.Protocol != "icmp" {
		what = fmt.Sprintf("%s/%d", p.Protocol, p.Port)
	}
	if d == Egress {
		return fmt.Sprintf("%s to %s", what, peer.Name())
	}
	return fmt.Sprintf("%s from %s", what, peer.Name())
}

func d2(d Direction) string { return string(d) }

func policyWord(s Slot) string {
	if s.Tier == TierCluster {
		return "cluster-wide policy"
	}
	return "policy"
}

func isolationWord(m sdnv1.IsolationMode) string {
	switch m {
	case sdnv1.IsolationMode_ISOLATION_MODE_FLAT:
		return "flat"
	case sdnv1.IsolationMode_ISOLATION_MODE_POLICY:
		return "policy"
	}
	return "multitenant"
}

func quoteList(keys []string) string {
	q := slices.Clone(keys)
	for i, k := range q {
		q[i] = "policy " + k
	}
	return strings.Join(q, ", ")
}
