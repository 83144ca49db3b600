package flows

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// The sample's workloads as the model knows them: labels and named ports.
var sampleModel = map[string]*sdnv1.Workload{
	"proj1/a": {Name: "a", Network: "proj1", Labels: map[string]string{"app": "web"},
		NamedPorts: []*sdnv1.NamedPort{{Name: "http", Protocol: "tcp", Port: 8080}}},
	"proj1/c": {Name: "c", Network: "proj1", Labels: map[string]string{"app": "web", "tier": "edge"},
		NamedPorts: []*sdnv1.NamedPort{{Name: "http", Protocol: "tcp", Port: 9090}}},
	"proj2/b": {Name: "b", Network: "proj2", Labels: map[string]string{"app": "db"}},
	"infra/m": {Name: "m", Network: "infra", Labels: map[string]string{"app": "mon"}},
}

var sampleNetworks = map[string]*sdnv1.Network{
	"proj1": {Name: "proj1", Labels: map[string]string{"name": "proj1"}},
	"proj2": {Name: "proj2", Labels: map[string]string{"name": "proj2"}},
	"infra": {Name: "infra", Admin: true},
}

func sel(kv ...string) *sdnv1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &sdnv1.LabelSelector{MatchLabels: m}
}

// withPolicies is the sample host under policies, with address groups
// for every selector peer: members given by group key.
func withPolicies(iso Isolation, pols []*sdnv1.Policy, members map[string][]*sdnv1.GroupMember) *Host {
	h := sample(iso)
	h.AddressGroups = map[string]*sdnv1.AddressGroup{}
	for _, p := range pols {
		for name, g := range policy.Groups(p) {
			h.AddressGroups[name] = &sdnv1.AddressGroup{Name: name, Selector: g.Key(), Members: members[g.Key()]}
		}
	}
	for i, w := range h.Local {
		mw := sampleModel[w.Name]
		h.Local[i].NamedPorts = mw.NamedPorts
		for _, d := range []policy.Direction{policy.Ingress, policy.Egress} {
			slots, by := policy.Applicable(pols, mw, sampleNetworks[mw.Network], d)
			if d == policy.Ingress {
				h.Local[i].Ingress = Rules{slots, by}
			} else {
				h.Local[i].Egress = Rules{slots, by}
			}
		}
	}
	return h
}

// renderPolicy renders the policy stages only, the rules' cookies named.
func renderPolicy(h *Host) string {
	c := CompileAll(h)
	var b strings.Builder
	table := -1
	for _, f := range c.Flows {
		switch Stages[f.Table] {
		case Egress, EgressPolicy, Ingress, IngressPolicy:
		default:
			continue
		}
		if int(f.Table) != table {
			table = int(f.Table)
			fmt.Fprintf(&b, "# table %d: %s\n", table, Stages[table])
		}
		if r, ok := c.Rules[uint32(f.Cookie)]; ok {
			fmt.Fprintf(&b, "  # %s %s %s (%s)\n", r.Policy, r.Direction, r.Rule, r.Action)
			f.Cookie = 0
		}
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./datapath/flows -update)", err)
	}
	if got != string(want) {
		t.Fatalf("flows differ from %s (review, then -update):\n%s", path, got)
	}
}

func gm(ip string, ports ...*sdnv1.NamedPort) *sdnv1.GroupMember {
	return &sdnv1.GroupMember{Ip: ip, Ports: ports}
}

// ovsAccepts parses flows with the real ovs-ofctl, as the reconciler will.
func ovsAccepts(t *testing.T, h *Host) {
	t.Helper()
	if _, err := exec.LookPath("ovs-ofctl"); err != nil {
		t.Log("ovs-ofctl not installed: flows not parsed by OVS")
		return
	}
	var in strings.Builder
	for _, f := range Compile(h) {
		in.WriteString(f.String() + "\n")
	}
	cmd := exec.Command("ovs-ofctl", "-O", "OpenFlow15", "parse-flows", "-")
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ovs-ofctl rejected the flows: %v\n%s", err, out)
	}
}

