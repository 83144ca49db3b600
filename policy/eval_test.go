package policy

import (
	"net/netip"
	"testing"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

var (
	allow = sdnv1.PolicyAction_POLICY_ACTION_ALLOW
	deny  = sdnv1.PolicyAction_POLICY_ACTION_DENY
	pass  = sdnv1.PolicyAction_POLICY_ACTION_PASS
)

// Compare: the cluster-wide tier first, then lower priority, then deny
// before pass before allow at equal priority.
func TestCompareOrder(t *testing.T) {
	cl := func(prio int32, a sdnv1.PolicyAction) Slot {
		return Slot{Policy: &sdnv1.Policy{Name: "c", Priority: prio}, Tier: TierCluster, Rule: &sdnv1.PolicyRule{Action: a}}
	}
	nw := func(prio int32, a sdnv1.PolicyAction) Slot {
		return Slot{Policy: &sdnv1.Policy{Name: "n", Network: "p", Priority: prio}, Tier: TierNetwork, Rule: &sdnv1.PolicyRule{Action: a}}
	}
	ordered := []Slot{cl(5, deny), cl(5, pass), cl(5, sdnv1.PolicyAction_POLICY_ACTION_UNSPECIFIED), cl(6, deny), nw(0, deny), nw(0, allow), nw(1000, deny)}
	for i := range ordered {
		for j := range ordered {
			got := Compare(ordered[i], ordered[j])
			if (i < j && got >= 0) || (i > j && got <= 0) || (i == j && got != 0) {
				t.Errorf("Compare(#%d, #%d) = %d", i, j, got)
			}
		}
	}
	if LevelOf(cl(5, deny)) == LevelOf(cl(5, allow)) || LevelOf(nw(0, allow)) != LevelOf(nw(0, allow)) {
		t.Error("levels: deny and allow share one, or equal slots do not")
	}
}

// The verdict table: each semantic of docs/policy.md, with the expected
// answers written from the page.
type world struct {
	World
	w map[string]*sdnv1.Workload
}

func newWorld(mode sdnv1.IsolationMode, policies ...*sdnv1.Policy) *world {
	w := &world{World: World{Isolation: mode, Policies: policies, Networks: map[string]*sdnv1.Network{
		"proj1": {Name: "proj1", Labels: map[string]string{"team": "a", "env": "prod"}},
		"proj2": {Name: "proj2", Labels: map[string]string{"team": "b", "env": "dev"}},
		"infra": {Name: "infra", Admin: true},
	}}, w: map[string]*sdnv1.Workload{}}
	for _, x := range []struct{ net, name, node, ip, app string }{
		{"proj1", "client1", "host1", "10.128.0.2", "client"},
		{"proj1", "client2", "host1", "10.128.0.3", "other"},
		{"proj1", "server1", "host2", "10.128.2.2", "server"},
		{"proj2", "c", "host1", "10.128.0.4", "client"},
		{"infra", "mon", "host2", "10.128.2.3", "mon"},
	} {
		w.w[x.net+"/"+x.name] = &sdnv1.Workload{Network: x.net, Name: x.name, Node: x.node, Ip: x.ip, Labels: map[string]string{"app": x.app},
			NamedPorts: []*sdnv1.NamedPort{{Name: "http", Protocol: "tcp", Port: 8080}, {Name: "dns", Protocol: "udp", Port: 53}}}
	}
	return w
}

func (w *world) end(s string) End {
	if wl := w.w[s]; wl != nil {
		return End{Workload: wl, IP: netip.MustParseAddr(wl.Ip)}
	}
	switch s {
	case "host1":
		return End{IP: netip.MustParseAddr("10.128.0.1"), Host: true, Node: "host1"}
	case "host2":
		return End{IP: netip.MustParseAddr("10.128.2.1"), Host: true, Node: "host2"}
	}
	return End{IP: netip.MustParseAddr(s)}
}

func sel(kv ...string) *sdnv1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &sdnv1.LabelSelector{MatchLabels: m}
}

func rule(name string, a sdnv1.PolicyAction, peers []*sdnv1.PolicyPeer, ports ...*sdnv1.PolicyPort) *sdnv1.PolicyRule {
	return &sdnv1.PolicyRule{Name: name, Action: a, Peers: peers, Ports: ports}
}

func tcp(p uint32) *sdnv1.PolicyPort { return &sdnv1.PolicyPort{Protocol: "tcp", Port: p} }

