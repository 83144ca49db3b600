package hostnet

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Config is what one host's kernel must do for sdn beyond OVS: forward,
// masquerade workloads to the outside, serve node ports and refuse VIPs OVS
// did not translate.
type Config struct {
	GatewayDev  string       // the gateway port in the host namespace, "sdn-gw0"
	GatewayIP   netip.Addr   // its address, the first of the host's block of ClusterCIDR
	ClusterCIDR netip.Prefix // workload addresses
	ServiceCIDR netip.Prefix // VIPs
	UnderlayIP  netip.Addr   // the host's address other hosts and the outside reach
	// Subnet is the host's block of ClusterCIDR: its workloads are
	// masqueraded, but for NoSNATSources, the local workloads of networks
	// with snat off, which leave with their own address. So SNAT's rules
	// change only when such a workload comes or goes, not at every CNI ADD.
	Subnet        netip.Prefix
	NoSNATSources []netip.Addr
	NodePorts     []NodePort
	// HostPorts are the local workloads' port mappings.
	HostPorts []HostPort
}

// HostPort sends Protocol connections to HostIP:HostPort on to IP:Port, a
// local workload (no SNAT: the workload answers through this host, and
// its policy sees the client's address).
type HostPort struct {
	Protocol string     // "tcp" or "udp"
	HostIP   netip.Addr // an address of this host, usually UnderlayIP
	HostPort uint16
	IP       netip.Addr // in ClusterCIDR
	Port     uint16
}

func (h HostPort) String() string {
	return fmt.Sprintf("%s %s:%d -> %s:%d", h.Protocol, h.HostIP, h.HostPort, h.IP, h.Port)
}

// NodePort sends Protocol connections to UnderlayIP:NodePort on to
// VIP:Port.
type NodePort struct {
	Protocol string // "tcp" or "udp"
	NodePort uint16
	VIP      netip.Addr // in ServiceCIDR
	Port     uint16
}

func (n NodePort) String() string {
	return fmt.Sprintf("%s %d -> %s:%d", n.Protocol, n.NodePort, n.VIP, n.Port)
}

// normalize checks c and returns it with NoSNATSources and NodePorts sorted
// and duplicates dropped. Every error names the offending field.
func (c Config) normalize() (Config, error) {
	if err := validDev(c.GatewayDev); err != nil {
		return c, err
	}
	for _, p := range []struct {
		name string
		p    netip.Prefix
	}{{"cluster CIDR", c.ClusterCIDR}, {"service CIDR", c.ServiceCIDR}} {
		if !p.p.IsValid() || !p.p.Addr().Is4() || p.p.Masked() != p.p {
			return c, fmt.Errorf("host networking: %s %v: want an IPv4 prefix such as 10.128.0.0/14, without host bits", p.name, p.p)
		}
	}
	if c.ClusterCIDR.Overlaps(c.ServiceCIDR) {
		return c, fmt.Errorf("host networking: cluster CIDR %s and service CIDR %s overlap", c.ClusterCIDR, c.ServiceCIDR)
	}
	if !c.GatewayIP.Is4() || !c.ClusterCIDR.Contains(c.GatewayIP) {
		return c, fmt.Errorf("host networking: gateway address %v: want an IPv4 address in the cluster CIDR %s", c.GatewayIP, c.ClusterCIDR)
	}
	if !c.UnderlayIP.Is4() || c.ClusterCIDR.Contains(c.UnderlayIP) || c.ServiceCIDR.Contains(c.UnderlayIP) {
		return c, fmt.Errorf("host networking: underlay address %v: want an IPv4 address outside the cluster and service CIDRs", c.UnderlayIP)
	}
	if !c.Subnet.Addr().Is4() || c.Subnet != c.Subnet.Masked() || !c.ClusterCIDR.Contains(c.Subnet.Addr()) || c.Subnet.Bits() < c.ClusterCIDR.Bits() {
		return c, fmt.Errorf("host networking: host block %v: want an IPv4 prefix inside the cluster CIDR %s", c.Subnet, c.ClusterCIDR)
	}
	src, err := c.noSNATSources()
	if err != nil {
		return c, err
	}
	nps, err := c.nodePorts()
	if err != nil {
		return c, err
	}
	hps, err := c.hostPorts()
	if err != nil {
		return c, err
	}
	c.NoSNATSources, c.NodePorts, c.HostPorts = src, nps, hps
	return c, nil
}