const clientsKey = "in network proj1: workloads{role=client}"

// policyScenario: proj1/web admits clients on tcp 80, 8000-8080 and the
// named port http (a: 8080, c: 9090); proj1/web-tls the same clients on
// 443 (its peer flows merge with web's); a cluster-wide guard denies
// 10.0.0.0/8 except 10.128.0.0/14 first, passes proj2 to the network's
// policies, and allows egress udp/53 to anything; proj2/lock isolates b
// with no rules; a's egress to the clients on their named port "metrics".
func policyScenario() ([]*sdnv1.Policy, map[string][]*sdnv1.GroupMember) {
	clients := []*sdnv1.PolicyPeer{{Workloads: sel("role", "client")}}
	pols := []*sdnv1.Policy{
		{Name: "web", Network: "proj1", Workloads: sel("app", "web"), Priority: 1000, Isolate: []string{"ingress", "egress"},
			Ingress: []*sdnv1.PolicyRule{{Name: "clients", Peers: clients,
				Ports: []*sdnv1.PolicyPort{{Port: 80}, {Port: 8000, EndPort: 8080}, {Name: "http"}}}},
			Egress: []*sdnv1.PolicyRule{{Name: "metrics", Peers: clients, Ports: []*sdnv1.PolicyPort{{Name: "metrics", Protocol: "udp"}}}}},
		{Name: "web-tls", Network: "proj1", Workloads: sel("app", "web"), Priority: 1000,
			Ingress: []*sdnv1.PolicyRule{{Name: "tls", Peers: clients, Ports: []*sdnv1.PolicyPort{{Port: 443}}}}},
		{Name: "guard", Priority: 10,
			Ingress: []*sdnv1.PolicyRule{
				{Name: "outside", Action: sdnv1.PolicyAction_POLICY_ACTION_DENY, Peers: []*sdnv1.PolicyPeer{{Cidr: "10.0.0.0/8", Except: []string{"10.128.0.0/14"}}}},
				{Name: "proj2", Action: sdnv1.PolicyAction_POLICY_ACTION_PASS, Peers: []*sdnv1.PolicyPeer{{Networks: sel("name", "proj2")}}},
			},
			Egress: []*sdnv1.PolicyRule{{Name: "dns", Ports: []*sdnv1.PolicyPort{{Protocol: "udp", Port: 53}}}}},
		{Name: "lock", Network: "proj2", Priority: 1000, Isolate: []string{"ingress"}},
		{Name: "open", Priority: 20, Networks: sel("name", "proj2"),
			Egress: []*sdnv1.PolicyRule{{Name: "all"}}},
	}
	members := map[string][]*sdnv1.GroupMember{
		clientsKey: {gm("10.128.2.7", &sdnv1.NamedPort{Name: "metrics", Protocol: "udp", Port: 9100}), gm("10.128.0.9"),
			gm("10.128.2.8", &sdnv1.NamedPort{Name: "metrics", Protocol: "udp", Port: 9200})},
		"in networks{name=proj2}: all workloads": {gm("10.128.0.3"), gm("10.128.2.3")},
	}
	return pols, members
}

func TestPolicyGolden(t *testing.T) {
	pols, members := policyScenario()
	h := withPolicies(Policy, pols, members)
	golden(t, "policies", renderPolicy(h))
	ovsAccepts(t, h)
	h.HostTrafficByPolicy = true
	ovsAccepts(t, h)
}

// flowsOf returns the compiled flows of one stage as "priority match
// actions" lines, and the rule table.
func flowsOf(h *Host, s Stage) ([]string, Compiled) {
	c := CompileAll(h)
	var out []string
	for _, f := range c.Flows {
		if f.Table == s.Table() {
			out = append(out, fmt.Sprintf("%d %s %s", f.Priority, f.Match, f.Actions))
		}
	}
	return out, c
}

