package suites

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sdn-dev/sdn/integration/lab"
	"github.com/sdn-dev/sdn/policy"
	"github.com/sdn-dev/sdn/spec"
)

// The VM suite's service decodes with examples/ (what provision.sh
// applies before it) and selects, of the workloads provision.sh attaches
// to proj1 on two hosts, host1's alone.
func TestServicesVMHCLDecodes(t *testing.T) {
	f := filepath.Join(t.TempDir(), "perf.hcl")
	if err := os.WriteFile(f, []byte(svcVMHCL()), 0o644); err != nil {
		t.Fatal(err)
	}
	doc, diags := spec.LoadPaths([]string{"../../examples", f})
	if diags.HasErrors() {
		t.Fatalf("examples/ and the suite's service do not decode: %v", diags)
	}
	for _, v := range doc.Services {
		if v.Name != svcVMService {
			continue
		}
		if v.Network != svcVMNetwork || v.Vip != svcVIP || len(v.Ports) != 1 || v.Ports[0].GetPort() != svcVMPort {
			t.Errorf("service %s: network %s, vip %s, ports %v; want %s, %s, port %d", v.Name, v.Network, v.Vip, v.Ports, svcVMNetwork, svcVIP, svcVMPort)
		}
		for i, want := range []bool{true, false} {
			host := lab.HostName(i + 1)
			if got := policy.Matches(v.GetSelector(), lab.DemoLabels(host, svcVMNetwork)); got != want {
				t.Errorf("service %s selects %s's %s workload: %v, want %v", v.Name, host, svcVMNetwork, got, want)
			}
		}
		return
	}
	t.Fatalf("no service %s in %d services", svcVMService, len(doc.Services))
}

// natRemaps reads the kernel datapath's `dpctl/dump-conntrack` lines as
// the userspace one's (lib/ct-dpif.c formats both).
func TestNATRemapsKernelDump(t *testing.T) {
	dump := `tcp,orig=(src=10.128.2.3,dst=172.30.255.10,sport=20001,dport=80),reply=(src=10.128.0.3,dst=10.128.2.3,sport=8080,dport=20001),zone=1,protoinfo=(state=TIME_WAIT)
tcp,orig=(src=10.128.2.3,dst=172.30.255.10,sport=20002,dport=80),reply=(src=10.128.0.3,dst=10.128.2.3,sport=8080,dport=61234),zone=1,protoinfo=(state=TIME_WAIT)
`
	if r, n := natRemaps(dump); r != 1 || n != 2 {
		t.Errorf("natRemaps: %d of %d remapped, want 1 of 2", r, n)
	}
}

// The port-reuse probe reads wrk's output with its errors, and counts
// the VIP's distinct client ports.
func TestReuseProbeParsing(t *testing.T) {
	out := `Running 5s test @ http://172.30.255.10:80/
  1 threads and 16 connections
  1003 requests in 5.01s, 90.11KB read
  Socket errors: connect 12, read 0, write 0, timeout 3
Requests/sec:    200.20
`
	if rate, n, errs := wrkLoose(out); rate != 200.2 || n != 1003 || errs != "connect 12, read 0, write 0, timeout 3" {
		t.Errorf("wrkLoose: %v, %d, %q", rate, n, errs)
	}
	if _, _, errs := wrkLoose("  5 requests in 1s\nRequests/sec: 5\n"); errs != "none" {
		t.Errorf("wrkLoose without errors: %q, want none", errs)
	}
	dump := `tcp,orig=(src=10.128.2.3,dst=172.30.255.10,sport=30001,dport=80),reply=(src=10.128.0.3,dst=10.128.2.3,sport=8080,dport=30001),zone=1
tcp,orig=(src=10.128.2.3,dst=172.30.255.10,sport=30001,dport=80),reply=(src=10.128.0.3,dst=10.128.2.3,sport=8080,dport=30001),zone=2
tcp,orig=(src=10.128.2.3,dst=172.30.255.10,sport=30002,dport=80),reply=(src=10.128.0.3,dst=10.128.2.3,sport=8080,dport=30002),zone=1
`
	if n := distinctVIPPorts(dump); n != 2 {
		t.Errorf("distinctVIPPorts: %d, want 2", n)
	}
}
