package api

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// fakeHost is a host's datapath service on loopback that answers traces
// with what the test sets (the real one runs ofproto/trace, node/dpsvc).
type fakeHost struct {
	sdnv1.UnimplementedDatapathServiceServer
	mu       sync.Mutex
	trace    *sdnv1.HostTrace
	counters []*sdnv1.HostRuleCounters
	got      []*sdnv1.DatapathTraceRequest
	addr     string
}

func (f *fakeHost) Trace(_ context.Context, req *sdnv1.DatapathTraceRequest) (*sdnv1.HostTrace, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, req)
	return f.trace, nil
}

func (f *fakeHost) RuleCounters(context.Context, *sdnv1.RuleCountersRequest) (*sdnv1.RuleCountersResponse, error) {
	return &sdnv1.RuleCountersResponse{Policies: f.counters}, nil
}

func (f *fakeHost) set(ht *sdnv1.HostTrace) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trace, f.got = ht, nil
}

func startFakeHost(t *testing.T) *fakeHost {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeHost{addr: lis.Addr().String()}
	g := grpc.NewServer()
	sdnv1.RegisterDatapathServiceServer(g, f)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return f
}

// traceLab is a real server with two hosts whose datapath services are
// fakes, networks proj1 and proj2 (multitenant isolation), proj1/client1
// on host1, proj1/server1 on host2 and proj2/other on host1.
func traceLab(t *testing.T) (*testServer, *fakeHost, *fakeHost) {
	ts := startServer(t)
	ctx := context.Background()
	h1, h2 := startFakeHost(t), startFakeHost(t)
	nodes := sdnv1.NewNodeServiceClient(ts.conn)
	for i, h := range []struct {
		name string
		f    *fakeHost
	}{{"host1", h1}, {"host2", h2}} {
		if _, err := nodes.Register(ctx, &sdnv1.RegisterNodeRequest{Name: h.name, UnderlayIp: "198.18.0." + string(rune('1'+i)), UnderlayMtu: 1500, DatapathAddress: h.f.addr}); err != nil {
			t.Fatal(err)
		}
	}
	mustApply(t, ts, &sdnv1.ApplyRequest{
		Networks: []*sdnv1.Network{{Name: "proj1"}, {Name: "proj2"}},
		Workloads: []*sdnv1.Workload{
			{Name: "client1", Network: "proj1", Node: "host1"},
			{Name: "server1", Network: "proj1", Node: "host2"},
			{Name: "other", Network: "proj2", Node: "host1"},
		},
	})
	return ts, h1, h2
}

func step(stage, text string) *sdnv1.TraceStep { return &sdnv1.TraceStep{Stage: stage, Text: text} }

