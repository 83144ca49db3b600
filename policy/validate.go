package policy

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Problem is one thing wrong with a policy: the attribute at fault (a path
// such as "ingress[1].peers[0].cidr"; "" for the whole policy) and what
// to write instead.
type Problem struct {
	Field   string
	Message string
}

// Check validates a policy on its own (whether its network exists is the
// caller's business). It returns every problem found.
func Check(p *sdnv1.Policy) []Problem {
	var ps []Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{field, fmt.Sprintf(format, args...)})
	}
	if err := model.ValidateName(p.Name); err != nil {
		add("", "policy name %s is invalid: %v", model.Quote(p.Name), err)
	}
	if p.Network != "" && p.Networks != nil {
		add("networks", "a network's policy selects workloads of its own network; a networks selector is for cluster-wide policies (omit network)")
	}
	for _, sel := range []struct {
		attr string
		s    *sdnv1.LabelSelector
	}{{"networks", p.Networks}, {"workloads", p.Workloads}} {
		if err := CheckSelector(sel.attr, sel.s); err != nil {
			add(sel.attr, "%v", err)
		}
	}
	if p.Priority < 0 || p.Priority > MaxPriority {
		add("priority", "priority %d is out of range; write 0 to %d (lower is evaluated first)", p.Priority, MaxPriority)
	}
	seen := map[string]bool{}
	for _, d := range p.Isolate {
		if d != string(Ingress) && d != string(Egress) {
			add("isolate", "isolate lists %s; write \"ingress\", \"egress\" or both", model.Quote(d))
		} else if seen[d] {
			add("isolate", "isolate lists %q twice", d)
		}
		seen[d] = true
	}
	for _, d := range []Direction{Ingress, Egress} {
		rules := p.Ingress
		if d == Egress {
			rules = p.Egress
		}
		names := map[string]bool{}
		for i, r := range rules {
			ps = append(ps, checkRule(p, d, i, r, names)...)
		}
	}
	return ps
}

func checkRule(p *sdnv1.Policy, d Direction, i int, r *sdnv1.PolicyRule, names map[string]bool) []Problem {
	var ps []Problem
	at := fmt.Sprintf("%s[%d]", d, i)
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{at + field, fmt.Sprintf(format, args...)})
	}
	if r.Name != "" {
		if err := model.ValidateName(r.Name); err != nil {
			add(".name", "rule name %s is invalid: %v", model.Quote(r.Name), err)
		} else if names[r.Name] {
			add(".name", "two %s rules are named %q; rule names are unique per direction", d, r.Name)
		}
		names[r.Name] = true
	}
	switch r.Action {
	case sdnv1.PolicyAction_POLICY_ACTION_UNSPECIFIED, sdnv1.PolicyAction_POLICY_ACTION_ALLOW, sdnv1.PolicyAction_POLICY_ACTION_DENY:
	case sdnv1.PolicyAction_POLICY_ACTION_PASS:
		if p.Network != "" {
			add(".action", "action \"pass\" hands the decision from cluster-wide policies down to the networks' policies; a network's policy can only allow or deny")
		}
	default:
		add(".action", "action %d is not allow, deny or pass", r.Action)
	}
	for j, peer := range r.Peers {
		for _, pr := range checkPeer(peer) {
			add(fmt.Sprintf(".peers[%d]%s", j, pr.Field), "%s", pr.Message)
		}
	}
	for j, port := range r.Ports {
		if msg := checkPort(port); msg != "" {
			add(fmt.Sprintf(".ports[%d]", j), "%s", msg)
		}
	}
	return ps
}

func checkPeer(peer *sdnv1.PolicyPeer) []Problem {
	bySel := peer.Workloads != nil || peer.Networks != nil
	var ps []Problem
	switch {
	case bySel && (peer.Cidr != "" || len(peer.Except) > 0):
		return []Problem{{"", "a peer is either workloads and networks chosen by labels, or a cidr (with except); write two peers for both"}}
	case !bySel && peer.Cidr == "":
		if len(peer.Except) > 0 {
			return []Problem{{".except", "except needs the cidr it cuts holes into"}}
		}
		return []Problem{{"", "a peer needs workloads, networks or cidr; an empty peer list (no peers) means any peer"}}
	case bySel:
		// In a fixed order: the FSM applies Check, and its answer must not
		// vary between runs (CONTRIBUTING.md, Shape: no map order).
		for _, sel := range []struct {
			attr string
			s    *sdnv1.LabelSelector
		}{{"networks", peer.Networks}, {"workloads", peer.Workloads}} {
			if err := CheckSelector(sel.attr, sel.s); err != nil {
				ps = append(ps, Problem{"." + sel.attr, err.Error()})
			}
		}
		return ps
	}
	c, err := model.ParseIPv4Prefix("cidr", peer.Cidr)
	if err != nil {
		return []Problem{{".cidr", err.Error()}}
	}
	for k, e := range peer.Except {
		x, err := model.ParseIPv4Prefix("except", e)
		switch {
		case err != nil:
			ps = append(ps, Problem{fmt.Sprintf(".except[%d]", k), err.Error()})
		case !c.Contains(x.Addr()) || x.Bits() <= c.Bits():
			ps = append(ps, Problem{fmt.Sprintf(".except[%d]", k), fmt.Sprintf("except %s is not strictly inside cidr %s", x, c)})
		}
	}
	return ps
}

