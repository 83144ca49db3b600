package hostnet

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
)

// Names of what the package owns in a host namespace.
const (
	// Table is the nftables table, family inet, that holds every rule of
	// ours; nothing else of the host's firewall is touched.
	Table = "sdn"
	// RouteProtocol marks our route (`ip route` shows "proto 84"), apart
	// from datapath/host's (link.RouteProtocol, 83), so that each owner
	// keeps exactly its own routes through the gateway device.
	RouteProtocol = 84
)

// Sysctl is one network sysctl: Key under /proc/sys/net, Value.
type Sysctl struct{ Key, Value string }

// Plan is what one host namespace must hold, computed from a Config with
// no I/O: Apply makes the namespace match it.
type Plan struct {
	Sysctls    []Sysctl       // set in order
	GatewayDev string         // Routes go through it
	Routes     []netip.Prefix // on-link, RouteProtocol
	// Ruleset is the table's definition in nft's language; its comment
	// carries State, the digest of its rules, by which Apply recognises a
	// table that already matches.
	Ruleset string
	State   string
}

// Describe returns the plan for c, or what is wrong with c.
func Describe(c Config) (Plan, error) {
	c, err := c.normalize()
	if err != nil {
		return Plan{}, err
	}
	p := Plan{
		Sysctls: []Sysctl{
			{"ipv4/ip_forward", "1"},
			// The gateway address comes back from OVS as a source when a
			// node-port connection (SNATed to it) or the host's own
			// connection finds no endpoint; the kernel drops packets from
			// its own address as martians unless this is set.
			{"ipv4/conf/" + c.GatewayDev + "/accept_local", "1"},
		},
		GatewayDev: c.GatewayDev,
		Routes:     []netip.Prefix{c.ServiceCIDR},
	}
	body := rules(c)
	sum := sha256.Sum256([]byte(body))
	p.State = hex.EncodeToString(sum[:8])
	p.Ruleset = fmt.Sprintf("table inet %s {\n\tcomment %q\n%s}\n", Table, stateComment(p.State), body)
	return p, nil
}

// stateComment is the table's comment: what the table is, and the digest
// by which Apply recognises a table that already matches.
func stateComment(state string) string {
	return "sdn host networking (datapath/hostnet), state " + state
}

// Script is the nft transaction that replaces our table with the plan's,
// atomically: the first line makes the delete safe when there is none.
func (p Plan) Script() string {
	return fmt.Sprintf("table inet %s\ndelete table inet %s\n%s", Table, Table, p.Ruleset)
}

// rules renders the table's sets and chains.
func rules(c Config) string {
	gw := fmt.Sprintf("%q", c.GatewayDev)
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	w("\tset no_snat_sources {\n\t\ttype ipv4_addr%s\n\t}", elements(c.NoSNATSources, netip.Addr.String))
	w("\tmap node_ports {\n\t\ttype inet_proto . inet_service : ipv4_addr . inet_service%s\n\t}",
		elements(c.NodePorts, func(n NodePort) string {
			return fmt.Sprintf("%s . %d : %s . %d", n.Protocol, n.NodePort, n.VIP, n.Port)
		}))

	w("\tmap host_ports {\n\t\ttype ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service%s\n\t}",
		elements(c.HostPorts, func(h HostPort) string {
			return fmt.Sprintf("%s . %s . %d : %s . %d", h.HostIP, h.Protocol, h.HostPort, h.IP, h.Port)
		}))

	// A VIP OVS did not translate (no endpoint) is refused before routing.
	// An ICMP error to the host's own address cannot be sent from there
	// (the kernel would take the VIP as its source), so such packets go
	// untracked to forward, refused there.
	vip := fmt.Sprintf("iifname %s ip daddr %s", gw, c.ServiceCIDR)
	w("\tchain raw_prerouting {\n\t\ttype filter hook prerouting priority raw; policy accept;")
	w("\t\t%s meta l4proto tcp reject with tcp reset", vip)
	w("\t\t%s fib saddr type != local reject with icmpx port-unreachable", vip)
	w("\t\t%s notrack\n\t}", vip)

	nodePort := fmt.Sprintf("ip daddr %s dnat ip to meta l4proto . th dport map @node_ports", c.UnderlayIP)
	hostPort := "dnat ip to ip daddr . meta l4proto . th dport map @host_ports"
	w("\tchain nat_prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\t%s\n\t\t%s\n\t}", nodePort, hostPort)
	w("\tchain nat_output {\n\t\ttype nat hook output priority -100; policy accept;\n\t\t%s\n\t\t%s\n\t}", nodePort, hostPort)

	w("\tchain nat_postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;")
	w("\t\toifname %s ip daddr %s ct status dnat ct original ip daddr %s snat ip to %s comment %q",
		gw, c.ServiceCIDR, c.UnderlayIP, c.GatewayIP, "node port: the endpoint answers through this host")
	w("\t\toifname != %s ip saddr %s ip saddr != @no_snat_sources ip daddr != { %s, %s } masquerade\n\t}", gw, c.Subnet, c.ClusterCIDR, c.ServiceCIDR)

	w("\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;")
	w("\t\t%s ct state untracked reject with icmpx port-unreachable\n\t}", vip)
	return b.String()
}

// elements renders a set's elements line, or nothing for an empty set
// (nft refuses "elements = { }").
func elements[T any](xs []T, str func(T) string) string {
	if len(xs) == 0 {
		return ""
	}
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = str(x)
	}
	return "\n\t\telements = { " + strings.Join(s, ", ") + " }"
}
