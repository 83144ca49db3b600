package dns

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Test addresses: the servers listen on 127.0.0.1 with ports the kernel
// picks; services in 172.30.0.0/16, workloads in 10.128.0.0/14 are only
// names in answers.

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeDesired is the agent's desired state, changed by the test.
type fakeDesired struct {
	mu sync.Mutex
	m  *model.Desired
}

func newFakeDesired() *fakeDesired {
	m := model.NewDesired()
	m.Cluster = &sdnv1.ClusterSettings{}
	for _, n := range []string{"proj1", "proj2"} {
		m.Networks[n] = &sdnv1.Network{Name: n}
	}
	m.Services["proj1/web"] = &sdnv1.Service{Name: "web", Network: "proj1", Vip: "172.30.0.10", Ports: []*sdnv1.ServicePort{
		{Name: "http", Protocol: "tcp", Port: 80}, {Name: "dns", Protocol: "udp", Port: 53}, {Protocol: "tcp", Port: 8080},
	}}
	m.Services["proj1/db"] = &sdnv1.Service{Name: "db", Network: "proj1", Vip: "172.30.0.11", Ports: []*sdnv1.ServicePort{{Protocol: "tcp", Port: 5432}}}
	return &fakeDesired{m: m}
}

func (f *fakeDesired) View(fn func(m *model.Desired)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.m)
}

func (f *fakeDesired) change(fn func(m *model.Desired)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.m)
}

// fakeNames is the servers' NameService: workloads by "network/name".
type fakeNames struct {
	mu        sync.Mutex
	workloads map[string]string // key → IP
	err       error
	calls     int
}

func (f *fakeNames) ResolveName(_ context.Context, in *sdnv1.ResolveNameRequest, _ ...grpc.CallOption) (*sdnv1.ResolveNameResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	ip, ok := f.workloads[in.Network+"/"+in.Name]
	return &sdnv1.ResolveNameResponse{Found: ok, Ip: ip, Node: "host2", Revision: 7}, nil
}

func (f *fakeNames) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

func (f *fakeNames) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

var errUnavailable = status.Error(codes.Unavailable, "connection refused")

// startDNS starts a server on 127.0.0.1 with a fake state and fake servers
// (upstreams: the given resolvers, none if nil).
func startDNS(t *testing.T, upstreams ...string) (*Server, *fakeDesired, *fakeNames) {
	t.Helper()
	return startDNSWith(t, nil, upstreams...)
}

// startDNSWith is startDNS with a change to the server before it starts.
func startDNSWith(t *testing.T, before func(s *Server), upstreams ...string) (*Server, *fakeDesired, *fakeNames) {
	t.Helper()
	d := newFakeDesired()
	n := &fakeNames{workloads: map[string]string{"proj1/client": "10.128.2.7", "proj1/web": "10.128.2.8", "proj2/api": "10.128.4.9"}}
	if upstreams == nil {
		upstreams = []string{}
	}
	s := New(Config{Desired: d, Names: n, Upstreams: upstreams, LookupTimeout: 500 * time.Millisecond, ForwardTimeout: 500 * time.Millisecond, Logger: discard})
	if before != nil {
		before(s)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, d, n
}

// ask sends one query over net ("udp" or "tcp") and returns the answer.
func ask(t *testing.T, netw, addr, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	q := new(mdns.Msg)
	q.SetQuestion(mdns.Fqdn(name), qtype)
	c := &mdns.Client{Net: netw, Timeout: 3 * time.Second}
	r, _, err := c.Exchange(q, addr)
	if err != nil {
		t.Fatalf("query %s %s over %s: %v", name, mdns.TypeToString[qtype], netw, err)
	}
	return r
}

// addresses are the A records of an answer, in order.
func addresses(rrs []mdns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if a, ok := rr.(*mdns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out
}

// testClock is a clock the test moves.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) now() time.Time       { return time.Unix(0, c.ns.Load()) }
func (c *testClock) add(d time.Duration)  { c.ns.Add(int64(d)) }
func newTestClock(t time.Time) *testClock { c := &testClock{}; c.ns.Store(t.UnixNano()); return c }

// upstream is a fake resolver on 127.0.0.1, UDP and TCP on one port.
type upstream struct {
	addr string
	mu   sync.Mutex
	seen []string // the network of each query: "udp" or "tcp"
}

// startUpstream serves answer(query, net) on a loopback port.
func startUpstream(t *testing.T, answer func(r *mdns.Msg, netw string) *mdns.Msg) *upstream {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	u := &upstream{addr: pc.LocalAddr().String()}
	handler := func(netw string) mdns.HandlerFunc {
		return func(w mdns.ResponseWriter, r *mdns.Msg) {
			u.mu.Lock()
			u.seen = append(u.seen, netw)
			u.mu.Unlock()
			if m := answer(r, netw); m != nil {
				_ = w.WriteMsg(m)
			}
		}
	}
	for _, srv := range []*mdns.Server{{PacketConn: pc, Handler: handler("udp")}, {Listener: l, Handler: handler("tcp")}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return u
}

func (u *upstream) queries() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

// aAnswer answers every A query with ip.
func aAnswer(ip string) func(r *mdns.Msg, _ string) *mdns.Msg {
	return func(r *mdns.Msg, _ string) *mdns.Msg {
		m := new(mdns.Msg)
		m.SetReply(r)
		m.Answer = []mdns.RR{&mdns.A{Hdr: mdns.RR_Header{Name: r.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60}, A: net.ParseIP(ip)}}
		return m
	}
}
