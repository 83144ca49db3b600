package model

import (
	"testing"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func TestValidatePortMappings(t *testing.T) {
	pm := func(host, cont uint32, proto, ip string) *sdnv1.PortMapping {
		return &sdnv1.PortMapping{HostPort: host, ContainerPort: cont, Protocol: proto, HostIp: ip}
	}
	for _, tc := range []struct {
		name    string
		pms     []*sdnv1.PortMapping
		wantErr string
	}{
		{"none", nil, ""},
		{"tcp and udp on one port", []*sdnv1.PortMapping{pm(8080, 80, "tcp", ""), pm(8080, 80, "udp", "")}, ""},
		{"default protocol", []*sdnv1.PortMapping{pm(65535, 1, "", "198.18.0.1")}, ""},
		{"two addresses", []*sdnv1.PortMapping{pm(53, 53, "udp", "198.18.0.1"), pm(53, 53, "udp", "198.18.0.2")}, ""},
		{"ipv6 host", []*sdnv1.PortMapping{pm(80, 80, "tcp", "2001:db8::1")}, ""},
		{"host port 0", []*sdnv1.PortMapping{pm(0, 80, "tcp", "")}, "host port 0 is not a port"},
		{"host port too big", []*sdnv1.PortMapping{pm(65536, 80, "tcp", "")}, "host port 65536 is not a port"},
		{"container port 0", []*sdnv1.PortMapping{pm(80, 0, "tcp", "")}, "container port 0 is not a port"},
		{"sctp", []*sdnv1.PortMapping{pm(80, 80, "sctp", "")}, `protocol "sctp" is not tcp or udp`},
		{"upper case", []*sdnv1.PortMapping{pm(80, 80, "TCP", "")}, `protocol "TCP" is not tcp or udp`},
		{"bad host ip", []*sdnv1.PortMapping{pm(80, 80, "tcp", "host1")}, `host_ip "host1" is not an IP address`},
		{"zone", []*sdnv1.PortMapping{pm(80, 80, "tcp", "fe80::1%eth0")}, "is not an IP address"},
		{"duplicate", []*sdnv1.PortMapping{pm(80, 80, "tcp", ""), pm(80, 81, "", "")}, "port mappings 1 and 2 both map host port 80/tcp -> 81"},
		{"nil", []*sdnv1.PortMapping{nil}, "port mapping 1 is empty"},
	} {
		checkErr(t, "ValidatePortMappings "+tc.name, "", ValidatePortMappings(tc.pms), tc.wantErr)
	}
}

func TestHostPortsOverlap(t *testing.T) {
	a := &sdnv1.PortMapping{HostPort: 80, Protocol: "tcp"}
	for _, tc := range []struct {
		b    *sdnv1.PortMapping
		want bool
	}{
		{&sdnv1.PortMapping{HostPort: 80}, true},
		{&sdnv1.PortMapping{HostPort: 80, HostIp: "198.18.0.1"}, true},
		{&sdnv1.PortMapping{HostPort: 80, Protocol: "udp"}, false},
		{&sdnv1.PortMapping{HostPort: 81}, false},
	} {
		if got := HostPortsOverlap(a, tc.b); got != tc.want {
			t.Errorf("HostPortsOverlap(%v, %v) = %v", a, tc.b, got)
		}
	}
	x := &sdnv1.PortMapping{HostPort: 80, HostIp: "198.18.0.1"}
	y := &sdnv1.PortMapping{HostPort: 80, HostIp: "198.18.0.2"}
	if HostPortsOverlap(x, y) {
		t.Errorf("two host addresses overlap")
	}
}

func TestValidateBandwidth(t *testing.T) {
	for _, tc := range []struct {
		name    string
		b       *sdnv1.Bandwidth
		wantErr string
	}{
		{"nil", nil, ""},
		{"none", &sdnv1.Bandwidth{}, ""},
		{"both", &sdnv1.Bandwidth{IngressRate: 1e6, IngressBurst: 1e5, EgressRate: 2e6, EgressBurst: 2e5}, ""},
		{"ingress only", &sdnv1.Bandwidth{IngressRate: 1e6, IngressBurst: 1e5}, ""},
		{"rate without burst", &sdnv1.Bandwidth{EgressRate: 1e6}, "egress rate 1000000 and burst 0: set both or neither"},
		{"burst without rate", &sdnv1.Bandwidth{IngressBurst: 1e6}, "ingress rate 0 and burst 1000000"},
		{"rate too small", &sdnv1.Bandwidth{IngressRate: 999, IngressBurst: 1e5}, "ingress rate 999 is out of range"},
		{"burst too big", &sdnv1.Bandwidth{EgressRate: 1e6, EgressBurst: MaxBandwidthBits + 1}, "egress burst"},
	} {
		checkErr(t, "ValidateBandwidth "+tc.name, "", ValidateBandwidth(tc.b), tc.wantErr)
	}
}
