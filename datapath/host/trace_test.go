package host

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/datapath/flows"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// labHost1 is host1 of `make lab` as its datapath compiled it when the
// testdata traces were captured (`sdnctl trace --raw` from
// proj1/host1-proj1 to the VIP of proj1/hello, 172.30.0.1): the ports,
// the remote hosts and the service the raw text refers to.
func labHost1() *flows.Host {
	mac, _ := net.ParseMAC("0a:58:0a:80:00:01")
	wmac, _ := net.ParseMAC("0a:58:0a:80:00:04")
	a := netip.MustParseAddr
	return &flows.Host{
		Subnet: netip.MustParsePrefix("10.128.0.0/23"), Gateway: a("10.128.0.1"), GatewayMAC: mac,
		ClusterCIDR: netip.MustParsePrefix("10.128.0.0/14"), ServiceCIDR: netip.MustParsePrefix("172.30.0.0/16"),
		TunnelPort: 1, GatewayPort: 2,
		Local: []flows.Workload{{Name: "proj1/host1-proj1", IP: a("10.128.0.4"), MAC: wmac, VNID: 1, Port: 4}},
		Remote: []flows.RemoteHost{
			{Name: "host2", Subnet: netip.MustParsePrefix("10.128.2.0/23"), UnderlayIP: a("198.19.200.2")},
			{Name: "host3", Subnet: netip.MustParsePrefix("10.128.4.0/23"), UnderlayIP: a("198.19.200.3")},
		},
		Services: []flows.Service{{Key: "proj1/hello", VIP: a("172.30.0.1"),
			Ports: []flows.ServicePort{{Protocol: "tcp", Port: 80}},
			Endpoints: []flows.Endpoint{
				{Name: "proj1/host2-proj1", IP: a("10.128.2.3"), Ports: []uint16{8080}},
				{Name: "proj1/host3-proj1", IP: a("10.128.4.3"), Ports: []uint16{8080}},
			}}, {Key: "proj1/empty", VIP: a("172.30.0.2"), Ports: []flows.ServicePort{{Protocol: "udp", Port: 5353}}}, {Key: "proj1/sticky", VIP: a("172.30.0.3"), AffinityTimeout: 600,
			Ports: []flows.ServicePort{{Protocol: "tcp", Port: 80}},
			Endpoints: []flows.Endpoint{
				{Name: "proj1/host2-proj1", IP: a("10.128.2.3"), Ports: []uint16{8080}},
				{Name: "proj1/host3-proj1", IP: a("10.128.4.3"), Ports: []uint16{8080}},
			}}},
	}
}

