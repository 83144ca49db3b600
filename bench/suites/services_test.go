package suites

import (
	"maps"
	"path/filepath"
	"testing"

	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/policy"
	"github.com/sdn-dev/sdn/spec"
)

// The suite's HCL decodes as the lab will apply it: every load service
// selects exactly its endpoints in its own network, the VIP service the
// server alone; the workloads span two files.
func TestServicesHCLDecodes(t *testing.T) {
	sz := svcSizes{services: 600, endpoints: 10}
	dir := filepath.Join(t.TempDir(), "hcl")
	if err := writeSvcHCL(dir, sz); err != nil {
		t.Fatal(err)
	}
	if got, _ := filepath.Glob(filepath.Join(dir, "endpoints-*.hcl")); len(got) != 2 {
		t.Errorf("workload files %v, want 2 (%d workloads, %d a file)", got, sz.services*sz.endpoints, svcFileWorkloads)
	}
	doc, diags := spec.LoadPaths([]string{dir})
	if diags.HasErrors() {
		t.Fatalf("the suite's HCL does not decode: %v", diags)
	}
	if len(doc.Services) != sz.services+1 || len(doc.Workloads) != sz.services*sz.endpoints || len(doc.Networks) != svcLabNetworks+1 {
		t.Fatalf("%d services, %d workloads, %d networks; want %d, %d, %d",
			len(doc.Services), len(doc.Workloads), len(doc.Networks), sz.services+1, sz.services*sz.endpoints, svcLabNetworks+1)
	}
	for _, v := range doc.Services {
		n := 0
		for _, w := range doc.Workloads {
			if w.Network == v.Network && policy.Matches(v.GetSelector(), w.Labels) {
				n++
			}
		}
		if v.Name == svcVIPName {
			if v.Vip != svcVIP || n != 0 || !policy.Matches(v.GetSelector(), map[string]string{"perf": "srv"}) || policy.Matches(v.GetSelector(), map[string]string{"perf": "cli"}) {
				t.Errorf("%s: vip %s, %d static endpoints; want %s over perf=srv alone", model.ServiceKey(v), v.Vip, n, svcVIP)
			}
			continue
		}
		if n != sz.endpoints || len(v.Ports) != 1 {
			t.Errorf("%s: %d endpoints, %d ports; want %d and 1", model.ServiceKey(v), n, len(v.Ports), sz.endpoints)
		}
	}
}

// Each cycle of changes moves one workload to a service of its network,
// removes its label and puts it back: the endpoint counts change by one
// or two services and return to the load as declared.
func TestServicesChangeCycle(t *testing.T) {
	s := &svcBench{sizes: quickSvcSizes}
	n := s.sizes.services * s.sizes.endpoints
	labels := map[string]map[string]string{}
	network := map[string]string{}
	for j := range n {
		labels[svcWorkload(j)] = map[string]string{"svc": svcName(j / s.sizes.endpoints)}
		network[svcWorkload(j)] = svcNetwork(j / s.sizes.endpoints % svcLabNetworks)
	}
	count := func() map[string]int {
		c := map[string]int{}
		for _, l := range labels {
			c[l["svc"]]++
		}
		return c
	}
	before := count()
	seen := map[string]bool{}
	for k := range 3 * 40 {
		net, name, req := s.changeTarget(k)
		if net != network[name] || req.Network != net || req.Name != name {
			t.Fatalf("change %d: %s/%s, but %s is in %s", k, net, name, name, network[name])
		}
		if k%3 == 0 {
			if seen[name] {
				t.Fatalf("change %d: %s changed by an earlier cycle", k, name)
			}
			seen[name] = true
			if to := req.Set["svc"]; to == labels[name]["svc"] || svcNetwork(svcIndex(t, to)%svcLabNetworks) != net {
				t.Fatalf("change %d moves %s from %s to %s: not another service of %s", k, name, labels[name]["svc"], to, net)
			}
		}
		old := count()
		maps.Copy(labels[name], req.Set)
		for _, key := range req.Remove {
			delete(labels[name], key)
		}
		changed := 0
		now := count()
		for svc := range maps.Keys(now) {
			if svc != "" && now[svc] != old[svc] {
				changed++
			}
		}
		for svc := range maps.Keys(old) {
			if _, ok := now[svc]; !ok && svc != "" {
				changed++
			}
		}
		if want := []int{2, 1, 1}[k%3]; changed != want {
			t.Errorf("change %d (%s): %d services' endpoints changed, want %d", k, changeStep[k%3], changed, want)
		}
		if k%3 == 2 && !maps.Equal(count(), before) {
			t.Fatalf("after cycle %d the endpoints are not as declared", k/3)
		}
	}
}

func svcIndex(t *testing.T, name string) int {
	t.Helper()
	for i := range quickSvcSizes.services {
		if svcName(i) == name {
			return i
		}
	}
	t.Fatalf("no service %q", name)
	return 0
}

// The agent's log line for a revision gives the reconciler's result.
func TestRealizedResult(t *testing.T) {
	log := []byte(`time=2026-12-07T10:00:00.000Z level=INFO msg="realized desired state" revision=41 result="12 local workloads; br-int flows: 3 added"
time=2026-12-07T10:00:00.100Z level=INFO msg="realized desired state" revision=42 result="12 local workloads; br-int flows: 0 added, 0 modified, 0 deleted, 2100 unchanged; groups: 0 added, 2 modified, 0 deleted, 999 unchanged; ports: 0 added, 0 deleted (flows only: host set-up as at the last full realize)"
`)
	if got := realizedResult(log, 42); got != "12 local workloads; br-int flows: 0 added, 0 modified, 0 deleted, 2100 unchanged; groups: 0 added, 2 modified, 0 deleted, 999 unchanged; ports: 0 added, 0 deleted (flows only: host set-up as at the last full realize)" {
		t.Errorf("revision 42: %q", got)
	}
	if got := realizedResult(log, 4); got == "" || got[:2] != "no" {
		t.Errorf("revision 4 (not logged): %q", got)
	}
}

func TestFlowLimit(t *testing.T) {
	out := "system@ovs-netdev:\n  flows         : (current 7) (avg 8) (max 6257) (limit 10000)\n  dump duration : 2ms\n"
	if got := flowLimit(out); got != "10000" {
		t.Errorf("flow limit %q, want 10000", got)
	}
}

func TestNATRemaps(t *testing.T) {
	dump := "tcp,orig=(src=10.128.64.102,dst=172.30.255.10,sport=35078,dport=8080),reply=(src=10.128.0.102,dst=10.128.64.102,sport=8080,dport=35079),zone=1,protoinfo=(state=TIME_WAIT)\n" +
		"tcp,orig=(src=10.128.64.102,dst=172.30.255.10,sport=23024,dport=8080),reply=(src=10.128.0.102,dst=10.128.64.102,sport=8080,dport=23024),zone=1,protoinfo=(state=TIME_WAIT)\n" +
		"tcp,orig=(src=10.128.64.102,dst=10.128.0.102,sport=58878,dport=8080),reply=(src=10.128.0.102,dst=10.128.64.102,sport=8080,dport=58878),zone=1,protoinfo=(state=TIME_WAIT)\n"
	if r, n := natRemaps(dump); r != 1 || n != 2 {
		t.Errorf("%d of %d remapped, want 1 of 2", r, n)
	}
}
