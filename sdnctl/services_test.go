package main

import (
	"bytes"
	"strings"
	"testing"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func TestServicesTable(t *testing.T) {
	resp := &sdnv1.ListResponse{
		Services: []*sdnv1.Service{
			{Name: "web", Network: "proj1", Vip: "172.30.0.1", SessionAffinity: &sdnv1.SessionAffinity{TimeoutSeconds: 60},
				Ports: []*sdnv1.ServicePort{{Protocol: "tcp", Port: 80, TargetPortName: "http", NodePort: 30080}, {Protocol: "udp", Port: 53}}},
			{Name: "idle", Network: "proj1", Vip: "172.30.0.2", Ports: []*sdnv1.ServicePort{{Protocol: "tcp", Port: 80}}},
		},
		ServiceEndpoints: []*sdnv1.ServiceEndpoints{
			{Service: "proj1/web", Endpoints: []*sdnv1.ServiceEndpoint{
				{Workload: "proj1/a", Ip: "10.128.0.2", Node: "h1", Ports: []uint32{8080, 53}},
				{Workload: "proj1/b", Ip: "10.128.2.2", Node: "h2", Ports: []uint32{0, 53}},
			}},
			{Service: "proj1/idle"},
		},
	}
	var buf bytes.Buffer
	if err := writeServicesTable(&buf, resp, false); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"proj1/idle", "none (no placed workload matches the selector; clients are refused)",
		"172.30.0.1", "80/tcp->http node:30080,53/udp", "client-ip 60s", "2: 10.128.0.2@h1, 10.128.2.2@h2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "proj1/idle") > strings.Index(out, "proj1/web") {
		t.Errorf("services not sorted:\n%s", out)
	}
	buf.Reset()
	if err := writeServicesTable(&buf, resp, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "proj1/b=10.128.2.2@h2 (80: none, 53)") || !strings.Contains(buf.String(), "proj1/a=10.128.0.2@h1 (80->8080, 53)") {
		t.Errorf("wide table lacks per-endpoint ports:\n%s", buf.String())
	}
}