func readTrace(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func stepTexts(tr *sdnv1.HostTrace) string {
	var out []string
	for _, s := range tr.Steps {
		out = append(out, s.Stage+": "+s.Text)
	}
	return strings.Join(out, "\n")
}

// The endpoint the select group's hash chose is read from the bucket
// ofproto/trace prints under the group action (its ct(commit, nat(dst=...))),
// named, and the packet, translated, goes on to that endpoint's host.
func TestTraceNamesTheChosenBucket(t *testing.T) {
	h := labHost1()
	p := TracePacket{InWorkload: "proj1/host1-proj1", Dst: netip.MustParseAddr("172.30.0.1"), Protocol: "tcp", Port: 80}
	tr := explainTrace(h, nil, readTrace(t, "trace-vip-bucket.txt"))
	noteService(h, p, tr)
	steps := stepTexts(tr)
	if tr.Service != "proj1/hello" || tr.EndpointIp != "10.128.2.3" || tr.EndpointPort != 8080 || tr.Outcome != OutcomeForwarded {
		t.Fatalf("service %q endpoint %s:%d outcome %s; want proj1/hello 10.128.2.3:8080 forwarded\n%s", tr.Service, tr.EndpointIp, tr.EndpointPort, tr.Outcome, steps)
	}
	for _, want := range []string{
		"services: new connection to service proj1/hello (172.30.0.1:80): load-balanced over its endpoints; chosen: proj1/host2-proj1 (10.128.2.3:8080)",
		"forward: to host2 over the tunnel",
	} {
		if !strings.Contains(steps, want) {
			t.Errorf("steps do not say %q:\n%s", want, steps)
		}
	}
}

// A VIP:port no endpoint serves has no services flow: OVS sends the
// packet out of the gateway port, and the host's nftables refuse it.
func TestTraceNoEndpointIsRefusedByTheHost(t *testing.T) {
	h := labHost1()
	raw := readTrace(t, "trace-vip-no-endpoint.txt")
	for _, c := range []struct {
		file, vip, proto string
		port             uint16
		service, says    string
	}{
		{"trace-vip-no-endpoint.txt", "172.30.0.1", "tcp", 81, "proj1/hello", "service proj1/hello has no endpoint for tcp/81: the host refuses the connection (a TCP reset, nftables table inet sdn)"},
		{"trace-vip-no-endpoints-udp.txt", "172.30.0.2", "udp", 5353, "proj1/empty", "service proj1/empty has no endpoint for udp/5353: the host refuses the connection (ICMP port unreachable, nftables table inet sdn)"},
	} {
		p := TracePacket{InWorkload: "proj1/host1-proj1", Dst: netip.MustParseAddr(c.vip), Protocol: c.proto, Port: c.port}
		tr := explainTrace(h, nil, readTrace(t, c.file))
		noteService(h, p, tr)
		if tr.Outcome != OutcomeRefused || tr.EndpointIp != "" || tr.Service != c.service || !strings.Contains(stepTexts(tr), c.says) {
			t.Errorf("%s: outcome %s endpoint %q service %q; want refused, none, %s, a step saying %q:\n%s", c.file, tr.Outcome, tr.EndpointIp, tr.Service, c.service, c.says, stepTexts(tr))
		}
	}
	// The same text for an address that is no VIP of the service CIDR
	// says so; outside the service CIDR nothing is added.
	p := TracePacket{InWorkload: "proj1/host1-proj1", Dst: netip.MustParseAddr("172.30.9.9"), Protocol: "udp", Port: 53}
	tr := explainTrace(h, nil, raw)
	noteService(h, p, tr)
	if tr.Outcome != OutcomeRefused || tr.Service != "" || !strings.Contains(stepTexts(tr), "no service has this address: the host refuses the connection (ICMP port unreachable") {
		t.Errorf("no VIP: outcome %s service %q\n%s", tr.Outcome, tr.Service, stepTexts(tr))
	}
	p.Dst = netip.MustParseAddr("203.0.113.9")
	tr = explainTrace(h, nil, raw)
	noteService(h, p, tr)
	if tr.Outcome != OutcomeAllowed || tr.Service != "" {
		t.Errorf("outside the service CIDR: outcome %s service %q", tr.Outcome, tr.Service)
	}
}

// With session affinity and a flow learned by the client's last
// connection, the endpoint is the learned one: service-lb's flow for it
// DNATs (no group), and the trace says so.
func TestTraceNamesTheLearnedEndpoint(t *testing.T) {
	h := labHost1()
	p := TracePacket{InWorkload: "proj1/host1-proj1", Dst: netip.MustParseAddr("172.30.0.3"), Protocol: "tcp", Port: 80}
	tr := explainTrace(h, nil, readTrace(t, "trace-vip-affinity-learned.txt"))
	noteService(h, p, tr)
	steps := stepTexts(tr)
	if tr.Service != "proj1/sticky" || tr.EndpointIp != "10.128.2.3" || tr.EndpointPort != 8080 || tr.Outcome != OutcomeForwarded {
		t.Fatalf("service %q endpoint %s:%d outcome %s; want proj1/sticky 10.128.2.3:8080 forwarded\n%s", tr.Service, tr.EndpointIp, tr.EndpointPort, tr.Outcome, steps)
	}
	for _, want := range []string{
		"services: new connection to service proj1/sticky (172.30.0.3:80): session affinity first",
		"service-affinity: the client's endpoint, as learned by its last connection (session affinity)",
		"service-lb: new connection to service proj1/sticky (172.30.0.3:80): to the endpoint the client had (session affinity); chosen: proj1/host2-proj1 (10.128.2.3:8080)",
	} {
		if !strings.Contains(steps, want) {
			t.Errorf("steps do not say %q:\n%s", want, steps)
		}
	}
}

// On real OVS (the services lab of service_test.go): the trace of a new
// connection to a VIP names one of the service's endpoints, and the
// translated packet, traced on that endpoint's host from the tunnel, is
// delivered; a VIP without endpoints goes into the host and is refused.
func TestTraceServiceOnOVS(t *testing.T) {
	s := newSvcLab(t)
	s.realize(s.model())
	ctx := testCtx(t)
	tr, err := s.hosts[0].dp.Trace(ctx, TracePacket{InWorkload: "a/c", Dst: webVIP, Protocol: "tcp", Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	var ep *testWorkload
	for _, w := range []*testWorkload{s.e1, s.e2, s.e3} {
		if w.ip.String() == tr.EndpointIp {
			ep = w
		}
	}
	if ep == nil || tr.EndpointPort != namePort || tr.Service != "a/web" {
		t.Fatalf("chosen %s:%d of %s; want one of a/web's endpoints on port %d\n%s\n%s", tr.EndpointIp, tr.EndpointPort, tr.Service, namePort, stepTexts(tr), tr.Raw)
	}
	t.Logf("chose %s: %s\n%s", ep.w.Name, tr.Outcome, stepTexts(tr))
	if ep.host != s.hosts[0] {
		if tr.Outcome != OutcomeForwarded {
			t.Fatalf("endpoint %s on %s: outcome %s, want forwarded", ep.w.Name, ep.host.name, tr.Outcome)
		}
		on, err := ep.host.dp.Trace(ctx, TracePacket{TunnelVNID: s.c.w.Vnid, Src: s.c.ip, Dst: ep.ip, Protocol: "tcp", Port: uint16(tr.EndpointPort)})
		if err != nil {
			t.Fatal(err)
		}
		if on.Outcome != OutcomeAllowed || !strings.Contains(stepTexts(on), "to local workload a/"+ep.w.Name) {
			t.Fatalf("on %s: %s\n%s", ep.host.name, on.Outcome, stepTexts(on))
		}
	} else if tr.Outcome != OutcomeAllowed {
		t.Fatalf("local endpoint %s: outcome %s", ep.w.Name, tr.Outcome)
	}

	none, err := s.hosts[0].dp.Trace(ctx, TracePacket{InWorkload: "a/c", Dst: noneVIP, Protocol: "udp", Port: 53})
	if err != nil {
		t.Fatal(err)
	}
	if none.Outcome != OutcomeRefused || none.EndpointIp != "" || !strings.Contains(stepTexts(none), "service a/none has no endpoint for udp/53: the host refuses the connection (ICMP port unreachable") {
		t.Fatalf("no endpoints: %s\n%s\n%s", none.Outcome, stepTexts(none), none.Raw)
	}
}
