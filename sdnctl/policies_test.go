package main

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// fakePolicies is the PolicyService of the sdnd test double (fake_test.go):
// canned answers, recorded requests.
type fakePolicies struct {
	sdnv1.UnimplementedPolicyServiceServer
	list     *sdnv1.ListPoliciesResponse
	label    *sdnv1.LabelWorkloadResponse
	labelErr error

	mu        sync.Mutex
	listReqs  []*sdnv1.ListPoliciesRequest
	labelReqs []*sdnv1.LabelWorkloadRequest
}

func (p *fakePolicies) ListPolicies(_ context.Context, req *sdnv1.ListPoliciesRequest) (*sdnv1.ListPoliciesResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.listReqs = append(p.listReqs, req)
	return p.list, nil
}

func (p *fakePolicies) LabelWorkload(_ context.Context, req *sdnv1.LabelWorkloadRequest) (*sdnv1.LabelWorkloadResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.labelReqs = append(p.labelReqs, req)
	return p.label, p.labelErr
}

// serveWithPolicies serves the double f with p as its PolicyService.
func serveWithPolicies(t *testing.T, f *fakeSDND, p *fakePolicies) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	sdnv1.RegisterConfigServiceServer(s, f)
	sdnv1.RegisterStatusServiceServer(s, f)
	sdnv1.RegisterClusterServiceServer(s, f)
	sdnv1.RegisterNodeServiceServer(s, f)
	sdnv1.RegisterPolicyServiceServer(s, p)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func TestRenderGetPolicies(t *testing.T) {
	p := &fakePolicies{list: &sdnv1.ListPoliciesResponse{Revision: 9, Policies: []*sdnv1.Policy{
		{Name: "web", Network: "proj1", Priority: 1000, Isolate: []string{"ingress"},
			Ingress: []*sdnv1.PolicyRule{{Name: "clients"}, {}},
			Status: &sdnv1.PolicyStatus{Workloads: []string{"proj1/web1", "proj1/web2"}, Hosts: 2, RealizedHosts: 2,
				Counters: []*sdnv1.RuleCounters{{Direction: "ingress", Rule: "clients", Action: "allow", Packets: 12, Connections: 3}}}},
		{Name: "admin", Priority: 10, Egress: []*sdnv1.PolicyRule{{}},
			Status: &sdnv1.PolicyStatus{Hosts: 3, RealizedHosts: 1}},
	}}}
	addr := serveWithPolicies(t, &fakeSDND{}, p)
	r := sdnctl(t, addr, "get", "policies")
	want := "NAME    NETWORK     PRIORITY   ISOLATES   RULES                  SELECTED      REALIZED\n" +
		"admin   (cluster)   10         none       0 ingress / 1 egress   0 workloads   1/3 hosts\n" +
		"web     proj1       1000       ingress    2 ingress / 0 egress   2 workloads   2/2 hosts\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("get policies: code %d\n%s\nwant:\n%s\nstderr: %s", r.code, r.stdout, want, r.stderr)
	}
	r = sdnctl(t, addr, "get", "policy", "--network", "proj1", "-o", "wide")
	if r.code != 0 || !strings.Contains(r.stdout, "ingress clients") || !strings.Contains(r.stdout, "12 packets") ||
		!strings.Contains(r.stdout, "selects proj1/web1, proj1/web2") {
		t.Fatalf("get policies -o wide: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := p.listReqs; len(got) != 2 || got[0].Counters || got[1].Network != "proj1" || !got[1].Counters {
		t.Fatalf("requests %v", got)
	}
	r = sdnctl(t, addr, "get", "policies", "-o", "json")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "[\n  {\n    \"name\": \"admin\"") {
		t.Fatalf("get policies -o json: code %d\n%s", r.code, r.stdout)
	}
	if r := sdnctl(t, addr, "get", "networks", "-o", "wide"); r.code != 2 {
		t.Fatalf("-o wide for networks: code %d %s", r.code, r.stderr)
	}
}

