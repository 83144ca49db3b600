package flows

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// withHostPorts is the services host with this host's underlay address,
// a host port of a local workload (tcp 8080 -> 80, and udp on a given
// host address) and the node ports of web (balanced) and sticky (affinity:
// none in OVS).
func withHostPorts() *Host {
	h := withServices()
	h.UnderlayIP = netip.MustParseAddr("198.18.0.1")
	a := netip.MustParseAddr("10.128.0.2")
	h.HostPorts = []HostPort{
		{Protocol: "tcp", HostIP: h.UnderlayIP, HostPort: 8080, Workload: "proj1/a", IP: a, Port: 80},
		{Protocol: "udp", HostIP: netip.MustParseAddr("198.18.5.5"), HostPort: 5353, Workload: "proj1/a", IP: a, Port: 53},
	}
	h.NodePorts = []NodePort{
		{Protocol: "tcp", NodePort: 30080, Service: "proj1/web", Port: 80},
		{Protocol: "tcp", NodePort: 30443, Service: "proj1/sticky", Port: 443},
		{Protocol: "tcp", NodePort: 30081, Service: "proj1/empty", Port: 80},
	}
	return h
}

func TestHostPortsGolden(t *testing.T) {
	got := render(withHostPorts())
	path := filepath.Join("testdata", "hostports.golden")
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
		t.Errorf("flows differ from %s (go test ./datapath/flows -update, then review the diff)", path)
	}
	for _, want := range []string{
		"ct_state=+new+trk,tcp,nw_dst=198.18.0.1,tp_dst=8080,actions=ct(commit,table=7,zone=1,nat(dst=10.128.0.2:80))",
		"ct_state=+new+trk,udp,nw_dst=198.18.5.5,tp_dst=5353,actions=ct(commit,table=7,zone=1,nat(dst=10.128.0.2:53))",
		"ct_state=+new+trk,tcp,nw_dst=198.18.0.1,tp_dst=30080,actions=group:",
		"ip,in_port=1,nw_dst=198.18.0.1,actions=",
		"ip,ct_state=-rpl+trk,nw_dst=198.18.0.2,actions=",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no flow with %q", want)
		}
	}
	for _, no := range []string{"tp_dst=30443", "tp_dst=30081"} {
		if strings.Contains(got, no) {
			t.Errorf("a flow for %s: affinity ports and ports without endpoints are left to the kernel", no)
		}
	}
}
