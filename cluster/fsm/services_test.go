package fsm

import (
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// webService is proj1/web over the workloads app=web: 80/tcp to their named
// port "http", and 53/udp.
func webService() *sdnv1.Service {
	return &sdnv1.Service{Name: "web", Network: "proj1", Selector: sel("app", "web"), Origin: hclOrigin,
		Ports: []*sdnv1.ServicePort{{Name: "http", Protocol: "tcp", Port: 80, TargetPortName: "http"}, {Name: "dns", Protocol: "udp", Port: 53}}}
}

// serviceLab is policyLab's hosts and workloads (web on h1 with named port
// http=8080, client on h2) with the web service.
func serviceLab(t *testing.T) (*testFSM, *sdnv1.ApplyRequest) {
	tf, req := policyLab(t)
	req.Policies = nil
	req.Services = []*sdnv1.Service{webService()}
	tf.mustApply(command.ApplyConfig, req)
	return tf, req
}

func endpointsOf(tf *testFSM, key string) *sdnv1.ServiceEndpoints {
	var eps *sdnv1.ServiceEndpoints
	tf.view(func(tx *state.Tx) { eps, _ = tx.ServiceEndpoints(key) })
	return eps
}

func serviceOf(tf *testFSM, key string) *sdnv1.Service {
	var v *sdnv1.Service
	tf.view(func(tx *state.Tx) { v, _ = tx.Service(key) })
	return v
}

func checkState(t *testing.T, tf *testFSM) {
	t.Helper()
	tf.view(func(tx *state.Tx) {
		if err := CheckState(tx); err != nil {
			t.Fatalf("CheckState: %v", err)
		}
	})
}

func TestServiceVIPAndEndpoints(t *testing.T) {
	tf, req := serviceLab(t)
	v := serviceOf(tf, "proj1/web")
	if v == nil || v.Vip != "172.30.0.1" || v.CreateRevision == 0 {
		t.Fatalf("stored service %v, want vip 172.30.0.1 (first of the default service CIDR)", v)
	}
	eps := endpointsOf(tf, "proj1/web")
	if eps == nil || len(eps.Endpoints) != 1 {
		t.Fatalf("endpoints %v, want the web workload", eps)
	}
	ep := eps.Endpoints[0]
	if ep.Workload != "proj1/web" || ep.Node != "h1" || ep.Ip == "" || len(ep.Ports) != 2 || ep.Ports[0] != 8080 || ep.Ports[1] != 53 {
		t.Fatalf("endpoint %v, want proj1/web on h1 serving 8080 (named port) and 53", ep)
	}
	checkState(t, tf)
	// The same apply again changes nothing, and keeps the VIP.
	if r := tf.mustApply(command.ApplyConfig, req); len(r.Changes) != 0 {
		t.Fatalf("re-apply changed %v", r.Changes)
	}
	// A second service gets the next address.
	other := webService()
	other.Name = "web2"
	req.Services = append(req.Services, other)
	tf.mustApply(command.ApplyConfig, req)
	if v := serviceOf(tf, "proj1/web2"); v.Vip != "172.30.0.2" {
		t.Fatalf("second service's vip %s, want 172.30.0.2", v.Vip)
	}
}

func TestServiceEndpointsFollowLabels(t *testing.T) {
	tf, _ := serviceLab(t)
	rev := endpointsOf(tf, "proj1/web").ModRevision
	// The client becomes a web server too: it joins, with port 0 for the
	// named port it lacks.
	r := tf.mustApply(command.LabelWorkload, &sdnv1.LabelWorkloadRequest{Network: "proj1", Name: "client", Set: map[string]string{"app": "web"}})
	eps := endpointsOf(tf, "proj1/web")
	if len(eps.Endpoints) != 2 || eps.Endpoints[0].Workload != "proj1/client" || eps.Endpoints[0].Ports[0] != 0 || eps.Endpoints[0].Ports[1] != 53 {
		t.Fatalf("endpoints after relabel %v", eps.Endpoints)
	}
	if eps.ModRevision != r.Revision || eps.ModRevision == rev {
		t.Fatalf("endpoints' revision %d, want the label's %d", eps.ModRevision, r.Revision)
	}
	checkState(t, tf)
	// It leaves again.
	tf.mustApply(command.LabelWorkload, &sdnv1.LabelWorkloadRequest{Network: "proj1", Name: "client", Remove: []string{"app"}})
	if eps := endpointsOf(tf, "proj1/web"); len(eps.Endpoints) != 1 {
		t.Fatalf("endpoints after unlabel %v", eps.Endpoints)
	}
	// A label change that does not concern the service writes no endpoints.
	before := endpointsOf(tf, "proj1/web").ModRevision
	tf.mustApply(command.LabelWorkload, &sdnv1.LabelWorkloadRequest{Network: "proj1", Name: "client", Set: map[string]string{"tier": "x"}})
	if after := endpointsOf(tf, "proj1/web").ModRevision; after != before {
		t.Fatalf("an unrelated label change rewrote the endpoints (revision %d -> %d)", before, after)
	}
	checkState(t, tf)
}

func TestServiceWithoutEndpointsAndDelete(t *testing.T) {
	tf, req := serviceLab(t)
	none := webService()
	none.Name, none.Selector = "nobody", sel("app", "nothing")
	req.Services = append(req.Services, none)
	tf.mustApply(command.ApplyConfig, req)
	if eps := endpointsOf(tf, "proj1/nobody"); eps == nil || len(eps.Endpoints) != 0 {
		t.Fatalf("a selector matching nothing: endpoints %v, want an empty set", eps)
	}
	// A network with services cannot be deleted.
	r := tf.apply(command.Delete, &sdnv1.DeleteRequest{Kind: "network", Name: "proj1"})
	if r.Err == nil {
		t.Fatal("deleting a network with workloads and services was accepted")
	}
	r = tf.mustApply(command.Delete, &sdnv1.DeleteRequest{Kind: "service", Name: "proj1/nobody"})
	if serviceOf(tf, "proj1/nobody") != nil || endpointsOf(tf, "proj1/nobody") != nil {
		t.Fatal("deleted service or its endpoints still stored")
	}
	if len(r.Changes) != 1 || r.Changes[0].Kind != "service" {
		t.Fatalf("delete's changes %v", r.Changes)
	}
	// Pruning removes the undeclared service and its endpoints.
	req.Services, req.Prune = nil, true
	tf.mustApply(command.ApplyConfig, req)
	if serviceOf(tf, "proj1/web") != nil || endpointsOf(tf, "proj1/web") != nil {
		t.Fatal("pruned service or its endpoints still stored")
	}
	checkState(t, tf)
}

func TestServiceRefusals(t *testing.T) {
	tf, req := serviceLab(t)
	cases := []struct {
		name  string
		edit  func(v *sdnv1.Service)
		field string
		want  string
	}{
		{"vip outside", func(v *sdnv1.Service) { v.Vip = "10.0.0.5" }, "vip", "outside the cluster's service_cidr"},
		{"vip taken", func(v *sdnv1.Service) { v.Vip = "172.30.0.1" }, "vip", "is service proj1/web's"},
		{"unknown network", func(v *sdnv1.Service) { v.Network = "nope" }, "network", `unknown network "nope"`},
		{"no ports", func(v *sdnv1.Service) { v.Ports = nil }, "ports", "at least one port"},
		{"node port range", func(v *sdnv1.Service) { v.Ports[0].NodePort = 80 }, "port[0]", "outside the cluster's node-port range"},
		{"bad selector", func(v *sdnv1.Service) {
			v.Selector = &sdnv1.LabelSelector{MatchExpressions: []*sdnv1.LabelRequirement{{Key: "a", Operator: "Bogus"}}}
		}, "selector", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := webService()
			v.Name = "other"
			c.edit(v)
			r := tf.apply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: req.Networks, Workloads: req.Workloads, Services: []*sdnv1.Service{req.Services[0], v}})
			if r.Err == nil {
				t.Fatal("accepted")
			}
			found := false
			for _, vi := range r.Err.Violations {
				if vi.Kind == "service" && vi.Field == c.field && strings.Contains(vi.Message, c.want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("violations %v, want field %q with %q", r.Err.Violations, c.field, c.want)
			}
			if serviceOf(tf, "proj1/other") != nil {
				t.Fatal("refused service stored")
			}
		})
	}
	// A port without a protocol is tcp, as HCL's default.
	bare := webService()
	bare.Name, bare.Ports = "bare", []*sdnv1.ServicePort{{Port: 8000}}
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: req.Networks, Workloads: req.Workloads, Services: []*sdnv1.Service{req.Services[0], bare}})
	if v := serviceOf(tf, "proj1/bare"); v == nil || v.Ports[0].Protocol != "tcp" {
		t.Fatalf("a port without a protocol: stored %v, want tcp", v)
	}
	// A node port is one service's.
	a, b := webService(), webService()
	b.Name = "b"
	a.Ports[0].NodePort, b.Ports[0].NodePort = 30080, 30080
	r := tf.apply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: req.Networks, Workloads: req.Workloads, Services: []*sdnv1.Service{a, b}})
	if r.Err == nil || !strings.Contains(r.Err.Error(), "node port 30080 is service") {
		t.Fatalf("a node port taken twice: %v", r.Err)
	}
}