func find(lines []string, sub ...string) []string {
	var out []string
next:
	for _, l := range lines {
		for _, s := range sub {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

func TestPolicyFlows(t *testing.T) {
	pols, members := policyScenario()
	h := withPolicies(Policy, pols, members)
	ingress, _ := flowsOf(h, IngressPolicy)
	cluster, _ := flowsOf(h, Ingress)
	egress, _ := flowsOf(h, EgressPolicy)
	egressCluster, _ := flowsOf(h, Egress)

	t.Run("conjunctions of rules at one level share their peer flows", func(t *testing.T) {
		got := find(ingress, "ip,nw_src=10.128.0.9 ")
		if len(got) != 1 || strings.Count(got[0], "conjunction(") != 4 { // web: 80+range, http 8080, http 9090; web-tls: 443
			t.Errorf("peer 10.128.0.9 in proj1's ingress tier: %q; want one flow with four conjunction actions", got)
		}
	})
	t.Run("levels: cluster deny before pass; tiers in their tables", func(t *testing.T) {
		deny, pass := find(cluster, "conj_id", "drop"), find(cluster, "conj_id", gotoTable(IngressPolicy))
		if len(deny) != 2 || len(pass) != 2 || !strings.HasPrefix(deny[0], "60000 ") || !strings.HasPrefix(pass[0], "59999 ") {
			t.Errorf("cluster tier: deny %q, pass %q; want deny at 60000 and pass (to ingress-policy) at 59999", deny, pass)
		}
		if len(find(ingress, "conj_id", gotoTable(Output))) != 8 { // 4 conjunctions × new/established
			t.Errorf("network tier allows: %q", find(ingress, "conj_id"))
		}
	})
	t.Run("cidr except becomes prefixes", func(t *testing.T) {
		for _, p := range []string{"10.0.0.0/9", "10.132.0.0/14", "10.136.0.0/13", "10.144.0.0/12", "10.160.0.0/11", "10.192.0.0/10"} {
			if len(find(cluster, "ip,nw_src="+p+" ", "conjunction(")) != 1 {
				t.Errorf("no peer flow for %s in the cluster tier:\n%s", p, strings.Join(cluster, "\n"))
			}
		}
		if len(find(cluster, "10.128.0.0")) != 0 {
			t.Error("the excepted 10.128.0.0/14 is matched")
		}
	})
	t.Run("ranges as value/mask", func(t *testing.T) {
		for _, m := range []string{"tcp,tp_dst=0x1f40/0xffc0 ", "tcp,tp_dst=0x1f80/0xfff0 ", "tcp,tp_dst=8080 "} {
			if len(find(ingress, m)) != 1 {
				t.Errorf("no flow %q for 8000-8080", m)
			}
		}
	})
	t.Run("named ports split subjects (ingress) and peers (egress)", func(t *testing.T) {
		// a (port 10) declares http=8080, c (13) http=9090.
		a, c := find(ingress, "reg2=10 "), find(ingress, "reg2=13 ")
		p8080, p9090 := find(ingress, "tcp,tp_dst=8080 "), find(ingress, "tcp,tp_dst=9090 ")
		if len(a) != 1 || len(c) != 1 || len(p9090) != 1 || strings.Count(p9090[0], "conjunction(") != 1 {
			t.Fatalf("subjects %q %q, port 9090 %q", a, c, p9090)
		}
		id9090 := p9090[0][strings.Index(p9090[0], "conjunction(")+len("conjunction(") : strings.Index(p9090[0], ",3/3")]
		if strings.Contains(a[0], id9090+",") || !strings.Contains(c[0], id9090+",") || strings.Contains(p8080[0], id9090+",") {
			t.Errorf("c's http (9090) conjunction %s: a %q, c %q, 8080 %q", id9090, a, c, p8080)
		}
		// Egress udp "metrics": 10.128.2.7 declares 9100, 10.128.2.8 9200, 10.128.0.9 none.
		if len(find(egress, "nw_dst=10.128.0.9")) != 0 || len(find(egress, "nw_dst=10.128.2.7")) != 1 ||
			len(find(egress, "udp,tp_dst=9100")) != 1 || len(find(egress, "udp,tp_dst=9200")) != 1 {
			t.Errorf("egress named ports:\n%s", strings.Join(egress, "\n"))
		}
	})
	t.Run("isolation", func(t *testing.T) {
		// a and c (web isolates both directions), b (lock, ingress).
		for _, m := range []string{"reg2=10,", "reg2=13,", "reg2=11,"} {
			if got := find(ingress, "1 "+m, "drop"); len(got) != 2 {
				t.Errorf("ingress isolation %s: %q", m, got)
			}
		}
		if got := find(egress, "1 in_port=", "drop"); len(got) != 4 {
			t.Errorf("egress isolation: %q; want a and c, new and established", got)
		}
		if got := find(ingress, "reg2=12"); len(got) != 0 {
			t.Errorf("infra/m is selected by nothing, yet: %q", got)
		}
	})
	t.Run("a rule without peers or ports is plain flows per subject", func(t *testing.T) {
		// open allows all egress of proj2's b (port 11); guard's dns (udp 53) is a conjunction.
		if got := find(egressCluster, "in_port=11,ct_state"); len(got) != 2 {
			t.Errorf("open's plain flows: %q", got)
		}
		if got := find(egressCluster, "udp,tp_dst=53 "); len(got) != 1 {
			t.Errorf("dns: %q", got)
		}
	})
	t.Run("host exemption", func(t *testing.T) {
		if len(find(cluster, "in_port=2,nw_src=10.128.0.1")) != 1 {
			t.Error("the host's own traffic is not exempt")
		}
		h.HostTrafficByPolicy = true
		defer func() { h.HostTrafficByPolicy = false }()
		if got, _ := flowsOf(h, Ingress); len(find(got, "in_port=2")) != 0 {
			t.Error("host_traffic = policy, yet the host's own traffic is exempt")
		}
	})
	t.Run("cookies name every counted flow", func(t *testing.T) {
		c := CompileAll(h)
		for _, f := range c.Flows {
			counted := strings.Contains(f.Match, "ct_state=+new+trk") || strings.Contains(f.Match, "ct_state=-new+trk")
			if Stages[f.Table] == Output {
				continue
			}
			if _, ok := c.Rules[uint32(f.Cookie)]; ok != counted {
				t.Errorf("flow %s: cookie names a rule = %v", f, ok)
			}
		}
	})
}

// TestPolicyDeterministic: input order changes nothing; ids of one
// policy's flows do not move when another policy comes.
func TestPolicyDeterministic(t *testing.T) {
	pols, members := policyScenario()
	a := renderPolicy(withPolicies(Policy, pols, members))
	h := withPolicies(Policy, pols, members)
	h.Local[0], h.Local[3] = h.Local[3], h.Local[0]
	if b := renderPolicy(h); a != b {
		t.Fatal("input order changed the output")
	}
	before := find(Lines(withPolicies(Policy, pols[:1], members)), "conj_id")
	after := Lines(withPolicies(Policy, pols[:2], members))
	for _, l := range before {
		if len(find(after, l)) != 1 {
			t.Errorf("flow %q changed when another policy came", l)
		}
	}
}

// Lines renders the compiled flows one per line.
func Lines(h *Host) []string {
	var out []string
	for _, f := range Compile(h) {
		out = append(out, f.String())
	}
	return out
}

// TestPolicyScale: 200 selected local workloads admitting 200 peer
// workloads in one rule cost flows in the hundreds (OpenShift-SDN: 40,000).
func TestPolicyScale(t *testing.T) {
	base := len(Compile(PolicyScale(200, 0)))
	h := PolicyScale(200, 200)
	n := len(Compile(h)) - base
	t.Logf("policy flows for 200 selected workloads x 200 peers in one rule: %d (OpenShift-SDN: 40,000)", n)
	if n >= 2000 {
		t.Errorf("%d policy flows; want under 2,000", n)
	}
	ovsAccepts(t, h)
}

func BenchmarkCompilePolicy(b *testing.B) {
	h := PolicyScale(200, 200)
	var n int
	for b.Loop() {
		n = len(Compile(h))
	}
	b.ReportMetric(float64(n), "flows")
}
