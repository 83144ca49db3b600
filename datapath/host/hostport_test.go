package host

import (
	"net/netip"
	"testing"
	"time"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestHostPortIsolation: a host port of a workload of network a on h1
// (udp 8053 -> its echo port) is reached by a workload of a on h2 and from
// h2's own namespace, and not by workloads of b, on h1 or on h2
// (multitenant): OVS translates a workload's packet to the mapped
// workload before isolation judges it (datapath/flows, hostport.go).
func TestHostPortIsolation(t *testing.T) {
	l := newLab(t, 2)
	h1, h2 := l.hosts[0], l.hosts[1]
	target := l.addWorkload(h1, "a", "web", "10.128.0.10")
	a2 := l.addWorkload(h2, "a", "a2", "10.128.2.10")
	b1 := l.addWorkload(h1, "b", "b1", "10.128.0.11")
	b2 := l.addWorkload(h2, "b", "b2", "10.128.2.11")
	target.w.PortMappings = []*sdnv1.PortMapping{{HostPort: 8053, ContainerPort: echoPort, Protocol: "udp"}}
	m := l.mirror(sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT)
	m.Cluster.ServiceCidr = "172.30.0.0/16" // the kernel's set-up (hostnet) needs it
	l.realize(m)
	hp := netip.AddrPortFrom(h1.underlay, 8053)
	reach := func(from, what string) bool {
		c, err := dialUDPPort(from, hp)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		defer c.Close()
		return echoes(c, 500*time.Millisecond)
	}
	for _, tc := range []struct {
		what, from string
		want       bool
	}{
		{"a workload of a on h2", a2.nsPath, true},
		{"h2's own namespace", h2.nsPath, true},
		{"a workload of b on h1 (the same host)", b1.nsPath, false},
		{"a workload of b on h2", b2.nsPath, false},
	} {
		if got := reach(tc.from, tc.what); got != tc.want {
			t.Errorf("%s to %s: reached %v, want %v", tc.what, hp, got, tc.want)
		}
	}
	if t.Failed() {
		t.Logf("h1 flows:\n%s", appctl(h1, "bridge/dump-flows", IntegrationBridge))
	}
}