func TestServiceEndpointsLeaveDownHosts(t *testing.T) {
	tf, _ := serviceLab(t)
	tf.mustApply(command.LabelWorkload, &sdnv1.LabelWorkloadRequest{Network: "proj1", Name: "client", Set: map[string]string{"app": "web"}})
	if eps := endpointsOf(tf, "proj1/web"); len(eps.Endpoints) != 2 {
		t.Fatalf("endpoints %v, want web and client", eps.Endpoints)
	}
	// h2 (the client's host) is marked down: its workload leaves.
	tf.mustApply(command.SetNodeLiveness, &sdnv1.SetNodeLivenessRequest{Name: "h2", Down: true, AtUnixMs: 1_700_000_000_000})
	eps := endpointsOf(tf, "proj1/web")
	if len(eps.Endpoints) != 1 || eps.Endpoints[0].Node != "h1" {
		t.Fatalf("endpoints with h2 down: %v, want h1's only", eps.Endpoints)
	}
	checkState(t, tf)
	// Up again: it rejoins.
	tf.mustApply(command.SetNodeLiveness, &sdnv1.SetNodeLivenessRequest{Name: "h2", Down: false})
	if eps := endpointsOf(tf, "proj1/web"); len(eps.Endpoints) != 2 {
		t.Fatalf("endpoints with h2 up again: %v", eps.Endpoints)
	}
	checkState(t, tf)
}

func TestServiceCIDRFull(t *testing.T) {
	tf, req := serviceLab(t)
	req.Cluster = &sdnv1.ClusterSettings{Cidr: "10.128.0.0/14", HostPrefix: 23, ServiceCidr: "172.30.0.0/30"}
	other := webService()
	other.Name = "web2"
	req.Services = append(req.Services, other)
	tf.mustApply(command.ApplyConfig, req) // .1 (web's) and .2
	third := webService()
	third.Name = "web3"
	r := tf.apply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: req.Networks, Workloads: req.Workloads, Services: append(req.Services, third)})
	if r.Err == nil || !strings.Contains(r.Err.Error(), "is full") || serviceOf(tf, "proj1/web3") != nil {
		t.Fatalf("a third service in a /30: %v", r.Err)
	}
}
