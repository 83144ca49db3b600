package model

import (
	"fmt"
	"net/netip"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Services and their endpoints (derived by the servers, never declared).
const (
	KindService          Kind = "service"
	KindServiceEndpoints Kind = "serviceendpoints"
)

// Default node-port range, as Kubernetes'.
const (
	DefaultNodePortMin = 30000
	DefaultNodePortMax = 32767
)

// ServiceKey is the key a service is stored and watched under:
// "network/name" (names are unique per network).
func ServiceKey(s *sdnv1.Service) string { return WorkloadKey(s.Network, s.Name) }

// ValidateServicePorts checks a service's ports on their own: at least
// one; protocol tcp or udp; ports in 1-65535; a target port given by
// number or by name, not both, the name a valid named-port name; no two
// ports with the same port and protocol or the same name; a node port, if
// any, in [nodeMin, nodeMax] and not used twice. Each error names the port
// by its position ("port 2").
func ValidateServicePorts(ports []*sdnv1.ServicePort, nodeMin, nodeMax uint32) []error {
	if len(ports) == 0 {
		return []error{fmt.Errorf("a service needs at least one port")}
	}
	var errs []error
	seen, names, nodePorts := map[string]int{}, map[string]int{}, map[uint32]int{}
	for i, p := range ports {
		at := fmt.Sprintf("port %d", i+1)
		bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(at+": "+format, a...)) }
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			bad("protocol %q: want tcp or udp", p.Protocol)
		}
		if p.Port == 0 || p.Port > 65535 {
			bad("port %d is not in 1-65535", p.Port)
		}
		if p.TargetPort > 65535 {
			bad("target_port %d is not in 1-65535", p.TargetPort)
		}
		if p.TargetPort != 0 && p.TargetPortName != "" {
			bad("give target_port (%d) or target_port_name (%q), not both", p.TargetPort, p.TargetPortName)
		}
		if p.TargetPortName != "" {
			if err := ValidateName(p.TargetPortName); err != nil {
				bad("target_port_name: %v", err)
			}
		}
		key := fmt.Sprintf("%s/%d", p.Protocol, p.Port)
		if j, ok := seen[key]; ok {
			bad("%s is port %d's too", key, j)
		}
		seen[key] = i + 1
		if p.Name != "" {
			if j, ok := names[p.Name]; ok {
				bad("name %q is port %d's too", p.Name, j)
			}
			names[p.Name] = i + 1
		}
		if p.NodePort != 0 {
			if p.NodePort < nodeMin || p.NodePort > nodeMax {
				bad("node_port %d is outside the cluster's node-port range %d-%d", p.NodePort, nodeMin, nodeMax)
			}
			if j, ok := nodePorts[p.NodePort]; ok {
				bad("node_port %d is port %d's too", p.NodePort, j)
			}
			nodePorts[p.NodePort] = i + 1
		}
	}
	return errs
}

// ValidateVIP checks a requested virtual IP: an IPv4 address inside the
// service CIDR, neither its network nor its broadcast address. Empty (to
// be allocated) is valid.
func ValidateVIP(vip string, serviceCIDR netip.Prefix) error {
	if vip == "" {
		return nil
	}
	a, err := netip.ParseAddr(vip)
	if err != nil || !a.Is4() {
		return fmt.Errorf("vip %q is not an IPv4 address", vip)
	}
	if !serviceCIDR.Contains(a) {
		return fmt.Errorf("vip %s is outside the cluster's service_cidr %s", vip, serviceCIDR)
	}
	first := serviceCIDR.Masked().Addr()
	if a == first || (serviceCIDR.Bits() < 31 && a == lastAddr(serviceCIDR)) {
		return fmt.Errorf("vip %s is the network or broadcast address of service_cidr %s", vip, serviceCIDR)
	}
	return nil
}

// lastAddr is the last address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// ServicePortText renders one service port as the CLI and change details
// show it: "80/tcp->8080", "53/udp->dns", with " node:30080" when exposed.
func ServicePortText(p *sdnv1.ServicePort) string {
	proto := p.Protocol
	if proto == "" {
		proto = "tcp"
	}
	s := fmt.Sprintf("%d/%s", p.Port, proto)
	switch {
	case p.TargetPortName != "":
		s += "->" + p.TargetPortName
	case p.TargetPort != 0 && p.TargetPort != p.Port:
		s += fmt.Sprintf("->%d", p.TargetPort)
	}
	if p.NodePort != 0 {
		s += fmt.Sprintf(" node:%d", p.NodePort)
	}
	return s
}
