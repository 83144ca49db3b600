package api

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestVerdict asks a real server (raft on disk, two registered hosts,
// workloads attached through the API) for verdicts: ends resolved by name
// and by address (a workload's, a host's gateway, an outside one), the
// multitenant baseline, the own-host exemption, and refusals of what no
// packet can be.
func TestVerdict(t *testing.T) {
	ts := startServer(t)
	mustApply(t, ts, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "infra", Admin: true}, {Name: "proj1"}, {Name: "proj2"}}})
	for i, h := range []string{"host1", "host2"} {
		_, _, stop := runHostAgent(t, ts, h, []string{"198.18.0.1", "198.18.0.2"}[i], filepath.Join(t.TempDir(), h+".pb"))
		t.Cleanup(stop)
		waitRegistered(t, ts, h)
	}
	attach(t, ts, "proj1", "a", "host1")
	attach(t, ts, "proj1", "b", "host2")
	attach(t, ts, "proj2", "c", "host1")
	attach(t, ts, "infra", "mon", "host2")

	ctx := context.Background()
	list, err := sdnv1.NewConfigServiceClient(ts.conn).List(ctx, &sdnv1.ListRequest{Kind: "nodes"})
	if err != nil {
		t.Fatal(err)
	}
	gw := map[string]string{}
	for _, n := range list.Nodes {
		gw[n.Name] = n.GatewayIp
	}
	wl, err := sdnv1.NewConfigServiceClient(ts.conn).List(ctx, &sdnv1.ListRequest{Kind: "workloads"})
	if err != nil {
		t.Fatal(err)
	}
	ip := map[string]string{}
	for _, w := range wl.Workloads {
		ip[w.Network+"/"+w.Name] = w.Ip
	}

	c := sdnv1.NewPolicyServiceClient(ts.conn)
	wk := func(k string) *sdnv1.Endpoint { return &sdnv1.Endpoint{Workload: k} }
	addr := func(a string) *sdnv1.Endpoint { return &sdnv1.Endpoint{Ip: a} }
	for _, tc := range []struct {
		name                 string
		from, to             *sdnv1.Endpoint
		proto                string
		port                 uint32
		allowed              bool
		egressBy, ingressBy  string
		summary, reasonParts string
	}{
		{"same network", wk("proj1/a"), wk("proj1/b"), "tcp", 80, true, "baseline", "baseline",
			"proj1/a (" + ip["proj1/a"] + " on host1) -> proj1/b (" + ip["proj1/b"] + " on host2) tcp/80", "lets its own network"},
		{"other tenant", wk("proj2/c"), wk("proj1/a"), "udp", 53, false, "baseline", "baseline", "", "keeps network proj2 from proj1"},
		{"admin network", wk("infra/mon"), wk("proj1/a"), "icmp", 0, true, "baseline", "baseline", "", "admin network"},
		{"by address", addr(ip["proj2/c"]), addr(ip["proj1/b"]), "tcp", 443, false, "baseline", "baseline", "proj2/c (", ""},
		{"own host", addr(gw["host1"]), wk("proj1/a"), "tcp", 8080, true, "none", "host", "host host1 (" + gw["host1"] + ")", "own host host1"},
		{"other host", addr(gw["host2"]), wk("proj1/a"), "tcp", 8080, true, "none", "baseline", "", "hosts and addresses outside"},
		{"outside", addr("203.0.113.5"), wk("proj2/c"), "tcp", 22, true, "none", "baseline", "203.0.113.5 (not a workload)", ""},
		{"to outside", wk("proj2/c"), addr("203.0.113.5"), "udp", 123, true, "baseline", "none", "", "is not a workload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.Verdict(ctx, &sdnv1.VerdictRequest{From: tc.from, To: tc.to, Protocol: tc.proto, Port: tc.port})
			if err != nil {
				t.Fatal(err)
			}
			if res.Allowed != tc.allowed || res.Egress.By != tc.egressBy || res.Ingress.By != tc.ingressBy {
				t.Errorf("allowed %v, egress by %s, ingress by %s; want %v, %s, %s\n%v", res.Allowed, res.Egress.By, res.Ingress.By, tc.allowed, tc.egressBy, tc.ingressBy, res)
			}
			if res.Revision == 0 || !strings.Contains(res.Summary, tc.summary) {
				t.Errorf("revision %d, summary %q; want it to hold %q", res.Revision, res.Summary, tc.summary)
			}
			if reasons := res.Egress.Reason + " | " + res.Ingress.Reason; !strings.Contains(reasons, tc.reasonParts) {
				t.Errorf("reasons %q do not say %q", reasons, tc.reasonParts)
			}
		})
	}

	for _, tc := range []struct {
		name     string
		req      *sdnv1.VerdictRequest
		code     codes.Code
		contains string
	}{
		{"unknown workload", &sdnv1.VerdictRequest{From: wk("proj1/nope"), To: wk("proj1/a"), Protocol: "tcp", Port: 80}, codes.NotFound, `from: no workload "proj1/nope"`},
		{"not a key", &sdnv1.VerdictRequest{From: wk("a"), To: wk("proj1/a"), Protocol: "tcp", Port: 80}, codes.InvalidArgument, "NETWORK/NAME"},
		{"both", &sdnv1.VerdictRequest{From: &sdnv1.Endpoint{Workload: "proj1/a", Ip: "10.0.0.1"}, To: wk("proj1/b"), Protocol: "tcp", Port: 80}, codes.InvalidArgument, "give one of them"},
		{"empty", &sdnv1.VerdictRequest{From: wk("proj1/a"), Protocol: "tcp", Port: 80}, codes.InvalidArgument, "to is empty"},
		{"bad ip", &sdnv1.VerdictRequest{From: addr("10.0.0.300"), To: wk("proj1/a"), Protocol: "tcp", Port: 80}, codes.InvalidArgument, "not an IPv4 address"},
		{"icmp port", &sdnv1.VerdictRequest{From: wk("proj1/a"), To: wk("proj1/b"), Protocol: "icmp", Port: 8}, codes.InvalidArgument, "icmp has no port"},
		{"no port", &sdnv1.VerdictRequest{From: wk("proj1/a"), To: wk("proj1/b"), Protocol: "tcp"}, codes.InvalidArgument, "1 to 65535"},
		{"big port", &sdnv1.VerdictRequest{From: wk("proj1/a"), To: wk("proj1/b"), Protocol: "udp", Port: 65536}, codes.InvalidArgument, "1 to 65535"},
		{"sctp", &sdnv1.VerdictRequest{From: wk("proj1/a"), To: wk("proj1/b"), Protocol: "sctp", Port: 1}, codes.InvalidArgument, "not tcp, udp or icmp"},
	} {
		_, err := c.Verdict(ctx, tc.req)
		if st, _ := status.FromError(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.contains) {
			t.Errorf("%s: %v; want %v saying %q", tc.name, err, tc.code, tc.contains)
		}
	}
}

