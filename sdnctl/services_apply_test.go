package main

import (
	"testing"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

const serviceHCL = `cluster {
  dns_domain      = "corp.example"
  node_port_range = "31000-31999"
}

network "proj1" {
  snat = false
}

service "web" {
  network  = "proj1"
  selector { match_labels = { app = "web" } }
  vip      = "172.30.0.10"
  port {
    port        = 80
    target_port = "http"
    node_port   = 31080
  }
  session_affinity {}
}
`

// plan and apply send the files' services, and the cluster and network
// settings for them, in the ApplyRequest; the server's changes to
// services render like any other kind's.
func TestApplySendsServices(t *testing.T) {
	writeFiles(t, map[string]string{"svc.hcl": serviceHCL})
	f := &fakeSDND{applyResp: &sdnv1.ApplyResponse{Revision: 4, Changes: []*sdnv1.Change{
		{Op: opCreate, Kind: "service", Name: "proj1/web"},
	}}}
	addr := serve(t, f)
	for _, cmd := range []string{"plan", "apply"} {
		if r := sdnctl(t, addr, cmd, "-f", "svc.hcl"); r.code != 0 {
			t.Fatalf("%s: exit %d, stderr:\n%s", cmd, r.code, r.stderr)
		}
	}
	r := sdnctl(t, addr, "plan", "-f", "svc.hcl")
	if want := "+ service proj1/web\n\nPlan: 1 to create, 0 to update, 0 to delete.\n"; r.stdout != want {
		t.Errorf("plan printed:\n%s\nwant:\n%s", r.stdout, want)
	}
	for i, req := range f.applyReqs[:2] {
		if len(req.Services) != 1 {
			t.Fatalf("request %d carries %d services, want 1: %v", i, len(req.Services), req)
		}
		s := req.Services[0]
		p := s.GetPorts()[0]
		if s.Name != "web" || s.Network != "proj1" || s.Vip != "172.30.0.10" || s.Selector.GetMatchLabels()["app"] != "web" ||
			p.Port != 80 || p.Protocol != "tcp" || p.TargetPortName != "http" || p.NodePort != 31080 ||
			s.SessionAffinity.GetTimeoutSeconds() != 10800 {
			t.Errorf("request %d: service %v", i, s)
		}
		if c := req.Cluster; c.DnsDomain != "corp.example" || c.NodePortMin != 31000 || c.NodePortMax != 31999 || !req.Networks[0].NoSnat {
			t.Errorf("request %d: cluster %v, network %v", i, c, req.Networks[0])
		}
	}
}
