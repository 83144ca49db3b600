package main

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// fakeTracer is a test double of sdnd's PolicyService.Trace (the pattern of
// fake_test.go): a canned answer, recorded requests.
type fakeTracer struct {
	sdnv1.UnimplementedPolicyServiceServer
	resp *sdnv1.TraceResponse
	mu   sync.Mutex
	reqs []*sdnv1.VerdictRequest
}

func (f *fakeTracer) Trace(_ context.Context, req *sdnv1.VerdictRequest) (*sdnv1.TraceResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	return f.resp, nil
}

func serveTracer(t *testing.T, f *fakeTracer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	sdnv1.RegisterPolicyServiceServer(s, f)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func traceModel(allowed bool) *sdnv1.VerdictResponse {
	return &sdnv1.VerdictResponse{Allowed: allowed,
		Egress: &sdnv1.Decision{Direction: "egress", Allowed: true, By: "policy", Policy: "proj1/web", Rule: "clients",
			Reason: "egress rule clients of policy proj1/web allows tcp/80 to proj1/server1"},
		Ingress: &sdnv1.Decision{Direction: "ingress", Allowed: allowed, By: "isolation", Policy: "proj1/db-only",
			Reason: "proj1/server1 is isolated for ingress by policy proj1/db-only and no rule allows tcp/80 from proj1/client1"}}
}

var twoHosts = []*sdnv1.HostTrace{
	{Node: "host1", Outcome: "forwarded", Raw: "bridge(\"br-int\")\n 0. priority 100", Steps: []*sdnv1.TraceStep{
		{Stage: "classify", Text: "from proj1/client1 (port 3)"},
		{Stage: "egress-policy", Text: "allowed by policy proj1/web rule clients", Policy: "proj1/web", Rule: "clients"},
		{Stage: "forward", Text: "to host2 over the tunnel"}}},
	{Node: "host2", Outcome: "denied", Steps: []*sdnv1.TraceStep{
		{Stage: "ingress-policy", Text: "dropped: proj1/server1 is isolated by policy proj1/db-only"}}},
}

func TestRenderTrace(t *testing.T) {
	f := &fakeTracer{resp: &sdnv1.TraceResponse{Model: traceModel(false), Hosts: twoHosts}}
	addr := serveTracer(t, f)
	r := sdnctl(t, addr, "trace", "--from", "proj1/client1", "--to", "proj1/server1", "--port", "tcp/80", "--raw")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"host1   classify         from proj1/client1 (port 3)",
		"host1   egress-policy    allowed by policy proj1/web rule clients",
		"host2   ingress-policy   dropped: proj1/server1 is isolated by policy proj1/db-only",
		"host1: ofproto/trace\n    bridge(\"br-int\")\n     0. priority 100",
		"DENIED by the datapath (host2, ingress-policy) — the model agrees: proj1/server1 is isolated for ingress by policy proj1/db-only",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if q := f.reqs[0]; q.From.Workload != "proj1/client1" || q.To.Workload != "proj1/server1" || q.Protocol != "tcp" || q.Port != 80 {
		t.Fatalf("request %v", q)
	}

	// Disagreement: said loudly.
	f.resp = &sdnv1.TraceResponse{Model: traceModel(true), Hosts: twoHosts,
		Disagreement: "the model allows this (policy proj1/web rule clients) but host2's datapath dropped it in ingress-policy"}
	r = sdnctl(t, addr, "trace", "--from", "proj1/client1", "--to", "10.128.2.3", "--port", "udp/53")
	if !strings.Contains(r.stdout, "!!! DISAGREEMENT: the model allows this (policy proj1/web rule clients) but host2's datapath dropped it") ||
		!strings.Contains(r.stdout, "!!! the model says ALLOWED") || f.reqs[1].To.Ip != "10.128.2.3" || f.reqs[1].Protocol != "udp" {
		t.Fatalf("disagreement:\n%s", r.stdout)
	}

	// A host that could not be asked: unknown, never guessed.
	f.resp = &sdnv1.TraceResponse{Model: traceModel(true), Hosts: []*sdnv1.HostTrace{twoHosts[0],
		{Node: "host2", Outcome: "unknown", Error: "could not ask host host2's datapath (198.18.0.2:7475): connection refused; its outcome is unknown"}}}
	r = sdnctl(t, addr, "trace", "--from", "proj1/client1", "--to", "proj1/server1", "--port", "icmp")
	if !strings.Contains(r.stdout, "host2   (unknown)       could not ask host host2's datapath") ||
		!strings.Contains(r.stdout, "UNKNOWN: the datapath's outcome is unknown (host2 could not be asked); the model says ALLOWED") {
		t.Fatalf("unknown:\n%s", r.stdout)
	}

	r = sdnctl(t, addr, "trace", "--from", "proj1/client1", "--to", "proj1/server1", "--port", "tcp/80", "-o", "json")
	if !strings.Contains(r.stdout, `"outcome": "unknown"`) {
		t.Fatalf("json:\n%s", r.stdout)
	}
}

func TestTraceFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", "client1", "--to", "proj1/s", "--port", "tcp/80"}, "want the source workload as NETWORK/NAME"},
		{[]string{"--from", "proj1/c", "--to", "nowhere", "--port", "tcp/80"}, "want NETWORK/NAME or an IPv4 address"},
		{[]string{"--from", "proj1/c", "--to", "proj1/s", "--port", "tcp"}, "want tcp/PORT, udp/PORT or icmp"},
		{[]string{"--from", "proj1/c", "--to", "proj1/s", "--port", "tcp/70000"}, "want a port 1-65535"},
		{[]string{"--from", "proj1/c", "--to", "proj1/s", "--port", "sctp/9"}, "want tcp/PORT, udp/PORT or icmp"},
	} {
		r := sdnctl(t, "127.0.0.1:1", append([]string{"trace"}, c.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, %q; want usage error %q", c.args, r.code, r.stderr, c.want)
		}
	}
}

