package suites

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"github.com/sdn-dev/sdn/spec"
)

// The suite's HCL must decode as the lab will apply it, with the sizes
// the notes and the README state, and the rules figures' policies must
// decide the measured pair by their last rule only.
func TestPolicyHCLDecodes(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"base.hcl": polBaseHCL(), "static.hcl": polStaticHCL(0, 200), "background.hcl": polBackgroundHCL(0, 20), "rules.hcl": polRulesHCL(200),
	}
	for f, s := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	doc, diags := spec.LoadPaths([]string{dir})
	if diags.HasErrors() {
		t.Fatalf("the suite's HCL does not decode: %v", diags)
	}
	if got := doc.Cluster.GetHostPrefix(); got != 18 {
		t.Errorf("host prefix %d, want 18 (room for the memory load)", got)
	}
	if len(doc.Networks) != polLabNetworks+1 || len(doc.Workloads) != 200 {
		t.Errorf("%d networks and %d workloads, want %d and 200", len(doc.Networks), len(doc.Workloads), polLabNetworks+1)
	}
	var rules, bg int
	var ps []*sdnv1.Policy
	for _, p := range doc.Policies {
		switch {
		case p.Network == polPerf:
			rules += len(p.Ingress) + len(p.Egress)
			ps = append(ps, p)
		case p.Name != "lat-gate":
			bg++
		}
	}
	if rules != 200 || bg != 20 {
		t.Fatalf("%d rules in network %s and %d background policies, want 200 and 20", rules, polPerf, bg)
	}

	// The pair: each direction's first matching rule is "the-pair".
	nets := map[string]*sdnv1.Network{}
	for _, n := range doc.Networks {
		nets[n.Name] = n
	}
	srv := &sdnv1.Workload{Name: "perf-srv", Network: polPerf, Ip: "10.128.0.5", Labels: map[string]string{"perf": "srv"}}
	cli := &sdnv1.Workload{Name: "perf-cli", Network: polPerf, Ip: "10.128.64.5", Labels: map[string]string{"perf": "cli"}}
	w := &policy.World{Policies: ps, Networks: nets}
	from := policy.End{Workload: cli, IP: netip.MustParseAddr(cli.Ip)}
	to := policy.End{Workload: srv, IP: netip.MustParseAddr(srv.Ip)}
	for _, port := range []uint32{5201, 8080, 8443} {
		v := w.Verdict(policy.Packet{From: from, To: to, Protocol: "tcp", Port: port})
		if !v.GetAllowed() {
			t.Errorf("tcp/%d from the client to the server: %v, want allowed", port, v)
		}
		for _, d := range []*sdnv1.Decision{v.GetEgress(), v.GetIngress()} {
			if d.GetRule() != "the-pair" {
				t.Errorf("tcp/%d: decided by %q of %q, want the-pair", port, d.GetRule(), d.GetPolicy())
			}
		}
	}
}
