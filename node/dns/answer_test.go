package dns

import (
	"slices"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestNamesInsideTheDomain: services, their named ports, workloads (from
// the servers), the service winning over a workload of its name, empty
// and missing names, in the default domain.
func TestNamesInsideTheDomain(t *testing.T) {
	s, _, _ := startDNS(t)
	tests := []struct {
		name  string
		qtype uint16
		rcode int
		want  []string // A records in the answer
	}{
		{"web.proj1.sdn.local", mdns.TypeA, mdns.RcodeSuccess, []string{"172.30.0.10"}},
		{"WEB.Proj1.SDN.local", mdns.TypeA, mdns.RcodeSuccess, []string{"172.30.0.10"}},
		{"db.proj1.sdn.local", mdns.TypeA, mdns.RcodeSuccess, []string{"172.30.0.11"}},
		{"web.proj1.sdn.local", mdns.TypeAAAA, mdns.RcodeSuccess, nil},
		{"client.proj1.sdn.local", mdns.TypeA, mdns.RcodeSuccess, []string{"10.128.2.7"}},
		{"client.proj1.sdn.local", mdns.TypeAAAA, mdns.RcodeSuccess, nil},
		{"api.proj2.sdn.local", mdns.TypeA, mdns.RcodeSuccess, []string{"10.128.4.9"}},
		{"web.proj2.sdn.local", mdns.TypeA, mdns.RcodeNameError, nil},
		{"nobody.proj1.sdn.local", mdns.TypeA, mdns.RcodeNameError, nil},
		{"web.nonet.sdn.local", mdns.TypeA, mdns.RcodeNameError, nil},
		{"sdn.local", mdns.TypeA, mdns.RcodeSuccess, nil},
		{"proj1.sdn.local", mdns.TypeA, mdns.RcodeSuccess, nil},
		{"nonet.sdn.local", mdns.TypeA, mdns.RcodeNameError, nil},
		{"a.web.proj1.sdn.local", mdns.TypeA, mdns.RcodeNameError, nil},
		{"x.a.web.proj1.sdn.local", mdns.TypeA, mdns.RcodeNameError, nil},
		{"_http._tcp.web.proj1.sdn.local", mdns.TypeA, mdns.RcodeSuccess, nil},
		{"_tcp.web.proj1.sdn.local", mdns.TypeSRV, mdns.RcodeSuccess, nil},
		{"_udp.db.proj1.sdn.local", mdns.TypeSRV, mdns.RcodeNameError, nil},
		{"_http._udp.web.proj1.sdn.local", mdns.TypeSRV, mdns.RcodeNameError, nil},
		{"_https._tcp.web.proj1.sdn.local", mdns.TypeSRV, mdns.RcodeNameError, nil},
		{"_http._tcp.nosvc.proj1.sdn.local", mdns.TypeSRV, mdns.RcodeNameError, nil},
	}
	for _, tt := range tests {
		r := ask(t, "udp", s.Addr(), tt.name, tt.qtype)
		if r.Rcode != tt.rcode || !slices.Equal(addresses(r.Answer), tt.want) || (tt.want == nil && len(r.Answer) > 0) {
			t.Errorf("%s %s: %s %v; want %s %v", tt.name, mdns.TypeToString[tt.qtype], mdns.RcodeToString[r.Rcode], r.Answer, mdns.RcodeToString[tt.rcode], tt.want)
			continue
		}
		if !r.Authoritative {
			t.Errorf("%s: not authoritative", tt.name)
		}
		if len(r.Answer) == 0 && (len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != mdns.TypeSOA) {
			t.Errorf("%s: negative answer without the domain's SOA: %v", tt.name, r.Ns)
		}
		for _, rr := range r.Answer {
			if rr.Header().Ttl != 5 {
				t.Errorf("%s: TTL %d, want 5", tt.name, rr.Header().Ttl)
			}
		}
	}
}

// TestSRV: a named service port as SRV, the VIP beside it; over TCP too.
func TestSRV(t *testing.T) {
	s, _, _ := startDNS(t)
	for _, tt := range []struct {
		netw, name string
		port       uint16
	}{{"udp", "_http._tcp.web.proj1.sdn.local", 80}, {"tcp", "_dns._udp.web.proj1.sdn.local", 53}} {
		r := ask(t, tt.netw, s.Addr(), tt.name, mdns.TypeSRV)
		if r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("%s SRV: %s %v", tt.name, mdns.RcodeToString[r.Rcode], r.Answer)
		}
		srv, ok := r.Answer[0].(*mdns.SRV)
		if !ok || srv.Port != tt.port || srv.Target != "web.proj1.sdn.local." {
			t.Errorf("%s SRV: %v; want port %d target web.proj1.sdn.local.", tt.name, r.Answer[0], tt.port)
		}
		if got := addresses(r.Extra); !slices.Equal(got, []string{"172.30.0.10"}) {
			t.Errorf("%s SRV: additional %v; want the VIP", tt.name, r.Extra)
		}
	}
}

// TestFollowsDesiredState: the state is read at each query, not copied at
// start: a new service, a changed VIP, a removed service and another
// domain show at once.
func TestFollowsDesiredState(t *testing.T) {
	s, d, _ := startDNS(t)
	d.change(func(m *model.Desired) {
		m.Services["proj2/cache"] = &sdnv1.Service{Name: "cache", Network: "proj2", Vip: "172.30.0.20"}
		m.Services["proj1/web"].Vip = "172.30.0.99"
		delete(m.Services, "proj1/db")
	})
	for name, want := range map[string]string{"cache.proj2.sdn.local": "172.30.0.20", "web.proj1.sdn.local": "172.30.0.99"} {
		if r := ask(t, "udp", s.Addr(), name, mdns.TypeA); !slices.Equal(addresses(r.Answer), []string{want}) {
			t.Errorf("%s: %v; want %s", name, r.Answer, want)
		}
	}
	if r := ask(t, "udp", s.Addr(), "db.proj1.sdn.local", mdns.TypeA); r.Rcode != mdns.RcodeNameError {
		t.Errorf("removed service db: %s %v", mdns.RcodeToString[r.Rcode], r.Answer)
	}
	d.change(func(m *model.Desired) { m.Cluster.DnsDomain = "corp.example" })
	if r := ask(t, "udp", s.Addr(), "web.proj1.corp.example", mdns.TypeA); !slices.Equal(addresses(r.Answer), []string{"172.30.0.99"}) {
		t.Errorf("web in domain corp.example: %s %v", mdns.RcodeToString[r.Rcode], r.Answer)
	}
}

// TestServiceWinsOverWorkload: a workload named as a service of its
// network is not asked for.
func TestServiceWinsOverWorkload(t *testing.T) {
	s, _, n := startDNS(t)
	r := ask(t, "udp", s.Addr(), "web.proj1.sdn.local", mdns.TypeA)
	if !slices.Equal(addresses(r.Answer), []string{"172.30.0.10"}) || n.count() != 0 {
		t.Fatalf("web.proj1: %v after %d calls to the servers; want the VIP and none", r.Answer, n.count())
	}
}

// TestServersUnreachable: a workload name the servers cannot be asked
// about is SERVFAIL (unknown), not NXDOMAIN; services still answer; once
// the servers are back, names resolve.
func TestServersUnreachable(t *testing.T) {
	s, _, n := startDNS(t)
	n.set(func() { n.err = errUnavailable })
	if r := ask(t, "udp", s.Addr(), "client.proj1.sdn.local", mdns.TypeA); r.Rcode != mdns.RcodeServerFailure {
		t.Fatalf("servers away: %s; want SERVFAIL", mdns.RcodeToString[r.Rcode])
	}
	if r := ask(t, "udp", s.Addr(), "web.proj1.sdn.local", mdns.TypeA); len(r.Answer) != 1 {
		t.Fatalf("a service while the servers are away: %s %v", mdns.RcodeToString[r.Rcode], r.Answer)
	}
	n.set(func() { n.err = nil })
	if r := ask(t, "udp", s.Addr(), "client.proj1.sdn.local", mdns.TypeA); !slices.Equal(addresses(r.Answer), []string{"10.128.2.7"}) {
		t.Fatalf("servers back: %s %v (a failure must not be cached)", mdns.RcodeToString[r.Rcode], r.Answer)
	}
}

// TestWorkloadCache: answers, found or not, are cached for TTL, then asked
// again.
func TestWorkloadCache(t *testing.T) {
	clock := newTestClock(time.Unix(1000, 0))
	s, _, n := startDNSWith(t, func(s *Server) { s.now = clock.now })
	for range 3 {
		ask(t, "udp", s.Addr(), "client.proj1.sdn.local", mdns.TypeA)
		ask(t, "tcp", s.Addr(), "nobody.proj1.sdn.local", mdns.TypeA)
	}
	if c := n.count(); c != 2 {
		t.Fatalf("%d calls to the servers for 6 queries of 2 names within TTL; want 2", c)
	}
	n.set(func() { n.workloads["proj1/client"] = "10.128.2.70"; n.workloads["proj1/nobody"] = "10.128.2.71" })
	clock.add(TTL - time.Millisecond)
	if r := ask(t, "udp", s.Addr(), "client.proj1.sdn.local", mdns.TypeA); !slices.Equal(addresses(r.Answer), []string{"10.128.2.7"}) {
		t.Fatalf("within TTL: %v; want the cached address", r.Answer)
	}
	clock.add(time.Millisecond)
	for name, want := range map[string]string{"client.proj1.sdn.local": "10.128.2.70", "nobody.proj1.sdn.local": "10.128.2.71"} {
		if r := ask(t, "udp", s.Addr(), name, mdns.TypeA); !slices.Equal(addresses(r.Answer), []string{want}) {
			t.Errorf("%s after TTL: %s %v; want %s", name, mdns.RcodeToString[r.Rcode], r.Answer, want)
		}
	}
	if c := n.count(); c != 4 {
		t.Fatalf("%d calls to the servers; want 4 (2, then 2 after expiry)", c)
	}
}
