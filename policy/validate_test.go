package policy

import (
	"fmt"
	"strings"
	"testing"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Check's problems come in a fixed order (the FSM applies it, and an
// apply's answer must not vary between servers or runs).
func TestCheckOrderIsStable(t *testing.T) {
	bad := &sdnv1.LabelSelector{MatchExpressions: []*sdnv1.LabelRequirement{{Key: "k", Operator: "in"}}}
	p := &sdnv1.Policy{Name: "p", Networks: bad, Workloads: bad,
		Ingress: []*sdnv1.PolicyRule{{Peers: []*sdnv1.PolicyPeer{{Workloads: bad, Networks: bad}}}}}
	first := fmt.Sprint(Check(p))
	for range 100 {
		if got := fmt.Sprint(Check(p)); got != first {
			t.Fatalf("Check's order varies:\n%s\n%s", first, got)
		}
	}
	if !strings.Contains(first, "{networks ") || strings.Index(first, "{networks ") > strings.Index(first, "{workloads ") {
		t.Errorf("want networks before workloads (the order of the fields): %s", first)
	}
}

func TestCheck(t *testing.T) {
	ok := &sdnv1.Policy{Name: "p", Network: "proj1", Priority: 1000, Isolate: []string{"ingress", "egress"},
		Ingress: []*sdnv1.PolicyRule{{Name: "a", Ports: []*sdnv1.PolicyPort{{Protocol: "tcp", Port: 1, EndPort: 65535}, {Name: "http"}, {Protocol: "icmp"}}}},
		Egress:  []*sdnv1.PolicyRule{{Name: "a", Peers: []*sdnv1.PolicyPeer{{Cidr: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}}}}}
	if ps := Check(ok); len(ps) != 0 {
		t.Errorf("a valid policy has problems: %v", ps)
	}
	for _, tc := range []struct {
		mutate func(p *sdnv1.Policy)
		field  string
	}{
		{func(p *sdnv1.Policy) { p.Priority = -1 }, "priority"},
		{func(p *sdnv1.Policy) { p.Priority = MaxPriority + 1 }, "priority"},
		{func(p *sdnv1.Policy) { p.Networks = &sdnv1.LabelSelector{} }, "networks"},
		{func(p *sdnv1.Policy) { p.Isolate = []string{"ingress", "ingress"} }, "isolate"},
		{func(p *sdnv1.Policy) { p.Ingress[0].Action = sdnv1.PolicyAction_POLICY_ACTION_PASS }, "ingress[0].action"},
		{func(p *sdnv1.Policy) { p.Ingress = append(p.Ingress, &sdnv1.PolicyRule{Name: "a"}) }, "ingress[1].name"},
		{func(p *sdnv1.Policy) { p.Egress[0].Peers[0].Except = []string{"11.0.0.0/16"} }, "egress[0].peers[0].except[0]"},
		{func(p *sdnv1.Policy) { p.Egress[0].Peers[0].Except = []string{"10.0.0.0/8"} }, "egress[0].peers[0].except[0]"},
		{func(p *sdnv1.Policy) { p.Egress[0].Peers[0].Cidr = "10.0.0.1/8" }, "egress[0].peers[0].cidr"},
		{func(p *sdnv1.Policy) { p.Egress[0].Peers[0].Workloads = &sdnv1.LabelSelector{} }, "egress[0].peers[0]"},
		{func(p *sdnv1.Policy) { p.Ingress[0].Ports[0].Protocol = "sctp" }, "ingress[0].ports[0]"},
		{func(p *sdnv1.Policy) { p.Ingress[0].Ports[0].EndPort = 0; p.Ingress[0].Ports[0].Port = 70000 }, "ingress[0].ports[0]"},
		{func(p *sdnv1.Policy) { p.Ingress[0].Ports[1].Name = "-x" }, "ingress[0].ports[1]"},
		{func(p *sdnv1.Policy) { p.Ingress[0].Ports[2].Port = 8 }, "ingress[0].ports[2]"},
	} {
		p := cloneOK(ok)
		tc.mutate(p)
		ps := Check(p)
		if len(ps) != 1 || ps[0].Field != tc.field || ps[0].Message == "" {
			t.Errorf("want one problem at %s, got %v", tc.field, ps)
		}
	}
}

func cloneOK(p *sdnv1.Policy) *sdnv1.Policy {
	c := &sdnv1.Policy{Name: p.Name, Network: p.Network, Priority: p.Priority, Isolate: append([]string(nil), p.Isolate...)}
	for _, r := range p.Ingress {
		c.Ingress = append(c.Ingress, cloneRule(r))
	}
	for _, r := range p.Egress {
		c.Egress = append(c.Egress, cloneRule(r))
	}
	return c
}

func cloneRule(r *sdnv1.PolicyRule) *sdnv1.PolicyRule {
	c := &sdnv1.PolicyRule{Name: r.Name, Action: r.Action}
	for _, pp := range r.Peers {
		c.Peers = append(c.Peers, &sdnv1.PolicyPeer{Cidr: pp.Cidr, Except: append([]string(nil), pp.Except...)})
	}
	for _, pt := range r.Ports {
		c.Ports = append(c.Ports, &sdnv1.PolicyPort{Protocol: pt.Protocol, Port: pt.Port, EndPort: pt.EndPort, Name: pt.Name})
	}
	return c
}

func TestCheckNamedPorts(t *testing.T) {
	for _, tc := range []struct {
		ports []*sdnv1.NamedPort
		want  string
	}{
		{[]*sdnv1.NamedPort{{Name: "http", Protocol: "tcp", Port: 80}, {Name: "dns", Protocol: "udp", Port: 53}, {Name: "x1", Port: 1}}, ""},
		{[]*sdnv1.NamedPort{{Name: "http", Port: 80}, {Name: "http", Protocol: "udp", Port: 81}}, "declared twice"},
		{[]*sdnv1.NamedPort{{Name: "http", Protocol: "sctp", Port: 80}}, "not tcp or udp"},
		{[]*sdnv1.NamedPort{{Name: "http", Port: 0}}, "out of range"},
		{[]*sdnv1.NamedPort{{Name: "123", Port: 1}}, "at least one letter"},
		{[]*sdnv1.NamedPort{{Name: "a--b", Port: 1}}, "single '-'"},
		{[]*sdnv1.NamedPort{{Name: "abcdefghijklmnop", Port: 1}}, "1 to 15"},
	} {
		err := CheckNamedPorts(tc.ports)
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckNamedPorts(%v) = %v, want %q", tc.ports, err, tc.want)
		}
	}
}