// Protocols are the protocols rules may name. SCTP is refused: the
// userspace datapath's conntrack does not track it (docs/policy.md).
var Protocols = []string{"tcp", "udp", "icmp"}

func checkPort(pp *sdnv1.PolicyPort) string {
	proto := ProtocolOf(pp)
	switch {
	case proto == "sctp":
		return "protocol \"sctp\" is not supported: Open vSwitch's userspace datapath does not track SCTP connections, so sdn cannot keep its replies flowing; use tcp, udp or icmp"
	case !slices.Contains(Protocols, proto):
		return fmt.Sprintf("protocol %s is not one of tcp, udp, icmp", model.Quote(proto))
	case proto == "icmp" && (pp.Port != 0 || pp.EndPort != 0 || pp.Name != ""):
		return "icmp has no ports; write protocol = \"icmp\" alone"
	case pp.Name != "" && (pp.Port != 0 || pp.EndPort != 0):
		return "a port is a number (with end_port for a range) or a name, not both"
	case pp.Name != "":
		if err := CheckPortName(pp.Name); err != nil {
			return err.Error()
		}
	case pp.Port > 65535:
		return fmt.Sprintf("port %d is out of range; write 1 to 65535", pp.Port)
	case pp.EndPort != 0 && pp.Port == 0:
		return "end_port needs port, the start of the range"
	case pp.EndPort != 0 && (pp.EndPort < pp.Port || pp.EndPort > 65535):
		return fmt.Sprintf("end_port %d must be at least port %d and at most 65535", pp.EndPort, pp.Port)
	}
	return ""
}

// CheckPortName validates a named port's name as Kubernetes does (an IANA
// service name): 1-15 lowercase letters, digits and '-', with a letter, no
// '-' at either end and no "--".
func CheckPortName(name string) error {
	if len(name) == 0 || len(name) > 15 {
		return fmt.Errorf("port name %s must be 1 to 15 characters", model.Quote(name))
	}
	letter := false
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z':
			letter = true
		case r >= '0' && r <= '9':
		case r == '-' && i > 0 && i < len(name)-1 && name[i-1] != '-':
		default:
			return fmt.Errorf("port name %s may hold lowercase letters, digits and single '-' inside only", model.Quote(name))
		}
	}
	if !letter {
		return fmt.Errorf("port name %s needs at least one letter", model.Quote(name))
	}
	return nil
}

// CheckNamedPorts validates a workload's named ports: valid, unique names,
// tcp or udp, ports 1-65535.
func CheckNamedPorts(ports []*sdnv1.NamedPort) error {
	seen := map[string]bool{}
	for _, np := range ports {
		if err := CheckPortName(np.Name); err != nil {
			return err
		}
		if seen[np.Name] {
			return fmt.Errorf("port name %q is declared twice", np.Name)
		}
		seen[np.Name] = true
		if np.Protocol != "" && np.Protocol != "tcp" && np.Protocol != "udp" {
			return fmt.Errorf("named port %q: protocol %s is not tcp or udp", np.Name, model.Quote(np.Protocol))
		}
		if np.Port == 0 || np.Port > 65535 {
			return fmt.Errorf("named port %q: port %d is out of range 1-65535", np.Name, np.Port)
		}
	}
	return nil
}

// CIDRPrefixes returns a CIDR peer as prefixes: its cidr minus its
// excepts, as the fewest prefixes that cover exactly the rest (for flows,
// which cannot say "except").
func CIDRPrefixes(pp *sdnv1.PolicyPeer) []netip.Prefix {
	c, err := netip.ParsePrefix(pp.Cidr)
	if err != nil {
		return nil
	}
	set := []netip.Prefix{c.Masked()}
	for _, e := range pp.Except {
		x, err := netip.ParsePrefix(e)
		if err != nil {
			continue
		}
		var next []netip.Prefix
		for _, p := range set {
			next = append(next, subtract(p, x.Masked())...)
		}
		set = next
	}
	slices.SortFunc(set, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return set
}

// subtract returns p minus x as prefixes.
func subtract(p, x netip.Prefix) []netip.Prefix {
	switch {
	case !p.Overlaps(x):
		return []netip.Prefix{p}
	case x.Bits() <= p.Bits():
		return nil // x covers p
	}
	lo, hi := halves(p)
	return append(subtract(lo, x), subtract(hi, x)...)
}

// halves splits an IPv4 prefix into its two halves.
func halves(p netip.Prefix) (netip.Prefix, netip.Prefix) {
	b := p.Bits() + 1
	lo := netip.PrefixFrom(p.Addr(), b)
	a := p.Addr().As4()
	bit := 32 - b
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= 1 << bit
	hi := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), b)
	return lo, hi
}
