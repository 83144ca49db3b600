package host

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/datapath/flows"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func TestServicesOf(t *testing.T) {
	m := testMirror()
	m.Services["a/web"] = &sdnv1.Service{Name: "web", Network: "a", Vip: "172.30.0.10",
		SessionAffinity: &sdnv1.SessionAffinity{TimeoutSeconds: 300},
		Ports: []*sdnv1.ServicePort{
			{Protocol: "tcp", Port: 80, TargetPortName: "http"},
			{Protocol: "udp", Port: 53, TargetPort: 5353},
		}}
	m.ServiceEndpoints["a/web"] = &sdnv1.ServiceEndpoints{Service: "a/web", Endpoints: []*sdnv1.ServiceEndpoint{
		{Workload: "a/w1", Ip: "10.128.0.5", Node: "n1", Ports: []uint32{8080, 0}},
		{Workload: "a/remote", Ip: "10.128.2.5", Node: "n2"}, // no resolved ports: numbered targets only
		{Workload: "a/bad", Ip: "nonsense", Node: "n2"},
	}}
	m.Services["a/pending"] = &sdnv1.Service{Name: "pending", Network: "a"}                   // no VIP yet: quietly skipped
	m.Services["a/broken"] = &sdnv1.Service{Name: "broken", Network: "a", Vip: "2001:db8::1"} // not IPv4
	d, warnings, err := desiredState(m, "n1")
	if err != nil {
		t.Fatal(err)
	}
	want := []flows.Service{{Key: "a/web", VIP: netip.MustParseAddr("172.30.0.10"), AffinityTimeout: 300,
		Ports: []flows.ServicePort{{Protocol: "tcp", Port: 80}, {Protocol: "udp", Port: 53}},
		Endpoints: []flows.Endpoint{
			{Name: "a/w1", IP: netip.MustParseAddr("10.128.0.5"), Ports: []uint16{8080, 0}, Local: true},
			{Name: "a/remote", IP: netip.MustParseAddr("10.128.2.5"), Ports: []uint16{0, 5353}},
		}}}
	if !reflect.DeepEqual(d.services, want) {
		t.Errorf("services = %+v\nwant %+v", d.services, want)
	}
	joined := strings.Join(warnings, "\n")
	for _, w := range []string{"service a/broken", "endpoint a/bad"} {
		if !strings.Contains(joined, w) {
			t.Errorf("no warning about %s in %q", w, joined)
		}
	}
	if strings.Contains(joined, "a/pending") {
		t.Errorf("a service without a VIP yet is warned about: %q", joined)
	}
	if got := d.flowHost(nil).Services; !reflect.DeepEqual(got, want) {
		t.Errorf("flowHost services = %+v", got)
	}
}

func TestUDPEntries(t *testing.T) {
	out := "tcp,orig=(src=10.128.0.10,dst=172.30.0.10,sport=1,dport=80),reply=(src=10.128.2.11,dst=10.128.0.10,sport=8080,dport=1),zone=1,protoinfo=(state=ESTABLISHED)\n" +
		"udp,orig=(src=10.128.0.10,dst=172.30.0.10,sport=54470,dport=53),reply=(src=10.128.2.11,dst=10.128.0.10,sport=5353,dport=54470),zone=1\n"
	got := udpEntries(out)
	want := []ctEntry{{orig: "ct_nw_src=10.128.0.10,ct_nw_dst=172.30.0.10,ct_nw_proto=17,ct_tp_src=54470,ct_tp_dst=53",
		key: udpKey{netip.MustParseAddrPort("172.30.0.10:53"), netip.MustParseAddrPort("10.128.2.11:5353")}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("udpEntries = %+v; want %+v", got, want)
	}
}
