package flows

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// part is one conjunction of a rule: usually the whole rule, but named
// ports that resolve to different numbers split it by resolved value
// (ingress: the subjects, by their own declarations; egress: the peer
// addresses, by each member's).
type part struct {
	key      string // "" for the numbered ports, "tcp/8080" for a resolved named port
	subjects []int  // OpenFlow ports of the local workloads
	anyPeer  bool   // no peer dimension
	peers    []string
	anyPort  bool // no port dimension
	ports    []string
}

// peerAddr is one address a rule's peers stand for, with the member's
// named ports (nil for a CIDR peer: it never matches a named port).
type peerAddr struct {
	match string
	ports []*sdnv1.NamedPort
	cidr  bool
}

// parts splits a realized rule into its conjunctions.
func (c *compiler) parts(r *realized) []part {
	rule, d := r.slot.Rule, r.slot.Dir
	var subjects []int
	for _, w := range r.subjects {
		subjects = append(subjects, w.Port)
	}
	peers := c.peerAddrs(r.slot)
	anyPeer := len(rule.Peers) == 0
	var numbered []string
	type named struct{ name, proto string }
	var names []named
	for _, pp := range rule.Ports {
		if pp.Name != "" {
			names = append(names, named{pp.Name, policy.ProtocolOf(pp)})
		} else {
			numbered = append(numbered, portMatches(pp)...)
		}
	}
	var out []part
	if len(rule.Ports) == 0 || len(numbered) > 0 {
		out = append(out, part{subjects: subjects, anyPeer: anyPeer, peers: matchesOf(peers), anyPort: len(rule.Ports) == 0, ports: sorted(numbered)})
	}
	if len(names) == 0 {
		return out
	}
	// Resolved named ports: value ("tcp/8080") -> subjects or peers.
	bySubject := map[string][]int{}
	byPeer := map[string][]peerAddr{}
	for _, n := range names {
		if d == policy.Ingress {
			for _, w := range r.subjects {
				if v, ok := policy.NamedPortOf(&sdnv1.Workload{NamedPorts: w.NamedPorts}, n.name, n.proto); ok {
					k := fmt.Sprintf("%s/%d", n.proto, v)
					bySubject[k] = append(bySubject[k], w.Port)
				}
			}
			continue
		}
		// Egress: against each member's own ports. A rule without peers
		// stands for every workload, whose ports this host does not know:
		// its named ports match nothing here.
		for _, pa := range peers {
			if v, ok := policy.NamedPortOf(&sdnv1.Workload{NamedPorts: pa.ports}, n.name, n.proto); ok && !pa.cidr {
				k := fmt.Sprintf("%s/%d", n.proto, v)
				byPeer[k] = append(byPeer[k], pa)
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(bySubject)) {
		out = append(out, part{key: k, subjects: sortedInts(bySubject[k]), anyPeer: anyPeer, peers: matchesOf(peers), ports: []string{valueMatch(k)}})
	}
	for _, k := range slices.Sorted(maps.Keys(byPeer)) {
		out = append(out, part{key: k, subjects: subjects, peers: matchesOf(byPeer[k]), ports: []string{valueMatch(k)}})
	}
	return out
}

// peerAddrs returns the addresses a slot's peers stand for: the members of
// its address groups (/32) and its CIDRs minus their excepts.
func (c *compiler) peerAddrs(s policy.Slot) []peerAddr {
	field := "nw_src"
	if s.Dir == policy.Egress {
		field = "nw_dst"
	}
	var out []peerAddr
	for _, pp := range s.Rule.Peers {
		if g, ok := policy.PeerGroup(s.Policy, pp); ok {
			for _, m := range c.h.AddressGroups[g.Name()].GetMembers() {
				ip, err := netip.ParseAddr(m.GetIp())
				if err != nil || !ip.Is4() {
					continue
				}
				out = append(out, peerAddr{match: fmt.Sprintf("ip,%s=%s", field, ip), ports: m.GetPorts()})
			}
			continue
		}
		for _, p := range policy.CIDRPrefixes(pp) {
			m := fmt.Sprintf("ip,%s=%s", field, p)
			switch p.Bits() {
			case 0:
				m = "ip" // every address: OVS drops an all-zero mask
			case 32:
				m = fmt.Sprintf("ip,%s=%s", field, p.Addr())
			}
			out = append(out, peerAddr{match: m, cidr: true})
		}
	}
	return out
}

func matchesOf(ps []peerAddr) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.match)
	}
	return sorted(out)
}

func sorted(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

func sortedInts(s []int) []int {
	slices.Sort(s)
	return slices.Compact(s)
}

// valueMatch is the match of a resolved named port, "tcp/8080".
func valueMatch(k string) string {
	var proto string
	var port uint32
	fmt.Sscanf(k, "%3s/%d", &proto, &port)
	return fmt.Sprintf("%s,tp_dst=%d", proto, port)
}

// portMatches returns the matches of a numbered port block: one protocol,
// a port, or a range as the fewest value/mask prefixes.
func portMatches(pp *sdnv1.PolicyPort) []string {
	proto := policy.ProtocolOf(pp)
	switch {
	case proto == "icmp" || pp.Port == 0:
		return []string{proto}
	case pp.EndPort == 0 || pp.EndPort == pp.Port:
		return []string{fmt.Sprintf("%s,tp_dst=%d", proto, pp.Port)}
	}
	var out []string
	for _, vm := range PortMasks(pp.Port, pp.EndPort) {
		switch vm[1] {
		case 0xffff:
			out = append(out, fmt.Sprintf("%s,tp_dst=%d", proto, vm[0]))
		case 0:
			out = append(out, proto) // every port: OVS drops an all-zero mask
		default:
			out = append(out, fmt.Sprintf("%s,tp_dst=%#x/%#x", proto, vm[0], vm[1]))
		}
	}
	return out
}

// PortMasks decomposes the port range [lo, hi] into the fewest
// value/mask pairs that cover exactly it.
func PortMasks(lo, hi uint32) [][2]uint32 {
	var out [][2]uint32
	for lo <= hi && lo <= 0xffff {
		size := uint32(1)
		for size < 0x10000 && lo%(size*2) == 0 && lo+size*2-1 <= hi {
			size *= 2
		}
		out = append(out, [2]uint32{lo, 0xffff &^ (size - 1)})
		lo += size
	}
	return out
}
