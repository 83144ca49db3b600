package flows

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// PolicyScale is a synthetic host for measuring how policy flows grow
// (tests and `make bench`): n local workloads of network "proj1" selected
// by one policy whose one ingress rule admits m peer workloads (an
// address group of m members) on tcp 80 and 443.
func PolicyScale(n, m int) *Host {
	h := &Host{
		Isolation: Policy, Subnet: netip.MustParsePrefix("10.128.0.0/22"), Gateway: netip.MustParseAddr("10.128.0.1"),
		GatewayMAC: net.HardwareAddr{0x0a, 0x58, 0x0a, 0x80, 0, 1}, ClusterCIDR: netip.MustParsePrefix("10.128.0.0/14"),
		TunnelPort: 1, GatewayPort: 2,
	}
	p := &sdnv1.Policy{Name: "web", Network: "proj1", Workloads: &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		Priority: policy.DefaultPriority, Isolate: []string{"ingress"},
		Ingress: []*sdnv1.PolicyRule{{Name: "clients",
			Peers: []*sdnv1.PolicyPeer{{Workloads: &sdnv1.LabelSelector{MatchLabels: map[string]string{"role": "client"}}}},
			Ports: []*sdnv1.PolicyPort{{Port: 80}, {Port: 443}}}}}
	ag := &sdnv1.AddressGroup{}
	for g := range policy.Groups(p) {
		ag.Name = g
	}
	for i := range m {
		ag.Members = append(ag.Members, &sdnv1.GroupMember{Ip: netip.AddrFrom4([4]byte{10, 129, byte(i / 250), byte(1 + i%250)}).String()})
	}
	h.AddressGroups = map[string]*sdnv1.AddressGroup{ag.Name: ag}
	net1 := &sdnv1.Network{Name: "proj1"}
	for i := range n {
		ip := netip.AddrFrom4([4]byte{10, 128, byte(i / 250), byte(2 + i%250)})
		w := &sdnv1.Workload{Name: fmt.Sprint("w", i), Network: "proj1", Labels: map[string]string{"app": "web"}}
		in, by := policy.Applicable([]*sdnv1.Policy{p}, w, net1, policy.Ingress)
		eg, eby := policy.Applicable([]*sdnv1.Policy{p}, w, net1, policy.Egress)
		h.Local = append(h.Local, Workload{Name: "proj1/" + w.Name, IP: ip, VNID: 1, Port: 10 + i,
			MAC:     net.HardwareAddr{0x0a, 0x58, 10, 128, byte(i / 250), byte(2 + i%250)},
			Ingress: Rules{in, by}, Egress: Rules{eg, eby}})
	}
	if m == 0 { // the same host without the policy: the baseline to subtract
		for i := range h.Local {
			h.Local[i].Ingress, h.Local[i].Egress = Rules{}, Rules{}
		}
	}
	return h
}

// ServiceScale is a synthetic host with n services of m endpoints each
// (tcp 80 → 8080), for the reconciler's tests and benchmarks: VIPs in
// 172.30.0.0/16, endpoints in 10.129.0.0/16.
func ServiceScale(n, m int) *Host {
	h := PolicyScale(2, 0)
	for i := range n {
		s := Service{Key: fmt.Sprintf("proj1/svc%d", i), VIP: netip.AddrFrom4([4]byte{172, 30, byte(i / 250), byte(1 + i%250)}),
			Ports: []ServicePort{{"tcp", 80}}}
		for j := range m {
			s.Endpoints = append(s.Endpoints, Endpoint{Name: fmt.Sprintf("proj1/ep%d", j),
				IP: netip.AddrFrom4([4]byte{10, 129, byte(j / 250), byte(1 + j%250)}), Ports: []uint16{8080}})
		}
		h.Services = append(h.Services, s)
	}
	return h
}