// TestVerdictWithPolicies decides from a state with policies (the stored
// policies reach verdict through readPolicies): the deciding policy and
// rule are named, a cluster-wide deny beats a network's allow, and the
// cluster's host_traffic setting makes the own host a peer like any.
func TestVerdictWithPolicies(t *testing.T) {
	allowFromA := &sdnv1.Policy{Name: "allow-a", Network: "proj1", Workloads: &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": "b"}},
		Isolate: []string{"ingress"},
		Ingress: []*sdnv1.PolicyRule{{Name: "from-a", Peers: []*sdnv1.PolicyPeer{{Workloads: &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": "a"}}}}}}}
	denyUDP := &sdnv1.Policy{Name: "no-udp", Priority: 10,
		Egress: []*sdnv1.PolicyRule{{Action: sdnv1.PolicyAction_POLICY_ACTION_DENY, Ports: []*sdnv1.PolicyPort{{Protocol: "udp"}}}}}
	vs := &verdictState{
		revision: 7,
		cluster:  &sdnv1.ClusterSettings{Isolation: sdnv1.IsolationMode_ISOLATION_MODE_FLAT, HostTrafficByPolicy: true},
		networks: []*sdnv1.Network{{Name: "proj1"}},
		workloads: []*sdnv1.Workload{
			{Network: "proj1", Name: "a", Node: "host1", Ip: "10.128.0.2", Labels: map[string]string{"app": "a"}},
			{Network: "proj1", Name: "b", Node: "host1", Ip: "10.128.0.3", Labels: map[string]string{"app": "b"}},
			{Network: "proj1", Name: "x", Node: "host1", Ip: "10.128.0.4", Labels: map[string]string{"app": "x"}},
		},
		nodes:    []*sdnv1.Node{{Name: "host1", GatewayIp: "10.128.0.1"}},
		policies: []*sdnv1.Policy{allowFromA, denyUDP},
	}
	ask := func(from, to *sdnv1.Endpoint, proto string, port uint32) *sdnv1.VerdictResponse {
		t.Helper()
		_, res, err := vs.verdict(&sdnv1.VerdictRequest{From: from, To: to, Protocol: proto, Port: port})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	wk := func(k string) *sdnv1.Endpoint { return &sdnv1.Endpoint{Workload: k} }

	if r := ask(wk("proj1/a"), wk("proj1/b"), "tcp", 80); !r.Allowed || r.Ingress.Policy != "proj1/allow-a" || r.Ingress.Rule != "from-a" || r.Revision != 7 {
		t.Errorf("a -> b tcp/80: %v", r)
	}
	if r := ask(wk("proj1/x"), wk("proj1/b"), "tcp", 80); r.Allowed || r.Ingress.By != "isolation" || r.Ingress.Policy != "proj1/allow-a" {
		t.Errorf("x -> b: %v", r)
	}
	if r := ask(wk("proj1/a"), wk("proj1/b"), "udp", 53); r.Allowed || r.Egress.By != "cluster-policy" || r.Egress.Policy != "no-udp" || r.Egress.Rule != "egress[0]" {
		t.Errorf("a -> b udp/53: %v", r)
	}
	if r := ask(&sdnv1.Endpoint{Ip: "10.128.0.1"}, wk("proj1/b"), "tcp", 80); r.Allowed || r.Ingress.By != "isolation" {
		t.Errorf("own host with host_traffic = policy: %v", r)
	}
	if r := ask(&sdnv1.Endpoint{Ip: "10.128.0.1"}, wk("proj1/x"), "tcp", 80); !r.Allowed || r.Ingress.By != "baseline" {
		t.Errorf("own host to an unselected workload (flat): %v", r)
	}
}

// serviceState is a state with service proj1/web (tcp/80 to 8080 on
// endpoints w1 and w2, w2 isolated by a policy that admits app=a only),
// proj1/empty (no endpoints), and clients a (app=a), x and proj2/o.
func serviceState() *verdictState {
	onlyA := &sdnv1.Policy{Name: "only-a", Network: "proj1", Workloads: &sdnv1.LabelSelector{MatchLabels: map[string]string{"role": "w2"}},
		Isolate: []string{"ingress"},
		Ingress: []*sdnv1.PolicyRule{{Name: "from-a", Peers: []*sdnv1.PolicyPeer{{Workloads: &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": "a"}}}}}}}
	noEgress := &sdnv1.Policy{Name: "quiet", Network: "proj1", Workloads: &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": "quiet"}}, Isolate: []string{"egress"}}
	port := []*sdnv1.ServicePort{{Name: "http", Protocol: "tcp", Port: 80, TargetPort: 8080}}
	return &verdictState{
		revision: 9,
		cluster:  &sdnv1.ClusterSettings{Isolation: sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT, ServiceCidr: "172.30.0.0/16"},
		networks: []*sdnv1.Network{{Name: "proj1"}, {Name: "proj2"}},
		workloads: []*sdnv1.Workload{
			{Network: "proj1", Name: "a", Node: "host1", Ip: "10.128.0.2", Labels: map[string]string{"app": "a"}},
			{Network: "proj1", Name: "x", Node: "host1", Ip: "10.128.0.3"},
			{Network: "proj1", Name: "q", Node: "host1", Ip: "10.128.0.4", Labels: map[string]string{"app": "quiet"}},
			{Network: "proj1", Name: "w1", Node: "host2", Ip: "10.128.2.2", Labels: map[string]string{"app": "web"}},
			{Network: "proj1", Name: "w2", Node: "host3", Ip: "10.128.4.2", Labels: map[string]string{"app": "web", "role": "w2"}},
			{Network: "proj2", Name: "o", Node: "host1", Ip: "10.128.0.9"},
		},
		nodes:    []*sdnv1.Node{{Name: "host1", GatewayIp: "10.128.0.1"}},
		policies: []*sdnv1.Policy{onlyA, noEgress},
		services: []*sdnv1.Service{
			{Network: "proj1", Name: "web", Vip: "172.30.0.10", Ports: port},
			{Network: "proj1", Name: "empty", Vip: "172.30.0.11", Ports: port},
		},
		endpoints: map[string]*sdnv1.ServiceEndpoints{"proj1/web": {Service: "proj1/web", Endpoints: []*sdnv1.ServiceEndpoint{
			{Workload: "proj1/w1", Ip: "10.128.2.2", Node: "host2", Ports: []uint32{8080}},
			{Workload: "proj1/w2", Ip: "10.128.4.2", Node: "host3", Ports: []uint32{8080}},
		}}},
	}
}

// A verdict to a service is each endpoint's, on the port it serves: all,
// some or none of them allow it; no endpoint, or a port the service does
// not have, and the host refuses it (unless the client's egress denies
// it first). The service is named by key or by its VIP.
func TestVerdictToService(t *testing.T) {
	vs := serviceState()
	wk := func(k string) *sdnv1.Endpoint { return &sdnv1.Endpoint{Workload: k} }
	svc := func(k string) *sdnv1.Endpoint { return &sdnv1.Endpoint{Service: k} }
	ip := func(a string) *sdnv1.Endpoint { return &sdnv1.Endpoint{Ip: a} }
	for _, tc := range []struct {
		name      string
		from, to  *sdnv1.Endpoint
		proto     string
		port      uint32
		outcome   string
		allowed   bool
		endpoints string // "workload:port=allowed ..."
		says      string
	}{
		{"all", wk("proj1/a"), svc("proj1/web"), "tcp", 80, "all", true, "proj1/w1:8080=true proj1/w2:8080=true", "every endpoint serving tcp/80 allows it (2 of 2)"},
		{"by VIP", wk("proj1/a"), ip("172.30.0.10"), "tcp", 80, "all", true, "proj1/w1:8080=true proj1/w2:8080=true", "2 of 2"},
		{"some", wk("proj1/x"), svc("proj1/web"), "tcp", 80, "some", false, "proj1/w1:8080=true proj1/w2:8080=false", "1 of 2 endpoints serving tcp/80 allow it: a connection fails when the host picks proj1/w2"},
		{"none", wk("proj2/o"), svc("proj1/web"), "tcp", 80, "none", false, "proj1/w1:8080=false proj1/w2:8080=false", "no endpoint serving tcp/80 allows it (0 of 2)"},
		{"no endpoints", wk("proj1/a"), svc("proj1/empty"), "tcp", 80, "refused", false, "", "no endpoints: no workload serves tcp/80 of service proj1/empty, so host host1 refuses the connection (a TCP reset)"},
		{"no such port", wk("proj1/a"), ip("172.30.0.10"), "udp", 80, "refused", false, "", "service proj1/web has no port udp/80 (it has tcp/80): host host1 refuses the connection (ICMP port unreachable)"},
		{"icmp", wk("proj1/a"), svc("proj1/web"), "icmp", 0, "refused", false, "", "has no port icmp"},
		{"no service at the address", wk("proj1/a"), ip("172.30.9.9"), "tcp", 80, "refused", false, "", "no service has address 172.30.9.9"},
		{"egress first", wk("proj1/q"), svc("proj1/empty"), "tcp", 80, "none", false, "", "the client's egress denies the packet to the VIP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, res, err := vs.verdict(&sdnv1.VerdictRequest{From: tc.from, To: tc.to, Protocol: tc.proto, Port: tc.port})
			if err != nil {
				t.Fatal(err)
			}
			sv := res.Service
			var eps []string
			for _, ev := range sv.GetEndpoints() {
				eps = append(eps, fmt.Sprintf("%s:%d=%v", ev.Workload, ev.Port, ev.Verdict.Allowed))
			}
			if sv == nil || sv.Outcome != tc.outcome || res.Allowed != tc.allowed || strings.Join(eps, " ") != tc.endpoints || !strings.Contains(sv.Reason, tc.says) || res.Revision != 9 {
				t.Fatalf("outcome %q allowed %v endpoints %q reason %q; want %q %v %q saying %q\n%v", sv.GetOutcome(), res.Allowed, strings.Join(eps, " "), sv.GetReason(), tc.outcome, tc.allowed, tc.endpoints, tc.says, res)
			}
		})
	}

	// The endpoint's verdict is the translated packet's: its address and
	// target port, decided by its policies, by name.
	_, res, _ := vs.verdict(&sdnv1.VerdictRequest{From: wk("proj1/x"), To: svc("proj1/web"), Protocol: "tcp", Port: 80})
	w2 := res.Service.Endpoints[1].Verdict
	if w2.Ingress.By != "isolation" || w2.Ingress.Policy != "proj1/only-a" || !strings.Contains(w2.Summary, "proj1/w2 (10.128.4.2 on host3) tcp/8080") {
		t.Errorf("w2's verdict: %v", w2)
	}
	if !strings.Contains(res.Summary, "proj1/x (10.128.0.3 on host1) -> service proj1/web (172.30.0.10) tcp/80") || res.Service.PortName != "http" || !res.Service.HasPort {
		t.Errorf("summary %q, port %q", res.Summary, res.Service.PortName)
	}

	for _, tc := range []struct {
		req      *sdnv1.VerdictRequest
		code     codes.Code
		contains string
	}{
		{&sdnv1.VerdictRequest{From: wk("proj1/a"), To: svc("proj1/nope"), Protocol: "tcp", Port: 80}, codes.NotFound, `no service "proj1/nope"`},
		{&sdnv1.VerdictRequest{From: wk("proj1/a"), To: svc("web"), Protocol: "tcp", Port: 80}, codes.InvalidArgument, "is not NETWORK/NAME"},
		{&sdnv1.VerdictRequest{From: svc("proj1/web"), To: wk("proj1/a"), Protocol: "tcp", Port: 80}, codes.InvalidArgument, "a service is a destination only"},
		{&sdnv1.VerdictRequest{From: wk("proj1/a"), To: &sdnv1.Endpoint{Service: "proj1/web", Ip: "172.30.0.10"}, Protocol: "tcp", Port: 80}, codes.InvalidArgument, "give one of them"},
	} {
		_, _, err := vs.verdict(tc.req)
		if st, _ := status.FromError(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.contains) {
			t.Errorf("%v: %v; want %v saying %q", tc.req, err, tc.code, tc.contains)
		}
	}
}
