package flows

import (
	"fmt"
	"net/netip"
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

var _ = netip.Addr{}

func TestScratch(t *testing.T) {
	pols := []*sdnv1.Policy{
		{Name: "web", Network: "proj1", Workloads: sel("app", "web"), Priority: 1000, Isolate: []string{"ingress"},
			Ingress: []*sdnv1.PolicyRule{{Name: "clients", Peers: []*sdnv1.PolicyPeer{{Workloads: sel("role", "client")}},
				Ports: []*sdnv1.PolicyPort{{Port: 80}, {Port: 8000, EndPort: 8080}, {Name: "http"}}}}},
	}
	h := withPolicies(Policy, pols, map[string][]*sdnv1.GroupMember{"in network proj1: workloads{role=client}": {gm("10.128.2.7"), gm("10.128.0.9")}})
	t.Log("\n" + renderPolicy(h))
	ovsAccepts(t, h)
}