var (
	flat        = sdnv1.IsolationMode_ISOLATION_MODE_FLAT
	multitenant = sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT
	policyMode  = sdnv1.IsolationMode_ISOLATION_MODE_POLICY
)

// serverFromClient1 is "allow server1 only from client1 (by labels)".
var serverFromClient1 = &sdnv1.Policy{Name: "server-from-client1", Network: "proj1", Workloads: sel("app", "server"), Isolate: []string{"ingress"},
	Ingress: []*sdnv1.PolicyRule{rule("client1", allow, []*sdnv1.PolicyPeer{{Workloads: sel("app", "client")}})}}

func TestVerdictTable(t *testing.T) {
	type want struct {
		allowed    bool
		by, policy string // of the direction that denied, or of ingress when allowed
		rule       string
	}
	for _, tc := range []struct {
		name     string
		w        *world
		from, to string
		proto    string
		port     uint32
		want     want
	}{
		// Baselines.
		{"flat: other tenant allowed", newWorld(flat), "proj2/c", "proj1/server1", "tcp", 80, want{true, "baseline", "", ""}},
		{"multitenant: own network", newWorld(multitenant), "proj1/client1", "proj1/server1", "tcp", 80, want{true, "baseline", "", ""}},
		{"multitenant: other tenant denied", newWorld(multitenant), "proj2/c", "proj1/server1", "tcp", 80, want{false, "baseline", "", ""}},
		{"multitenant: from admin", newWorld(multitenant), "infra/mon", "proj1/server1", "tcp", 80, want{true, "baseline", "", ""}},
		{"multitenant: to admin", newWorld(multitenant), "proj1/client1", "infra/mon", "tcp", 80, want{true, "baseline", "", ""}},
		{"policy: admin not special", newWorld(policyMode), "infra/mon", "proj1/server1", "tcp", 80, want{false, "baseline", "", ""}},
		{"policy: own network", newWorld(policyMode), "proj1/client1", "proj1/server1", "tcp", 80, want{true, "baseline", "", ""}},
		{"outside address in, policy mode", newWorld(policyMode), "203.0.113.9", "proj1/server1", "tcp", 80, want{true, "baseline", "", ""}},
		{"other host in, policy mode", newWorld(policyMode), "host1", "proj1/server1", "tcp", 80, want{true, "baseline", "", ""}},

		// Own host exemption.
		{"own host allowed despite isolation", newWorld(flat, serverFromClient1), "host2", "proj1/server1", "tcp", 80, want{true, "host", "", ""}},
		{"other host is a peer: isolated", newWorld(flat, serverFromClient1), "host1", "proj1/server1", "tcp", 80, want{false, "isolation", "proj1/server-from-client1", ""}},
		{"own host by policy when host_traffic = policy", func() *world {
			w := newWorld(flat, serverFromClient1)
			w.HostTrafficByPolicy = true
			return w
		}(), "host2", "proj1/server1", "tcp", 80, want{false, "isolation", "proj1/server-from-client1", ""}},

		// Isolation and rules.
		{"selected and allowed", newWorld(flat, serverFromClient1), "proj1/client1", "proj1/server1", "tcp", 80, want{true, "policy", "proj1/server-from-client1", "client1"}},
		{"selected, not allowed", newWorld(flat, serverFromClient1), "proj1/client2", "proj1/server1", "tcp", 80, want{false, "isolation", "proj1/server-from-client1", ""}},
		{"workloads peer alone is the policy's network", newWorld(flat, serverFromClient1), "proj2/c", "proj1/server1", "tcp", 80, want{false, "isolation", "proj1/server-from-client1", ""}},
		{"unselected workload keeps its baseline", newWorld(multitenant, serverFromClient1), "proj1/client2", "proj1/client1", "tcp", 80, want{true, "baseline", "", ""}},
		{"deny all ingress (no rules)", newWorld(flat, &sdnv1.Policy{Name: "deny-all", Network: "proj1", Isolate: []string{"ingress"}}), "proj1/client1", "proj1/server1", "udp", 53, want{false, "isolation", "proj1/deny-all", ""}},
		{"network selector opens another tenant", newWorld(multitenant, &sdnv1.Policy{Name: "from-a", Network: "proj2", Isolate: []string{"ingress"},
			Ingress: []*sdnv1.PolicyRule{rule("team-a", allow, []*sdnv1.PolicyPeer{{Networks: sel("team", "a")}})}}), "proj1/client2", "proj2/c", "tcp", 80, want{true, "policy", "proj2/from-a", "team-a"}},
		{"network AND workloads: workload fails", newWorld(multitenant, &sdnv1.Policy{Name: "from-a", Network: "proj2", Isolate: []string{"ingress"},
			Ingress: []*sdnv1.PolicyRule{rule("", allow, []*sdnv1.PolicyPeer{{Networks: sel("team", "a"), Workloads: sel("app", "client")}})}}), "proj1/client2", "proj2/c", "tcp", 80, want{false, "isolation", "proj2/from-a", ""}},
		{"egress isolation denies at the source", newWorld(flat, &sdnv1.Policy{Name: "eg", Network: "proj1", Workloads: sel("app", "client"), Isolate: []string{"egress"},
			Egress: []*sdnv1.PolicyRule{rule("dns", allow, nil, &sdnv1.PolicyPort{Protocol: "udp", Port: 53})}}), "proj1/client1", "proj1/server1", "tcp", 80, want{false, "isolation", "proj1/eg", ""}},
		{"egress rule allows", newWorld(flat, &sdnv1.Policy{Name: "eg", Network: "proj1", Workloads: sel("app", "client"), Isolate: []string{"egress"},
			Egress: []*sdnv1.PolicyRule{rule("dns", allow, nil, &sdnv1.PolicyPort{Protocol: "udp", Port: 53})}}), "proj1/client1", "proj1/server1", "udp", 53, want{true, "baseline", "", ""}},
		{"egress alone cannot reach into another tenant", newWorld(multitenant, &sdnv1.Policy{Name: "eg", Network: "proj1", Isolate: []string{"egress"},
			Egress: []*sdnv1.PolicyRule{rule("any", allow, nil)}}), "proj1/client1", "proj2/c", "tcp", 80, want{false, "baseline", "", ""}},

		// CIDR with except.
		{"cidr allows", newWorld(flat, cidrPolicy()), "203.0.113.9", "proj1/server1", "tcp", 80, want{true, "policy", "proj1/cidr", "outside"}},
		{"cidr except denies", newWorld(flat, cidrPolicy()), "203.0.113.200", "proj1/server1", "tcp", 80, want{false, "isolation", "proj1/cidr", ""}},
		{"cidr matches workloads too", newWorld(flat, &sdnv1.Policy{Name: "c", Network: "proj1", Workloads: sel("app", "server"), Isolate: []string{"ingress"},
			Ingress: []*sdnv1.PolicyRule{rule("", allow, []*sdnv1.PolicyPeer{{Cidr: "10.128.0.0/24", Except: []string{"10.128.0.3/32"}}})}}), "proj1/client1", "proj1/server1", "tcp", 80, want{true, "policy", "proj1/c", "ingress[0]"}},

		// Ports.
		{"port range inside", newWorld(flat, portPolicy(&sdnv1.PolicyPort{Protocol: "tcp", Port: 8000, EndPort: 8080})), "proj1/client2", "proj1/server1", "tcp", 8080, want{true, "policy", "proj1/ports", "r"}},
		{"port range outside", newWorld(flat, portPolicy(&sdnv1.PolicyPort{Protocol: "tcp", Port: 8000, EndPort: 8080})), "proj1/client2", "proj1/server1", "tcp", 8081, want{false, "isolation", "proj1/ports", ""}},
		{"port range is per protocol", newWorld(flat, portPolicy(&sdnv1.PolicyPort{Protocol: "tcp", Port: 8000, EndPort: 8080})), "proj1/client2", "proj1/server1", "udp", 8000, want{false, "isolation", "proj1/ports", ""}},
		{"named port on ingress", newWorld(flat, portPolicy(&sdnv1.PolicyPort{Protocol: "tcp", Name: "http"})), "proj1/client2", "proj1/server1", "tcp", 8080, want{true, "policy", "proj1/ports", "r"}},
		{"named port: other port", newWorld(flat, portPolicy(&sdnv1.PolicyPort{Protocol: "tcp", Name: "http"})), "proj1/client2", "proj1/server1", "tcp", 80, want{false, "isolation", "proj1/ports", ""}},
		{"named port: protocol must agree", newWorld(flat, portPolicy(&sdnv1.PolicyPort{Protocol: "udp", Name: "http"})), "proj1/client2", "proj1/server1", "udp", 8080, want{false, "isolation", "proj1/ports", ""}},
		{"named port on egress is the destination's", newWorld(flat, &sdnv1.Policy{Name: "eg", Network: "proj1", Workloads: sel("app", "client"), Isolate: []string{"egress"},
			Egress: []*sdnv1.PolicyRule{rule("dns", allow, nil, &sdnv1.PolicyPort{Protocol: "udp", Name: "dns"})}}), "proj1/client1", "proj1/server1", "udp", 53, want{true, "baseline", "", ""}},
		{"named port on egress to an address: no match", newWorld(flat, &sdnv1.Policy{Name: "eg", Network: "proj1", Workloads: sel("app", "client"), Isolate: []string{"egress"},
			Egress: []*sdnv1.PolicyRule{rule("dns", allow, nil, &sdnv1.PolicyPort{Protocol: "udp", Name: "dns"})}}), "proj1/client1", "8.8.8.8", "udp", 53, want{false, "isolation", "proj1/eg", ""}},
		{"icmp rule", newWorld(flat, portPolicy(&sdnv1.PolicyPort{Protocol: "icmp"})), "proj1/client2", "proj1/server1", "icmp", 0, want{true, "policy", "proj1/ports", "r"}},
		{"icmp rule does not open tcp", newWorld(flat, portPolicy(&sdnv1.PolicyPort{Protocol: "icmp"})), "proj1/client2", "proj1/server1", "tcp", 80, want{false, "isolation", "proj1/ports", ""}},
		{"protocol without port: every port", newWorld(flat, portPolicy(&sdnv1.PolicyPort{Protocol: "udp"})), "proj1/client2", "proj1/server1", "udp", 9999, want{true, "policy", "proj1/ports", "r"}},

		// Tiers, priorities, actions.
		{"cluster deny over network allow", newWorld(flat, serverFromClient1, clusterDeny(5000)), "proj1/client1", "proj1/server1", "tcp", 80, want{false, "cluster-policy", "no-clients", "ingress[0]"}},
		{"deny before allow at equal priority", newWorld(flat, &sdnv1.Policy{Name: "both", Network: "proj1", Isolate: []string{},
			Ingress: []*sdnv1.PolicyRule{rule("yes", allow, nil), rule("no", deny, nil)}}), "proj1/client1", "proj1/server1", "tcp", 80, want{false, "policy", "proj1/both", "no"}},
		{"lower priority first", newWorld(flat,
			&sdnv1.Policy{Name: "a-allow", Network: "proj1", Priority: 10, Ingress: []*sdnv1.PolicyRule{rule("yes", allow, nil)}},
			&sdnv1.Policy{Name: "b-deny", Network: "proj1", Priority: 20, Ingress: []*sdnv1.PolicyRule{rule("no", deny, nil)}}), "proj1/client1", "proj1/server1", "tcp", 80, want{true, "policy", "proj1/a-allow", "yes"}},
		{"pass hands down to the network's policies", newWorld(flat, serverFromClient1, clusterPass(), clusterDeny(5000)), "proj1/client1", "proj1/server1", "tcp", 80, want{true, "policy", "proj1/server-from-client1", "client1"}},
		{"pass then no network rule: isolation", newWorld(flat, serverFromClient1, clusterPass()), "proj1/client2", "proj1/server1", "tcp", 80, want{false, "isolation", "proj1/server-from-client1", ""}},
		{"pass then baseline", newWorld(multitenant, clusterPass()), "proj2/c", "proj1/server1", "tcp", 80, want{false, "baseline", "", ""}},
		{"cluster-wide networks selector: not selected", newWorld(flat, &sdnv1.Policy{Name: "dev-only", Networks: sel("env", "dev"),
			Ingress: []*sdnv1.PolicyRule{rule("", deny, nil)}}), "proj1/client1", "proj1/server1", "tcp", 80, want{true, "baseline", "", ""}},
		{"cluster-wide allow skips isolation", newWorld(policyMode, &sdnv1.Policy{Name: "let-mon", Ingress: []*sdnv1.PolicyRule{rule("mon", allow, []*sdnv1.PolicyPeer{{Networks: sel()}})}}),
			"infra/mon", "proj1/server1", "tcp", 80, want{true, "cluster-policy", "let-mon", "mon"}},
		{"cluster-wide policy isolating", newWorld(flat, &sdnv1.Policy{Name: "lock", Workloads: sel("app", "server"), Isolate: []string{"ingress"}}),
			"proj1/client1", "proj1/server1", "tcp", 80, want{false, "isolation", "lock", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.w.Verdict(Packet{From: tc.w.end(tc.from), To: tc.w.end(tc.to), Protocol: tc.proto, Port: tc.port})
			d := v.Ingress
			if !v.Egress.Allowed {
				d = v.Egress
			}
			if v.Allowed != tc.want.allowed || d.By != tc.want.by || d.Policy != tc.want.policy || d.Rule != tc.want.rule {
				t.Errorf("got allowed=%v by=%s policy=%q rule=%q; want %+v\negress: %s\ningress: %s",
					v.Allowed, d.By, d.Policy, d.Rule, tc.want, v.Egress.Reason, v.Ingress.Reason)
			}
			if v.Egress.Reason == "" || v.Ingress.Reason == "" {
				t.Error("a decision without a reason")
			}
		})
	}
}