// A trace through a service names the endpoint the source host chose;
// with no endpoint, the host's refusal is said as such.
func TestRenderTraceService(t *testing.T) {
	ev := &sdnv1.VerdictResponse{Allowed: true, Summary: "proj1/client1 -> proj1/server1 tcp/8080",
		Egress:  &sdnv1.Decision{Direction: "egress", Allowed: true, By: "baseline", Reason: "no policy decides egress from proj1/client1"},
		Ingress: &sdnv1.Decision{Direction: "ingress", Allowed: true, By: "policy", Policy: "proj1/web", Rule: "clients", Reason: "ingress rule clients of policy proj1/web allows tcp/8080"}}
	ev.Service = &sdnv1.ServiceVerdict{Service: "proj1/web", Outcome: "all", Reason: "every endpoint serving tcp/80 allows it (1 of 1)"}
	f := &fakeTracer{resp: &sdnv1.TraceResponse{Model: ev, Service: "proj1/web", Endpoint: "proj1/server1", EndpointIp: "10.128.2.3", EndpointPort: 8080,
		Allowed: true, Hosts: []*sdnv1.HostTrace{{Node: "host1", Outcome: "forwarded"}, {Node: "host2", Outcome: "allowed"}}}}
	addr := serveTracer(t, f)
	r := sdnctl(t, addr, "trace", "--from", "proj1/client1", "--to", "service:proj1/web", "--port", "tcp/80")
	for _, want := range []string{
		"service proj1/web: host1 chose endpoint proj1/server1 (10.128.2.3:8080); traced on as a packet sent to it",
		"ALLOWED by the datapath (host2) — the model agrees: no policy decides egress from proj1/client1; ingress rule clients of policy proj1/web allows tcp/8080",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if q := f.reqs[0]; q.To.GetService() != "proj1/web" || q.To.Workload != "" || q.Port != 80 {
		t.Fatalf("request %v", q)
	}

	refused := &sdnv1.ServiceVerdict{Service: "proj1/empty", Outcome: "refused", Reason: "no endpoints: no workload serves udp/53 of service proj1/empty, so host host1 refuses the connection (ICMP port unreachable)"}
	f.resp = &sdnv1.TraceResponse{Model: &sdnv1.VerdictResponse{Service: refused}, Service: "proj1/empty",
		Hosts: []*sdnv1.HostTrace{{Node: "host1", Outcome: "refused", Steps: []*sdnv1.TraceStep{{Stage: "host", Text: "the host refuses the connection"}}}}}
	r = sdnctl(t, addr, "trace", "--from", "proj1/client1", "--to", "172.30.0.2", "--port", "udp/53")
	for _, want := range []string{
		"service proj1/empty: host1 chose no endpoint",
		"REFUSED by host host1 (it answers the client: the connection is refused) — the model agrees: no endpoints: no workload serves udp/53",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = sdnctl(t, "127.0.0.1:1", "trace", "--from", "proj1/c", "--to", "service:web", "--port", "tcp/80")
	if r.code != 2 || !strings.Contains(r.stderr, "--to service:NETWORK/NAME") {
		t.Errorf("service:web: exit %d, %q", r.code, r.stderr)
	}
}