func (c Config) noSNATSources() ([]netip.Addr, error) {
	src := slices.Clone(c.NoSNATSources)
	for _, a := range src {
		if !a.Is4() || !c.Subnet.Contains(a) {
			return nil, fmt.Errorf("host networking: no-SNAT source %v: want a workload address in the host's block %s", a, c.Subnet)
		}
	}
	slices.SortFunc(src, netip.Addr.Compare)
	return slices.Compact(src), nil
}

func (c Config) nodePorts() ([]NodePort, error) {
	nps := slices.Clone(c.NodePorts)
	for _, n := range nps {
		if n.Protocol != "tcp" && n.Protocol != "udp" {
			return nil, fmt.Errorf("host networking: node port %s: protocol %q, want tcp or udp", n, n.Protocol)
		}
		if n.NodePort == 0 || n.Port == 0 {
			return nil, fmt.Errorf("host networking: node port %s: port 0", n)
		}
		if !n.VIP.Is4() || !c.ServiceCIDR.Contains(n.VIP) {
			return nil, fmt.Errorf("host networking: node port %s: VIP not in the service CIDR %s", n, c.ServiceCIDR)
		}
	}
	slices.SortFunc(nps, func(a, b NodePort) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.NodePort, b.NodePort),
			a.VIP.Compare(b.VIP), cmp.Compare(a.Port, b.Port))
	})
	nps = slices.Compact(nps)
	for i := 1; i < len(nps); i++ {
		if a, b := nps[i-1], nps[i]; a.Protocol == b.Protocol && a.NodePort == b.NodePort {
			return nil, fmt.Errorf("host networking: node port %s/%d leads to both %s:%d and %s:%d; one node port serves one service port",
				a.Protocol, a.NodePort, a.VIP, a.Port, b.VIP, b.Port)
		}
	}
	return nps, nil
}

func (c Config) hostPorts() ([]HostPort, error) {
	hps := slices.Clone(c.HostPorts)
	for _, h := range hps {
		if h.Protocol != "tcp" && h.Protocol != "udp" {
			return nil, fmt.Errorf("host networking: host port %s: protocol %q, want tcp or udp", h, h.Protocol)
		}
		if h.HostPort == 0 || h.Port == 0 {
			return nil, fmt.Errorf("host networking: host port %s: port 0", h)
		}
		if !h.HostIP.Is4() || c.ClusterCIDR.Contains(h.HostIP) || c.ServiceCIDR.Contains(h.HostIP) {
			return nil, fmt.Errorf("host networking: host port %s: host address not an IPv4 address outside the cluster and service CIDRs", h)
		}
		if !h.IP.Is4() || !c.ClusterCIDR.Contains(h.IP) {
			return nil, fmt.Errorf("host networking: host port %s: workload address not in the cluster CIDR %s", h, c.ClusterCIDR)
		}
	}
	slices.SortFunc(hps, func(a, b HostPort) int {
		return cmp.Or(a.HostIP.Compare(b.HostIP), cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.HostPort, b.HostPort),
			a.IP.Compare(b.IP), cmp.Compare(a.Port, b.Port))
	})
	hps = slices.Compact(hps)
	for i := 1; i < len(hps); i++ {
		if a, b := hps[i-1], hps[i]; a.HostIP == b.HostIP && a.Protocol == b.Protocol && a.HostPort == b.HostPort {
			return nil, fmt.Errorf("host networking: host port %s/%s:%d leads to both %s:%d and %s:%d; one host port serves one workload port",
				a.Protocol, a.HostIP, a.HostPort, a.IP, a.Port, b.IP, b.Port)
		}
	}
	for _, h := range hps {
		for _, n := range c.NodePorts {
			if h.HostIP == c.UnderlayIP && n.Protocol == h.Protocol && n.NodePort == h.HostPort {
				return nil, fmt.Errorf("host networking: host port %s is also node port %s; one of them must move", h, n)
			}
		}
	}
	return hps, nil
}

// validDev applies the kernel's rules for interface names, and refuses the
// characters that would need quoting in nft's language.
func validDev(name string) error {
	if name == "" || len(name) > 15 || name == "." || name == ".." || strings.ContainsAny(name, "/: \t\n\r\v\f\"\\") {
		return fmt.Errorf("host networking: gateway device %q: want an interface name of 1 to 15 bytes without '/', ':', quotes or whitespace", name)
	}
	return nil
}