func cidrPolicy() *sdnv1.Policy {
	return &sdnv1.Policy{Name: "cidr", Network: "proj1", Workloads: sel("app", "server"), Isolate: []string{"ingress"},
		Ingress: []*sdnv1.PolicyRule{rule("outside", allow, []*sdnv1.PolicyPeer{{Cidr: "203.0.113.0/24", Except: []string{"203.0.113.128/25"}}})}}
}

func portPolicy(p *sdnv1.PolicyPort) *sdnv1.Policy {
	return &sdnv1.Policy{Name: "ports", Network: "proj1", Workloads: sel("app", "server"), Isolate: []string{"ingress"},
		Ingress: []*sdnv1.PolicyRule{rule("r", allow, nil, p)}}
}

func clusterDeny(prio int32) *sdnv1.Policy {
	return &sdnv1.Policy{Name: "no-clients", Priority: prio, Ingress: []*sdnv1.PolicyRule{rule("", deny, []*sdnv1.PolicyPeer{{Workloads: sel("app", "client")}})}}
}

// clusterPass passes everything from proj1's workloads down, before
// clusterDeny (a lower priority number).
func clusterPass() *sdnv1.Policy {
	return &sdnv1.Policy{Name: "tenants", Priority: 100, Ingress: []*sdnv1.PolicyRule{rule("own", pass, []*sdnv1.PolicyPeer{{Networks: sel("team", "a")}})}}
}

