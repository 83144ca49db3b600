package model

import (
	"net/netip"
	"strings"
	"testing"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func TestValidateServicePorts(t *testing.T) {
	ok := []*sdnv1.ServicePort{{Name: "http", Protocol: "tcp", Port: 80, TargetPortName: "http", NodePort: 30080}, {Protocol: "udp", Port: 53, TargetPort: 5353}}
	if errs := ValidateServicePorts(ok, DefaultNodePortMin, DefaultNodePortMax); len(errs) != 0 {
		t.Fatalf("valid ports refused: %v", errs)
	}
	for _, c := range []struct {
		ports []*sdnv1.ServicePort
		want  string
	}{
		{nil, "at least one port"},
		{[]*sdnv1.ServicePort{{Protocol: "sctp", Port: 1}}, `port 1: protocol "sctp"`},
		{[]*sdnv1.ServicePort{{Protocol: "tcp", Port: 0}}, "port 1: port 0 is not in 1-65535"},
		{[]*sdnv1.ServicePort{{Protocol: "tcp", Port: 80, TargetPort: 8080, TargetPortName: "http"}}, "not both"},
		{[]*sdnv1.ServicePort{{Protocol: "tcp", Port: 80}, {Protocol: "tcp", Port: 80}}, "port 2: tcp/80 is port 1's too"},
		{[]*sdnv1.ServicePort{{Protocol: "tcp", Port: 80, NodePort: 80}}, "outside the cluster's node-port range 30000-32767"},
		{[]*sdnv1.ServicePort{{Protocol: "tcp", Port: 80, NodePort: 30000}, {Protocol: "udp", Port: 80, NodePort: 30000}}, "node_port 30000 is port 1's too"},
		{[]*sdnv1.ServicePort{{Name: "a", Protocol: "tcp", Port: 80}, {Name: "a", Protocol: "tcp", Port: 81}}, `name "a" is port 1's too`},
	} {
		errs := ValidateServicePorts(c.ports, DefaultNodePortMin, DefaultNodePortMax)
		var msgs []string
		for _, e := range errs {
			msgs = append(msgs, e.Error())
		}
		if got := strings.Join(msgs, "; "); !strings.Contains(got, c.want) {
			t.Errorf("%v: %q, want %q", c.ports, got, c.want)
		}
	}
}

func TestValidateVIP(t *testing.T) {
	cidr := netip.MustParsePrefix("172.30.0.0/16")
	for vip, want := range map[string]string{
		"":               "",
		"172.30.0.10":    "",
		"10.0.0.1":       "outside the cluster's service_cidr",
		"172.30.0.0":     "network or broadcast",
		"172.30.255.255": "network or broadcast",
		"fd00::1":        "not an IPv4 address",
		"x":              "not an IPv4 address",
	} {
		err := ValidateVIP(vip, cidr)
		if (want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateVIP(%q) = %v, want %q", vip, err, want)
		}
	}
}
