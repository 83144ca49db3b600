package main

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// fakePolicy is a test double of sdnd's PolicyService for the verdict
// rendering tests (as fakeSDND in fake_test.go): a canned answer, recorded
// requests.
type fakePolicy struct {
	sdnv1.UnimplementedPolicyServiceServer
	resp *sdnv1.VerdictResponse
	err  error

	mu   sync.Mutex
	reqs []*sdnv1.VerdictRequest
}

func (f *fakePolicy) Verdict(_ context.Context, req *sdnv1.VerdictRequest) (*sdnv1.VerdictResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	return f.resp, f.err
}

func servePolicy(t *testing.T, f *fakePolicy) string {
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

var deniedByIsolation = &sdnv1.VerdictResponse{
	Revision: 12,
	Summary:  "proj1/client2 (10.128.0.5 on host1) -> proj1/server1 (10.128.2.7 on host2) tcp/80",
	Egress:   &sdnv1.Decision{Direction: "egress", Allowed: true, By: "baseline", Reason: "no policy decides egress from proj1/client2"},
	Ingress: &sdnv1.Decision{Direction: "ingress", By: "isolation", Policy: "proj1/allow-client1",
		Reason: `proj1/server1 is isolated for ingress by policy proj1/allow-client1 and no rule allows tcp/80 from proj1/client2`},
}

func TestVerdictRendering(t *testing.T) {
	f := &fakePolicy{resp: deniedByIsolation}
	addr := servePolicy(t, f)
	r := sdnctl(t, addr, "verdict", "--from", "proj1/client2", "--to", "proj1/server1", "--port", "tcp/80")
	want := "DENIED  proj1/client2 (10.128.0.5 on host1) -> proj1/server1 (10.128.2.7 on host2) tcp/80\n" +
		"  egress  at proj1/client2: allowed (baseline): no policy decides egress from proj1/client2\n" +
		"  ingress at proj1/server1: denied by policy proj1/allow-client1 (isolation): proj1/server1 is isolated for ingress by policy proj1/allow-client1 and no rule allows tcp/80 from proj1/client2\n"
	if r.code != 0 || r.stdout != want || r.stderr != "" {
		t.Errorf("code %d\nstdout:\n%s\nwant:\n%s\nstderr: %s", r.code, r.stdout, want, r.stderr)
	}
	if got := f.reqs[0]; got.From.GetWorkload() != "proj1/client2" || got.To.GetWorkload() != "proj1/server1" || got.Protocol != "tcp" || got.Port != 80 {
		t.Errorf("request %v", got)
	}

	// Allowed by rules, with a pass; ends by address; udp.
	f.resp = &sdnv1.VerdictResponse{Allowed: true, Summary: "10.0.0.9 (not a workload) -> proj2/dns (10.128.4.2 on host2) udp/53",
		Egress: &sdnv1.Decision{Allowed: true, By: "none", Reason: "10.0.0.9 is not a workload: no egress policy applies"},
		Ingress: &sdnv1.Decision{Allowed: true, By: "policy", Policy: "proj2/dns-in", Rule: "any", Passed: []string{"tenants rule ingress[0]"},
			Reason: "ingress rule any of policy proj2/dns-in allows udp/53 from 10.0.0.9"}}
	r = sdnctl(t, addr, "verdict", "--from", "10.0.0.9", "--to", "proj2/dns", "--port", "udp/53")
	for _, line := range []string{
		"ALLOWED 10.0.0.9 (not a workload) -> proj2/dns (10.128.4.2 on host2) udp/53\n",
		"  egress  at 10.0.0.9: allowed (not a workload): 10.0.0.9 is not a workload",
		"  ingress at proj2/dns: allowed by policy proj2/dns-in rule any [passed down by cluster-wide tenants rule ingress[0]]: ingress rule any",
	} {
		if !strings.Contains(r.stdout, line) || r.code != 0 {
			t.Errorf("code %d, output lacks %q:\n%s", r.code, line, r.stdout)
		}
	}
	if got := f.reqs[1]; got.From.GetIp() != "10.0.0.9" || got.Protocol != "udp" || got.Port != 53 {
		t.Errorf("request %v", got)
	}

	// JSON: the response as it came, exit 0 although denied.
	f.resp = deniedByIsolation
	r = sdnctl(t, addr, "verdict", "--from", "proj1/client2", "--to", "proj1/server1", "--port", "icmp", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"by": "isolation"`) || !strings.Contains(r.stdout, `"policy": "proj1/allow-client1"`) {
		t.Errorf("json: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := f.reqs[2]; got.Protocol != "icmp" || got.Port != 0 {
		t.Errorf("icmp request %v", got)
	}

	// A server's refusal is an error, exit non-zero, its message shown.
	f.err = status.Error(codes.NotFound, `from: no workload "proj1/nope"; `+"`sdnctl get workloads --network proj1` lists that network's workloads")
	r = sdnctl(t, addr, "verdict", "--from", "proj1/nope", "--to", "proj1/server1", "--port", "tcp/80")
	if r.code == 0 || !strings.Contains(r.stderr, `no workload "proj1/nope"`) {
		t.Errorf("not found: code %d stderr %q", r.code, r.stderr)
	}
}

// Mistakes on the command line are usage errors (exit 2), sent nowhere.
func TestVerdictUsage(t *testing.T) {
	f := &fakePolicy{resp: deniedByIsolation}
	addr := servePolicy(t, f)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--to", "p/a", "--port", "tcp/80"}, "--from is required"},
		{[]string{"--from", "p/a", "--port", "tcp/80"}, "--to is required"},
		{[]string{"--from", "p/a", "--to", "web", "--port", "tcp/80"}, `--to "web" is neither a workload`},
		{[]string{"--from", "p/a", "--to", "p/b"}, `--port "": write tcp/PORT`},
		{[]string{"--from", "p/a", "--to", "p/b", "--port", "tcp/0"}, `--port "tcp/0"`},
		{[]string{"--from", "p/a", "--to", "p/b", "--port", "tcp/65536"}, `--port "tcp/65536"`},
		{[]string{"--from", "p/a", "--to", "p/b", "--port", "sctp/80"}, `--port "sctp/80"`},
		{[]string{"--from", "p/a", "--to", "p/b", "--port", "80"}, `--port "80"`},
		{[]string{"--from", "p/a", "--to", "p/b", "--port", "icmp", "-o", "yaml"}, "yaml"},
	} {
		r := sdnctl(t, addr, append([]string{"verdict"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: code %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if len(f.reqs) != 0 {
		t.Errorf("usage errors sent %d requests", len(f.reqs))
	}
}

// A verdict to a service: the whole first (PARTIAL when some endpoints
// allow it), then each endpoint's directions; REFUSED with the reason
// and the client's egress when no endpoint serves the port.
func TestVerdictServiceRendering(t *testing.T) {
	allow := &sdnv1.Decision{Direction: "egress", Allowed: true, By: "baseline", Reason: "no policy decides egress from proj1/a"}
	in := func(ok bool) *sdnv1.Decision {
		return &sdnv1.Decision{Direction: "ingress", Allowed: ok, By: "baseline", Reason: "the baseline"}
	}
	f := &fakePolicy{resp: &sdnv1.VerdictResponse{Summary: "proj1/a (10.128.0.2 on host1) -> service proj1/web (172.30.0.10) tcp/80",
		Service: &sdnv1.ServiceVerdict{Service: "proj1/web", Vip: "172.30.0.10", Outcome: "some", HasPort: true,
			Reason: "1 of 2 endpoints serving tcp/80 allow it: a connection fails when the host picks proj1/w2",
			Endpoints: []*sdnv1.EndpointVerdict{
				{Workload: "proj1/w1", Ip: "10.128.2.2", Node: "host2", Port: 8080, Verdict: &sdnv1.VerdictResponse{Allowed: true, Egress: allow, Ingress: in(true)}},
				{Workload: "proj1/w2", Ip: "10.128.4.2", Node: "host3", Port: 8080, Verdict: &sdnv1.VerdictResponse{Egress: allow, Ingress: in(false)}},
			}}}}
	addr := servePolicy(t, f)
	r := sdnctl(t, addr, "verdict", "--from", "proj1/a", "--to", "service:proj1/web", "--port", "tcp/80")
	want := "PARTIAL proj1/a (10.128.0.2 on host1) -> service proj1/web (172.30.0.10) tcp/80\n" +
		"  service proj1/web: 1 of 2 endpoints serving tcp/80 allow it: a connection fails when the host picks proj1/w2\n" +
		"  endpoint proj1/w1 (10.128.2.2:8080 on host2): ALLOWED\n" +
		"    egress  at proj1/a: allowed (baseline): no policy decides egress from proj1/a\n" +
		"    ingress at proj1/w1: allowed (baseline): the baseline\n" +
		"  endpoint proj1/w2 (10.128.4.2:8080 on host3): DENIED\n" +
		"    egress  at proj1/a: allowed (baseline): no policy decides egress from proj1/a\n" +
		"    ingress at proj1/w2: denied (baseline): the baseline\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("code %d\nstdout:\n%s\nwant:\n%s\nstderr: %s", r.code, r.stdout, want, r.stderr)
	}
	if q := f.reqs[0]; q.To.GetService() != "proj1/web" || q.To.Workload != "" {
		t.Errorf("request %v", q)
	}

	f.resp = &sdnv1.VerdictResponse{Summary: "proj1/a (10.128.0.2 on host1) -> service proj1/empty (172.30.0.11) udp/53", Egress: allow,
		Service: &sdnv1.ServiceVerdict{Service: "proj1/empty", Outcome: "refused", HasPort: true,
			Reason: "no endpoints: no workload serves udp/53 of service proj1/empty, so host host1 refuses the connection (ICMP port unreachable)"}}
	r = sdnctl(t, addr, "verdict", "--from", "proj1/a", "--to", "service:proj1/empty", "--port", "udp/53")
	want = "REFUSED proj1/a (10.128.0.2 on host1) -> service proj1/empty (172.30.0.11) udp/53\n" +
		"  no endpoints: no workload serves udp/53 of service proj1/empty, so host host1 refuses the connection (ICMP port unreachable)\n" +
		"  egress  at proj1/a: allowed (baseline): no policy decides egress from proj1/a\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("refused: code %d\nstdout:\n%s\nwant:\n%s", r.code, r.stdout, want)
	}
	for _, bad := range [][]string{{"--from", "service:proj1/web", "--to", "proj1/a"}, {"--from", "proj1/a", "--to", "service:web"}} {
		r := sdnctl(t, addr, append(append([]string{"verdict"}, bad...), "--port", "tcp/80")...)
		if r.code != 2 || !strings.Contains(r.stderr, "a service is a destination only, written --to service:NETWORK/NAME") {
			t.Errorf("%v: exit %d, %q", bad, r.code, r.stderr)
		}
	}
}
