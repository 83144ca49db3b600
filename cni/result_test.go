package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func TestRenderResult(t *testing.T) {
	in := &sdnv1.CNIResult{
		Address: "10.128.0.5/23", Gateway: "10.128.0.1", Mac: "0a:58:0a:80:00:05", Mtu: 1450,
		HostIfname: "sdn0123456789a", HostMac: "6e:11:22:33:44:55", SandboxIfname: "eth0", Sandbox: "/run/netns/w1",
		Dns: &sdnv1.CNIDNS{Nameservers: []string{"10.128.0.1"}, Search: []string{"proj1.sdn.local", "sdn.local"}},
	}
	tests := []struct{ version, want string }{
		{"1.1.0", `{"cniVersion":"1.1.0",` +
			`"dns":{"nameservers":["10.128.0.1"],"search":["proj1.sdn.local","sdn.local"]},` +
			`"interfaces":[{"mac":"6e:11:22:33:44:55","mtu":1450,"name":"sdn0123456789a"},{"mac":"0a:58:0a:80:00:05","mtu":1450,"name":"eth0","sandbox":"/run/netns/w1"}],` +
			`"ips":[{"address":"10.128.0.5/23","gateway":"10.128.0.1","interface":1}],` +
			`"routes":[{"dst":"0.0.0.0/0","gw":"10.128.0.1"}]}`},
		// 1.0.0 has no "mtu" on interfaces.
		{"1.0.0", `{"cniVersion":"1.0.0",` +
			`"dns":{"nameservers":["10.128.0.1"],"search":["proj1.sdn.local","sdn.local"]},` +
			`"interfaces":[{"mac":"6e:11:22:33:44:55","name":"sdn0123456789a"},{"mac":"0a:58:0a:80:00:05","name":"eth0","sandbox":"/run/netns/w1"}],` +
			`"ips":[{"address":"10.128.0.5/23","gateway":"10.128.0.1","interface":1}],` +
			`"routes":[{"dst":"0.0.0.0/0","gw":"10.128.0.1"}]}`},
		{"0.4.0", `{"cniVersion":"0.4.0","dns":{"nameservers":["10.128.0.1"],"search":["proj1.sdn.local","sdn.local"]},` +
			`"interfaces":[{"mac":"6e:11:22:33:44:55","name":"sdn0123456789a"},{"mac":"0a:58:0a:80:00:05","name":"eth0","sandbox":"/run/netns/w1"}],` +
			`"ips":[{"address":"10.128.0.5/23","gateway":"10.128.0.1","interface":1,"version":"4"}],` +
			`"routes":[{"dst":"0.0.0.0/0","gw":"10.128.0.1"}]}`},
		{"0.3.1", `{"cniVersion":"0.3.1","dns":{"nameservers":["10.128.0.1"],"search":["proj1.sdn.local","sdn.local"]},` +
			`"interfaces":[{"mac":"6e:11:22:33:44:55","name":"sdn0123456789a"},{"mac":"0a:58:0a:80:00:05","name":"eth0","sandbox":"/run/netns/w1"}],` +
			`"ips":[{"address":"10.128.0.5/23","gateway":"10.128.0.1","interface":1,"version":"4"}],` +
			`"routes":[{"dst":"0.0.0.0/0","gw":"10.128.0.1"}]}`},
	}
	for _, tt := range tests {
		r, err := renderResult(in, tt.version)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := r.PrintTo(&buf); err != nil {
			t.Fatal(err)
		}
		if got := normJSON(t, buf.Bytes()); got != tt.want {
			t.Errorf("version %s:\n got %s\nwant %s", tt.version, got, tt.want)
		}
	}
}

// TestRenderResultWithoutDNS: an agent that gives no DNS (an older one, a
// host without a gateway) renders none.
func TestRenderResultWithoutDNS(t *testing.T) {
	r, err := renderResult(&sdnv1.CNIResult{Address: "10.128.0.5/23", HostIfname: "h", SandboxIfname: "eth0"}, "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := r.PrintTo(&buf); err != nil {
		t.Fatal(err)
	}
	if got := normJSON(t, buf.Bytes()); strings.Contains(got, `"dns"`) {
		t.Fatalf("result without DNS: %s", got)
	}
}

func TestRenderResultRejectsGarbage(t *testing.T) {
	for _, r := range []*sdnv1.CNIResult{{Address: "10.128.0.5"}, {Address: "10.128.0.5/23", Gateway: "gw"}} {
		if _, err := renderResult(r, "1.0.0"); err == nil {
			t.Errorf("renderResult(%v): no error", r)
		}
	}
}

// normJSON re-encodes JSON compactly with sorted keys.
func normJSON(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	out, _ := json.Marshal(v)
	return string(out)
}