// The pass is recorded in the decision.
func TestVerdictPassRecorded(t *testing.T) {
	w := newWorld(flat, serverFromClient1, clusterPass(), clusterDeny(5000))
	v := w.Verdict(Packet{From: w.end("proj1/client1"), To: w.end("proj1/server1"), Protocol: "tcp", Port: 80})
	if len(v.Ingress.Passed) != 1 || v.Ingress.Passed[0] != "tenants rule own" {
		t.Errorf("passed = %v", v.Ingress.Passed)
	}
}

func TestRangeOf(t *testing.T) {
	r := func(line int32) *sdnv1.SourceRange { return &sdnv1.SourceRange{File: "f.hcl", StartLine: line} }
	p := &sdnv1.Policy{
		Ranges:  map[string]*sdnv1.SourceRange{"": r(1), "isolate": r(2), "workloads": r(3)},
		Ingress: []*sdnv1.PolicyRule{{Ranges: map[string]*sdnv1.SourceRange{"": r(10), "peers[0]": r(11), "peers[0].cidr": r(12), "ports[1]": r(13)}}},
		Egress:  []*sdnv1.PolicyRule{{}},
	}
	for field, line := range map[string]int32{
		"":                              1,
		"isolate":                       2,
		"priority":                      1,
		"workloads":                     3,
		"ingress[0].peers[0].cidr":      12,
		"ingress[0].peers[0].except[1]": 11,
		"ingress[0].ports[1]":           13,
		"ingress[0].name":               10,
		"ingress[5].name":               1,
		"egress[0].ports[0]":            1,
	} {
		if got := RangeOf(p, field); got.GetStartLine() != line {
			t.Errorf("RangeOf(%q) at line %d, want %d", field, got.GetStartLine(), line)
		}
	}
	if RangeOf(&sdnv1.Policy{}, "priority") != nil {
		t.Error("a policy without ranges has a range")
	}
}