func TestRenderGetAddressGroupsAndWideWorkloads(t *testing.T) {
	f := &fakeSDND{listResp: &sdnv1.ListResponse{Revision: 5,
		AddressGroups: []*sdnv1.AddressGroup{{Name: "g1", Selector: "in network proj1: workloads{app=client}", Nodes: []string{"h1", "h2"},
			Members: []*sdnv1.GroupMember{{Ip: "10.128.0.5"}}}},
		Workloads: []*sdnv1.Workload{{Network: "proj1", Name: "web", Node: "h1", Ip: "10.128.0.6",
			NamedPorts: []*sdnv1.NamedPort{{Name: "http", Protocol: "tcp", Port: 8080}, {Name: "dns", Protocol: "udp", Port: 53}}}}}}
	addr := serveWithPolicies(t, f, &fakePolicies{})
	r := sdnctl(t, addr, "get", "addressgroups")
	want := "NAME   SELECTOR                                  MEMBERS   HOSTS\n" +
		"g1     in network proj1: workloads{app=client}   1         h1,h2\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("get addressgroups: code %d\n%s\nwant:\n%s%s", r.code, r.stdout, want, r.stderr)
	}
	r = sdnctl(t, addr, "get", "workloads", "-o", "wide")
	if r.code != 0 || !strings.Contains(r.stdout, "NAMED PORTS") || !strings.Contains(r.stdout, "http=tcp/8080,dns=udp/53") {
		t.Fatalf("get workloads -o wide: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestLabelWorkload(t *testing.T) {
	p := &fakePolicies{label: &sdnv1.LabelWorkloadResponse{Revision: 12, Workload: &sdnv1.Workload{Labels: map[string]string{"app": "bar", "env": "x"}}}}
	addr := serveWithPolicies(t, &fakeSDND{}, p)
	r := sdnctl(t, addr, "label", "workload", "proj1/client", "app=bar", "env=x", "tier-")
	if r.code != 0 || r.stdout != "workload proj1/client labels: app=bar,env=x (revision 12)\n" {
		t.Fatalf("label: code %d %q %s", r.code, r.stdout, r.stderr)
	}
	got := p.labelReqs[0]
	if got.Network != "proj1" || got.Name != "client" || got.Set["app"] != "bar" || got.Set["env"] != "x" || !slices.Equal(got.Remove, []string{"tier"}) {
		t.Fatalf("request %v", got)
	}
	for _, args := range [][]string{
		{"label", "workload", "client", "app=bar"},
		{"label", "workload", "proj1/client", "app"},
		{"label", "workload", "proj1/client", "app=bar", "app-"},
		{"label", "network", "proj1", "a=b"},
		{"label", "workload", "proj1/client", "-x=1"},
	} {
		if r := sdnctl(t, addr, args...); r.code != 2 {
			t.Errorf("%q: code %d, want a usage error (2); %s", args, r.code, r.stderr)
		}
	}
	p.labelErr = status.Error(codes.NotFound, "no workload proj1/nosuch")
	if r := sdnctl(t, addr, "label", "workload", "proj1/nosuch", "a=b"); r.code != 1 || !strings.Contains(r.stderr, "no workload proj1/nosuch") {
		t.Fatalf("label of a missing workload: code %d %s", r.code, r.stderr)
	}
}

func TestDeletePolicy(t *testing.T) {
	f := &fakeSDND{deleteResp: &sdnv1.DeleteResponse{Revision: 4}}
	addr := serve(t, f)
	if r := sdnctl(t, addr, "delete", "policy", "proj1/web"); r.code != 0 || r.stdout != "deleted policy proj1/web (revision 4)\n" {
		t.Fatalf("delete policy: code %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r := sdnctl(t, addr, "delete", "policy", "admin"); r.code != 0 {
		t.Fatalf("delete cluster-wide policy: code %d %s", r.code, r.stderr)
	}
	if got := f.deleteReqs; got[0].Kind != "policy" || got[0].Name != "proj1/web" || got[1].Name != "admin" {
		t.Fatalf("requests %v", got)
	}
	if r := sdnctl(t, addr, "delete", "policy", "a/b/c"); r.code != 2 {
		t.Fatalf("bad policy name: code %d", r.code)
	}
}