func TestTraceAcrossTwoHosts(t *testing.T) {
	ts, h1, h2 := traceLab(t)
	ctx := context.Background()
	pol := sdnv1.NewPolicyServiceClient(ts.conn)
	req := &sdnv1.VerdictRequest{From: &sdnv1.Endpoint{Workload: "proj1/client1"}, To: &sdnv1.Endpoint{Workload: "proj1/server1"}, Protocol: "tcp", Port: 80}
	forwarded := &sdnv1.HostTrace{Outcome: "forwarded", Steps: []*sdnv1.TraceStep{step("classify", "from proj1/client1"), step("forward", "to host2 over the tunnel")}}

	// Allowed, and the model agrees (same network, no policy).
	h1.set(forwarded)
	h2.set(&sdnv1.HostTrace{Outcome: "allowed", Steps: []*sdnv1.TraceStep{step("output", "to proj1/server1")}})
	resp, err := pol.Trace(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Allowed || !resp.Model.Allowed || resp.Disagreement != "" || len(resp.Hosts) != 2 || resp.Hosts[0].Node != "host1" || resp.Hosts[1].Node != "host2" {
		t.Fatalf("allowed path: %v", resp)
	}
	src, dst := h1.got[0], h2.got[0]
	if src.InWorkload != "proj1/client1" || src.TunnelVnid != 0 || src.Port != 80 || src.Protocol != "tcp" ||
		dst.InWorkload != "" || dst.TunnelVnid == 0 || dst.SrcIp != src.SrcIp || dst.DstIp != src.DstIp || dst.Port != 80 {
		t.Fatalf("asked host1 %v, host2 %v", src, dst)
	}

	// Dropped at the destination while the model allows: a disagreement,
	// in words.
	h1.set(forwarded)
	h2.set(&sdnv1.HostTrace{Outcome: "denied", Steps: []*sdnv1.TraceStep{step("ingress-policy", "dropped")}})
	resp, err = pol.Trace(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Allowed || !strings.Contains(resp.Disagreement, "the model allows this") || !strings.Contains(resp.Disagreement, "host2's datapath dropped it in ingress-policy") {
		t.Fatalf("denied at destination: allowed %v, disagreement %q", resp.Allowed, resp.Disagreement)
	}

	// Across networks the model denies (multitenant baseline); the
	// datapath dropping it too at ingress agrees, delivering it does not.
	cross := &sdnv1.VerdictRequest{From: &sdnv1.Endpoint{Workload: "proj2/other"}, To: &sdnv1.Endpoint{Workload: "proj1/server1"}, Protocol: "udp", Port: 53}
	h1.set(forwarded)
	h2.set(&sdnv1.HostTrace{Outcome: "denied", Steps: []*sdnv1.TraceStep{step("ingress", "dropped: network proj2 may not reach proj1")}})
	resp, err = pol.Trace(ctx, cross)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Allowed || resp.Model.Allowed || resp.Disagreement != "" || h2.got[0].TunnelVnid == 0 {
		t.Fatalf("denied by both: %v", resp)
	}
	h2.set(&sdnv1.HostTrace{Outcome: "allowed", Steps: []*sdnv1.TraceStep{step("output", "to proj1/server1")}})
	resp, err = pol.Trace(ctx, cross)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Allowed || !strings.Contains(resp.Disagreement, "the model denies this") || !strings.Contains(resp.Disagreement, "host2 delivered it") {
		t.Fatalf("datapath lets through what the model denies: allowed %v, disagreement %q", resp.Allowed, resp.Disagreement)
	}

	// Same host: only the source is asked.
	h1.set(&sdnv1.HostTrace{Outcome: "allowed"})
	h2.set(nil)
	resp, err = pol.Trace(ctx, &sdnv1.VerdictRequest{From: &sdnv1.Endpoint{Workload: "proj2/other"}, To: &sdnv1.Endpoint{Workload: "proj1/client1"}, Protocol: "icmp"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Hosts) != 1 || len(h2.got) != 0 || !resp.Allowed || resp.Disagreement == "" {
		t.Fatalf("same host, across networks: %v", resp)
	}
}

// A host that cannot be asked: its trace says so, and the outcome is
// unknown (not allowed, no disagreement claimed).
func TestTraceUnreachableHostIsUnknown(t *testing.T) {
	ts, h1, _ := traceLab(t)
	ctx := context.Background()
	// host2 moves to an address where nothing listens.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	lis.Close()
	if _, err := sdnv1.NewNodeServiceClient(ts.conn).Register(ctx, &sdnv1.RegisterNodeRequest{Name: "host2", UnderlayIp: "198.18.0.2", UnderlayMtu: 1500, DatapathAddress: dead}); err != nil {
		t.Fatal(err)
	}
	h1.set(&sdnv1.HostTrace{Outcome: "forwarded", Steps: []*sdnv1.TraceStep{step("forward", "to host2 over the tunnel")}})
	resp, err := sdnv1.NewPolicyServiceClient(ts.conn).Trace(ctx, &sdnv1.VerdictRequest{From: &sdnv1.Endpoint{Workload: "proj1/client1"}, To: &sdnv1.Endpoint{Workload: "proj1/server1"}, Protocol: "tcp", Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Hosts) != 2 || resp.Hosts[1].Outcome != "unknown" || !strings.Contains(resp.Hosts[1].Error, "could not ask host host2's datapath") ||
		!strings.Contains(resp.Hosts[1].Error, "outcome is unknown") || resp.Allowed || resp.Disagreement != "" || !resp.Model.Allowed {
		t.Fatalf("unreachable host2: %v", resp)
	}
}

// Counters are summed over the hosts that run a selected workload, in the
// policy's rule order; a host that cannot be asked is named.
func TestPolicyCountersSumAndErrors(t *testing.T) {
	ts, h1, h2 := traceLab(t)
	web := &sdnv1.Policy{Name: "web", Network: "proj1", Ingress: []*sdnv1.PolicyRule{{Name: "clients"}, {}}, Isolate: []string{"ingress"}}
	other := &sdnv1.Policy{Name: "only-other", Network: "proj2"}
	h1.counters = []*sdnv1.HostRuleCounters{{Policy: "proj1/web", Counters: []*sdnv1.RuleCounters{
		{Direction: "ingress", Rule: "isolation", Action: "deny", Packets: 1},
		{Direction: "ingress", Rule: "clients", Action: "allow", Packets: 10, Connections: 2},
	}}, {Policy: "proj2/only-other", Counters: []*sdnv1.RuleCounters{{Direction: "ingress", Rule: "isolation", Packets: 4}}}}
	h2.counters = []*sdnv1.HostRuleCounters{{Policy: "proj1/web", Counters: []*sdnv1.RuleCounters{
		{Direction: "ingress", Rule: "clients", Action: "allow", Packets: 5, Connections: 1},
		{Direction: "ingress", Rule: "ingress[1]", Action: "allow", Packets: 3},
	}}, {Policy: "proj2/only-other", Counters: []*sdnv1.RuleCounters{{Direction: "ingress", Rule: "isolation", Packets: 100}}}}
	resp := &sdnv1.ListPoliciesResponse{Policies: []*sdnv1.Policy{web, other}}
	ts.api.policyCounters(context.Background(), resp)
	got := web.Status.Counters
	if len(got) != 3 || got[0].Rule != "clients" || got[0].Packets != 15 || got[0].Connections != 3 ||
		got[1].Rule != "ingress[1]" || got[1].Packets != 3 || got[2].Rule != "isolation" || got[2].Packets != 1 || len(web.Status.CounterErrors) != 0 {
		t.Fatalf("proj1/web counters %v errors %v", got, web.Status.CounterErrors)
	}
	// proj2/only-other selects proj2/other, on host1 only: host2's
	// counts of it are not its (host2 runs none of its workloads).
	if c := other.Status.Counters; len(c) != 1 || c[0].Packets != 4 {
		t.Fatalf("proj2/only-other counters %v", c)
	}

	if _, err := sdnv1.NewNodeServiceClient(ts.conn).Register(context.Background(), &sdnv1.RegisterNodeRequest{Name: "host2", UnderlayIp: "198.18.0.2", UnderlayMtu: 1500}); err != nil {
		t.Fatal(err)
	}
	web.Status = nil
	ts.api.policyCounters(context.Background(), &sdnv1.ListPoliciesResponse{Policies: []*sdnv1.Policy{web}})
	if e := web.Status.CounterErrors; len(e) != 1 || !strings.Contains(e[0], "host host2 registered no datapath service address") || web.Status.Counters[0].Packets != 10 {
		t.Fatalf("host2 without a datapath service: counters %v errors %v", web.Status.Counters, e)
	}
}

// A trace to a service continues at the endpoint the source host chose:
// the response names the service and the endpoint, the second host is
// asked for the translated packet (the endpoint's address and port), and
// the model is that endpoint's verdict. With no endpoint the host's
// refusal agrees with the model; an endpoint the model does not know,
// or none chosen while the model has some, is a disagreement.
func TestTraceThroughService(t *testing.T) {
	ts, h1, h2 := traceLab(t)
	ctx := context.Background()
	mustApply(t, ts, &sdnv1.ApplyRequest{Services: []*sdnv1.Service{
		{Name: "web", Network: "proj1", Selector: &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": "server"}},
			Ports: []*sdnv1.ServicePort{{Protocol: "tcp", Port: 80, TargetPort: 8080}}},
		{Name: "empty", Network: "proj1", Selector: &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": "none"}},
			Ports: []*sdnv1.ServicePort{{Protocol: "udp", Port: 53}}},
	}})
	if _, err := sdnv1.NewPolicyServiceClient(ts.conn).LabelWorkload(ctx, &sdnv1.LabelWorkloadRequest{Network: "proj1", Name: "server1", Set: map[string]string{"app": "server"}}); err != nil {
		t.Fatal(err)
	}
	list, err := sdnv1.NewConfigServiceClient(ts.conn).List(ctx, &sdnv1.ListRequest{Kind: "services"})
	if err != nil {
		t.Fatal(err)
	}
	vip := map[string]string{}
	for _, s := range list.Services {
		vip[s.Name] = s.Vip
	}
	wl, err := sdnv1.NewConfigServiceClient(ts.conn).List(ctx, &sdnv1.ListRequest{Kind: "workloads"})
	if err != nil {
		t.Fatal(err)
	}
	var serverIP string
	for _, w := range wl.Workloads {
		if w.Name == "server1" {
			serverIP = w.Ip
		}
	}
	pol := sdnv1.NewPolicyServiceClient(ts.conn)
	trace := func(to *sdnv1.Endpoint, proto string, port uint32) *sdnv1.TraceResponse {
		t.Helper()
		resp, err := pol.Trace(ctx, &sdnv1.VerdictRequest{From: &sdnv1.Endpoint{Workload: "proj1/client1"}, To: to, Protocol: proto, Port: port})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	// The hash chose server1: host2 is asked for 8080 at server1's address.
	h1.set(&sdnv1.HostTrace{Outcome: "forwarded", Service: "proj1/web", EndpointIp: serverIP, EndpointPort: 8080,
		Steps: []*sdnv1.TraceStep{step("services", "new connection to service proj1/web"), step("forward", "to host2 over the tunnel")}})
	h2.set(&sdnv1.HostTrace{Outcome: "allowed", Steps: []*sdnv1.TraceStep{step("output", "to proj1/server1")}})
	resp := trace(&sdnv1.Endpoint{Service: "proj1/web"}, "tcp", 80)
	if resp.Service != "proj1/web" || resp.Endpoint != "proj1/server1" || resp.EndpointIp != serverIP || resp.EndpointPort != 8080 ||
		!resp.Allowed || resp.Disagreement != "" || len(resp.Hosts) != 2 || resp.Model.GetService().GetOutcome() != "all" || !strings.Contains(resp.Model.Summary, "tcp/8080") {
		t.Fatalf("through the service: %v", resp)
	}
	if src, dst := h1.got[0], h2.got[0]; src.DstIp != vip["web"] || src.Port != 80 || dst.DstIp != serverIP || dst.Port != 8080 || dst.TunnelVnid == 0 || dst.SrcIp != src.SrcIp {
		t.Fatalf("asked host1 %v, host2 %v", src, dst)
	}
	// By VIP, the same; a drop at the endpoint the model allows is a
	// disagreement as for a direct packet.
	h1.set(h1.trace)
	h2.set(&sdnv1.HostTrace{Outcome: "denied", Steps: []*sdnv1.TraceStep{step("ingress-policy", "dropped")}})
	if resp := trace(&sdnv1.Endpoint{Ip: vip["web"]}, "tcp", 80); resp.Endpoint != "proj1/server1" || resp.Allowed || !strings.Contains(resp.Disagreement, "host2's datapath dropped it in ingress-policy") {
		t.Fatalf("dropped at the endpoint: %v", resp)
	}

	// An address that is no endpoint of the service.
	h1.set(&sdnv1.HostTrace{Outcome: "forwarded", Service: "proj1/web", EndpointIp: "10.9.9.9", EndpointPort: 8080})
	h2.set(nil)
	if resp := trace(&sdnv1.Endpoint{Service: "proj1/web"}, "tcp", 80); resp.Endpoint != "" || len(h2.got) != 0 || !strings.Contains(resp.Disagreement, "chose endpoint 10.9.9.9:8080, which is no endpoint of proj1/web") {
		t.Fatalf("unknown endpoint: %v", resp)
	}
	// None chosen while the model has one.
	h1.set(&sdnv1.HostTrace{Outcome: "refused", Service: "proj1/web"})
	if resp := trace(&sdnv1.Endpoint{Service: "proj1/web"}, "tcp", 80); !strings.Contains(resp.Disagreement, "the model has 1 endpoint(s) of proj1/web serving this port, but host1's datapath chose none: it sent it into the host, which refuses it") {
		t.Fatalf("none chosen: %v", resp)
	}

	// No endpoints: the host refuses, as the model says; delivered would
	// be a disagreement.
	h1.set(&sdnv1.HostTrace{Outcome: "refused", Service: "proj1/empty", Steps: []*sdnv1.TraceStep{step("host", "the host refuses the connection")}})
	resp = trace(&sdnv1.Endpoint{Service: "proj1/empty"}, "udp", 53)
	if resp.Allowed || resp.Disagreement != "" || resp.Service != "proj1/empty" || resp.Endpoint != "" || resp.Model.GetService().GetOutcome() != "refused" || len(resp.Hosts) != 1 {
		t.Fatalf("no endpoints: %v", resp)
	}
	h1.set(&sdnv1.HostTrace{Outcome: "allowed", Service: "proj1/empty"})
	if resp := trace(&sdnv1.Endpoint{Service: "proj1/empty"}, "udp", 53); !strings.Contains(resp.Disagreement, "the model says the host refuses it") || !strings.Contains(resp.Disagreement, "host1's datapath delivered it") {
		t.Fatalf("no endpoints, delivered: %v", resp)
	}
}
