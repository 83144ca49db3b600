package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// svc is a service "web" on network "proj1" with body inside (line 3 on).
func svc(body string) string {
	return "service \"web\" {\n  network = \"proj1\"\n" + body + "}\n"
}

// serviceRefusals are sources the decoder refuses and every diagnostic
// each gets, in order: the message and where it points.
var serviceRefusals = []struct {
	name, src string
	want      []string
}{
	{"name", "service \"Web\" {\n  network = \"proj1\"\n  port { port = 80 }\n}\n", []string{
		`f.hcl:1,9-14: Invalid service name; Service name "Web" is not a DNS label: it contains 'W' at position 1; only lowercase letters, digits and '-' are allowed. Names are 1-63 lowercase letters, digits and '-', start with a letter and end with a letter or digit, e.g. "web".`}},
	{"no network", "service \"web\" {\n  port { port = 80 }\n}\n", []string{
		`f.hcl:1,1-14: Missing required argument; The argument "network" is required in service "web": the network whose workloads it balances over, e.g. network = "proj1".`}},
	{"network name", "service \"web\" {\n  network = \"Proj1\"\n  port { port = 80 }\n}\n", []string{
		`f.hcl:2,13-20: Invalid network name; network "Proj1" in service "web" is not a DNS label: it contains 'P' at position 1; only lowercase letters, digits and '-' are allowed.`}},
	{"vip not an address", svc("  vip = \"172.30.0\"\n  port { port = 80 }\n"), []string{
		`f.hcl:3,9-19: Invalid IP address; vip "172.30.0" is not an IP address (IPv4 address too short); write an IPv4 address, e.g. "10.128.0.10".`}},
	{"vip a CIDR", svc("  vip = \"172.30.0.1/32\"\n  port { port = 80 }\n"), []string{
		`f.hcl:3,9-24: Invalid IP address; vip "172.30.0.1/32" is a CIDR; write the address alone, without the prefix length, e.g. "172.30.0.1".`}},
	{"vip IPv6", svc("  vip = \"fd00::1\"\n  port { port = 80 }\n"), []string{
		`f.hcl:3,9-18: IPv6 is not supported; vip "fd00::1" is an IPv6 address; only IPv4 is supported for now, e.g. "10.128.0.10".`}},
	{"vip outside the default service_cidr", svc("  vip = \"10.0.0.1\"\n  port { port = 80 }\n"), []string{
		`f.hcl:3,9-19: Invalid VIP; service "web" on network "proj1": vip 10.0.0.1 is outside the cluster's service_cidr 172.30.0.0/16 (the default; these files have no cluster block, and the servers check against the cluster's own); choose another address in it, or omit vip to have one allocated.`}},
	{"vip outside service_cidr", "cluster {\n  service_cidr = \"172.31.0.0/24\"\n}\n" + svc("  vip = \"172.30.0.10\"\n  port { port = 80 }\n"), []string{
		`f.hcl:6,9-22: Invalid VIP; service "web" on network "proj1": vip 172.30.0.10 is outside the cluster's service_cidr 172.31.0.0/24 (set at f.hcl:2,18-33); choose another address in it, or omit vip to have one allocated.`}},
	{"vip outside the cluster block's default", "cluster {}\n" + svc("  vip = \"10.0.0.1\"\n  port { port = 80 }\n"), []string{
		`f.hcl:4,9-19: Invalid VIP; service "web" on network "proj1": vip 10.0.0.1 is outside the cluster's service_cidr 172.30.0.0/16 (the default); choose another address in it, or omit vip to have one allocated.`}},
	{"vip network address", svc("  vip = \"172.30.0.0\"\n  port { port = 80 }\n"), []string{
		`f.hcl:3,9-21: Invalid VIP; service "web" on network "proj1": vip 172.30.0.0 is the network or broadcast address of service_cidr 172.30.0.0/16 (the default; these files have no cluster block, and the servers check against the cluster's own); choose another address in it, or omit vip to have one allocated.`}},
	{"no port", svc(""), []string{
		`f.hcl:1,1-14: Missing port; service "web" on network "proj1": a service needs at least one port, e.g. port { port = 80 }.`}},
	{"port missing", svc("  port { target_port = 8080 }\n"), []string{
		`f.hcl:3,3-7: Missing required argument; The argument "port" is required in port block 1 of service "web": the port clients connect to on the VIP, e.g. port = 80.`}},
	{"port out of range", svc("  port { port = 70000 }\n"), []string{
		`f.hcl:3,17-22: Invalid value; port 70000 in port block 1 of service "web" is out of range: a port is 1 to 65535.`}},
	{"port in quotes", svc("  port { port = \"80\" }\n"), []string{
		`f.hcl:3,17-21: Incorrect attribute value type; Attribute "port" in port block 1 of service "web" must be a number, not a string. Write it without quotes, e.g. port = 23.`}},
	{"protocol", svc("  port {\n    port     = 80\n    protocol = \"tpc\"\n  }\n"), []string{
		`f.hcl:5,16-21: Invalid protocol; protocol "tpc" in port block 1 of service "web" is not "tcp" or "udp" (spelled so). Did you mean "tcp"?`}},
	{"protocol upper case", svc("  port {\n    port     = 80\n    protocol = \"TCP\"\n  }\n"), []string{
		`f.hcl:5,16-21: Invalid protocol; protocol "TCP" in port block 1 of service "web" is not "tcp" or "udp" (spelled so).`}},
	{"target_port in quotes", svc("  port {\n    port        = 80\n    target_port = \"8080\"\n  }\n"), []string{
		`f.hcl:5,19-25: Incorrect attribute value type; target_port "8080" in port block 1 of service "web" is a port number in quotes; write it without quotes (target_port = 8080), or give the name of the workloads' named port.`}},
	{"target_port name", svc("  port {\n    port        = 80\n    target_port = \"Http\"\n  }\n"), []string{
		`f.hcl:5,19-25: Invalid port name; target_port in port block 1 of service "web" names no possible named port: port name "Http" may hold lowercase letters, digits and single '-' inside only.`}},
	{"target_port bool", svc("  port {\n    port        = 80\n    target_port = true\n  }\n"), []string{
		`f.hcl:5,19-23: Incorrect attribute value type; Attribute "target_port" in port block 1 of service "web" must be a port number (target_port = 8080) or the name of the workloads' named port (target_port = "http"), not a bool.`}},
	{"target_port zero", svc("  port {\n    port        = 80\n    target_port = 0\n  }\n"), []string{
		`f.hcl:5,19-20: Invalid value; target_port 0 in port block 1 of service "web" is out of range: a port is 1 to 65535.`}},
	{"port name", svc("  port {\n    name = \"web_http\"\n    port = 80\n  }\n"), []string{
		`f.hcl:4,12-22: Invalid port name; name in port block 1 of service "web": port name "web_http" may hold lowercase letters, digits and single '-' inside only.`}},
	{"same port twice", svc("  port { port = 80 }\n  port {\n    port        = 80\n    target_port = 8080\n  }\n"), []string{
		`f.hcl:5,19-21: Invalid service port; service "web" on network "proj1": port 2: tcp/80 is port 1's too.`}},
	{"same name twice", svc("  port {\n    name = \"http\"\n    port = 80\n  }\n  port {\n    name = \"http\"\n    port = 8080\n  }\n"), []string{
		`f.hcl:8,12-18: Invalid service port; service "web" on network "proj1": port 2: name "http" is port 1's too.`}},
	{"node_port outside the default range", svc("  port {\n    port      = 80\n    node_port = 8080\n  }\n"), []string{
		`f.hcl:5,17-21: Invalid service port; service "web" on network "proj1": port 1: node_port 8080 is outside the cluster's node-port range 30000-32767 (the default; these files have no cluster block, and the servers check against the cluster's own).`}},
	{"node_port outside the range", "cluster {\n  node_port_range = \"31000-31999\"\n}\n" + svc("  port {\n    port      = 80\n    node_port = 30080\n  }\n"), []string{
		`f.hcl:8,17-22: Invalid service port; service "web" on network "proj1": port 1: node_port 30080 is outside the cluster's node-port range 31000-31999 (set at f.hcl:2,21-34).`}},
	{"node_port twice in a service", svc("  port {\n    port      = 80\n    node_port = 30080\n  }\n  port {\n    port      = 443\n    node_port = 30080\n  }\n"), []string{
		`f.hcl:9,17-22: Invalid service port; service "web" on network "proj1": port 2: node_port 30080 is port 1's too.`}},
	{"node_port in two services", svc("  port {\n    port      = 80\n    node_port = 30080\n  }\n") + "service \"db\" {\n  network = \"proj2\"\n  port {\n    port      = 5432\n    node_port = 30080\n  }\n}\n", []string{
		`f.hcl:12,17-22: Duplicate node port; node_port 30080 of service "db" on network "proj2" is already that of service "web" on network "proj1" (f.hcl:5,17-22); a node port opens on every host, so each service needs its own.`}},
	{"vip in two services", svc("  vip = \"172.30.0.10\"\n  port { port = 80 }\n") + "service \"db\" {\n  network = \"proj1\"\n  vip     = \"172.30.0.10\"\n  port { port = 5432 }\n}\n", []string{
		`f.hcl:8,13-26: Duplicate VIP; vip 172.30.0.10 of service "db" on network "proj1" is already that of service "web" on network "proj1" (f.hcl:3,9-22); each service needs its own address, or omit vip to have one allocated.`}},
	{"service twice", svc("  port { port = 80 }\n") + svc("  port { port = 81 }\n"), []string{
		`f.hcl:5,9-14: Duplicate service; A service named "web" on network "proj1" is already declared at f.hcl:1,9-14; service names are unique within a network, so rename or remove one.`}},
	{"timeout zero", svc("  port { port = 80 }\n  session_affinity { timeout = \"0s\" }\n"), []string{
		`f.hcl:4,32-36: Invalid timeout; timeout in the session_affinity of service "web": "0s": want a duration of whole seconds from 1s to 24h in quotes, like "3h" (the default) or "30m".`}},
	{"timeout too long", svc("  port { port = 80 }\n  session_affinity { timeout = \"25h\" }\n"), []string{
		`f.hcl:4,32-37: Invalid timeout; timeout in the session_affinity of service "web": "25h": want a duration of whole seconds from 1s to 24h in quotes, like "3h" (the default) or "30m".`}},
	{"timeout fraction", svc("  port { port = 80 }\n  session_affinity { timeout = \"1.5s\" }\n"), []string{
		`f.hcl:4,32-38: Invalid timeout; timeout in the session_affinity of service "web": "1.5s": want a duration of whole seconds from 1s to 24h in quotes, like "3h" (the default) or "30m".`}},
	{"timeout a number", svc("  port { port = 80 }\n  session_affinity { timeout = 10800 }\n"), []string{
		`f.hcl:4,32-37: Invalid timeout; timeout in the session_affinity of service "web": want a duration of whole seconds from 1s to 24h in quotes, like "3h" (the default) or "30m", not a number.`}},
	{"affinity twice", svc("  port { port = 80 }\n  session_affinity {}\n  session_affinity {}\n"), []string{
		`f.hcl:5,3-19: Duplicate block; A session_affinity block is already declared in this block at f.hcl:4,3-19; write one, with every requirement in it (they all must hold).`}},
	{"selector twice", svc("  selector {}\n  selector {}\n  port { port = 80 }\n"), []string{
		`f.hcl:4,3-11: Duplicate block; A selector block is already declared in this block at f.hcl:3,3-11; write one, with every requirement in it (they all must hold).`}},
	{"selector label", svc("  selector { match_labels = { \"bad key\" = \"x\" } }\n  port { port = 80 }\n"), []string{
		`f.hcl:3,31-40: Invalid label key; Label key "bad key" in the selector of service "web" is not valid: the name part contains ' ' at position 4; only letters, digits, '-', '_' and '.' are allowed.`}},
	{"selector operator", svc("  selector {\n    match_expression {\n      key      = \"tier\"\n      operator = \"in\"\n      values   = [\"a\"]\n    }\n  }\n  port { port = 80 }\n"), []string{
		`f.hcl:6,18-22: Invalid operator; operator "in" in a match_expression of the selector of service "web" is not one of "In", "NotIn", "Exists", "DoesNotExist" (spelled so). Did you mean "In"?`}},
	{"unknown attribute", svc("  port {\n    port  = 80\n    tagret_port = 8080\n  }\n"), []string{
		`f.hcl:5,5-16: Unsupported argument; An argument named "tagret_port" is not expected here. Did you mean "target_port"?`}},
	{"dns_domain upper case", "cluster {\n  dns_domain = \"Corp.Example\"\n}\n", []string{
		`f.hcl:2,16-30: Invalid DNS domain; dns_domain "Corp.Example" has upper-case letters; write it in lower case, "corp.example".`}},
	{"dns_domain trailing dot", "cluster {\n  dns_domain = \"corp.example.\"\n}\n", []string{
		`f.hcl:2,16-31: Invalid DNS domain; dns_domain "corp.example." ends with a dot; write it without, "corp.example".`}},
	{"dns_domain not a name", "cluster {\n  dns_domain = \"corp..example\"\n}\n", []string{
		`f.hcl:2,16-31: Invalid DNS domain; dns_domain "corp..example" is not a DNS name (dot-separated labels of lowercase letters, digits and '-', e.g. "sdn.local"): it has an empty part between dots.`}},
	{"dns_domain too long", "cluster {\n  dns_domain = \"" + strings.Repeat("a.", 63) + "a\"\n}\n", []string{
		`f.hcl:2,16-145: Invalid DNS domain; dns_domain "a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a."... (127 bytes) is 127 characters long, more than 125: SERVICE.NETWORK.<dns_domain> must fit DNS's 253 with 63-character names.`}},
	{"node_port_range one port", "cluster {\n  node_port_range = \"30000\"\n}\n", []string{
		`f.hcl:2,21-28: Invalid node_port_range; node_port_range "30000" is not a range of ports: write the first and the last port, 1 to 65535, first no larger than last, like "30000-32767" (the default).`}},
	{"node_port_range reversed", "cluster {\n  node_port_range = \"32767-30000\"\n}\n", []string{
		`f.hcl:2,21-34: Invalid node_port_range; node_port_range "32767-30000" is not a range of ports: write the first and the last port, 1 to 65535, first no larger than last, like "30000-32767" (the default).`}},
	{"node_port_range zero", "cluster {\n  node_port_range = \"0-100\"\n}\n", []string{
		`f.hcl:2,21-28: Invalid node_port_range; node_port_range "0-100" is not a range of ports: write the first and the last port, 1 to 65535, first no larger than last, like "30000-32767" (the default).`}},
	{"node_port_range too high", "cluster {\n  node_port_range = \"1-70000\"\n}\n", []string{
		`f.hcl:2,21-30: Invalid node_port_range; node_port_range "1-70000" is not a range of ports: write the first and the last port, 1 to 65535, first no larger than last, like "30000-32767" (the default).`}},
	{"node_port_range a number", "cluster {\n  node_port_range = 30000\n}\n", []string{
		`f.hcl:2,21-26: Incorrect attribute value type; Attribute "node_port_range" in the cluster block must be a string, not a number. Put the value in quotes.`}},
	{"snat", "network \"proj1\" {\n  snat = \"no\"\n}\n", []string{
		`f.hcl:2,10-14: Incorrect attribute value type; Attribute "snat" in network "proj1" must be a bool, not a string. Write true or false without quotes, e.g. snat = true.`}},
}

func TestServiceRefusals(t *testing.T) {
	for _, tc := range serviceRefusals {
		got := firstLines(t, tc.src)
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s:\n got: %q\nwant: %q", tc.name, got, tc.want)
		}
	}
}

// The accepted forms and their defaults: protocol tcp, target_port as a
// number or a name, no selector (nil: every workload of the network) or an
// empty one, an empty session_affinity (3h); cluster settings left unset
// stay empty for the servers' defaults; snat off is no_snat.
func TestServiceDecoded(t *testing.T) {
	src := `cluster {}
network "proj1" {
  snat = false
}
network "proj2" {}
service "web" {
  network = "proj1"
  selector { match_labels = { app = "web" } }
  vip     = "172.30.0.10"
  port {
    name        = "http"
    port        = 80
    target_port = "http"
    node_port   = 30080
  }
  port {
    port        = 53
    protocol    = "udp"
    target_port = 5353
  }
  session_affinity {}
}
service "web" {
  network  = "proj2"
  selector {}
  port { port = 80 }
  session_affinity { timeout = "90s" }
}
service "db" {
  network = "proj2"
  port { port = 5432 }
}
`
	doc, diags := Parse("s.hcl", []byte(src))
	if len(diags) > 0 {
		t.Fatalf("diagnostics: %v", diags)
	}
	if cs := doc.Cluster; cs.DnsDomain != "" || cs.NodePortMin != 0 || cs.NodePortMax != 0 {
		t.Errorf("unset cluster settings: dns_domain %q, node ports %d-%d; want them empty", cs.DnsDomain, cs.NodePortMin, cs.NodePortMax)
	}
	if !doc.Networks[0].NoSnat || doc.Networks[1].NoSnat {
		t.Errorf("no_snat = %v, %v; want true (snat = false), false (the default)", doc.Networks[0].NoSnat, doc.Networks[1].NoSnat)
	}
	req := doc.ApplyRequest()
	if len(req.Services) != 3 {
		t.Fatalf("%d services in the request, want 3", len(req.Services))
	}
	web, web2, db := req.Services[0], req.Services[1], req.Services[2]
	p0, p1 := web.Ports[0], web.Ports[1]
	if p0.Name != "http" || p0.Protocol != "tcp" || p0.Port != 80 || p0.TargetPort != 0 || p0.TargetPortName != "http" || p0.NodePort != 30080 {
		t.Errorf("port 1 = %v", p0)
	}
	if p1.Protocol != "udp" || p1.Port != 53 || p1.TargetPort != 5353 || p1.TargetPortName != "" || p1.NodePort != 0 {
		t.Errorf("port 2 = %v", p1)
	}
	if web.Vip != "172.30.0.10" || web.Selector.GetMatchLabels()["app"] != "web" || web.SessionAffinity.GetTimeoutSeconds() != 10800 {
		t.Errorf("web: vip %q, selector %v, affinity %v", web.Vip, web.Selector, web.SessionAffinity)
	}
	if web2.Selector == nil || len(web2.Selector.MatchLabels) != 0 || web2.SessionAffinity.GetTimeoutSeconds() != 90 {
		t.Errorf("proj2/web: selector %v (want empty, not nil), affinity %v (want 90s)", web2.Selector, web2.SessionAffinity)
	}
	if db.Selector != nil || db.Vip != "" || db.SessionAffinity != nil || db.Ports[0].Protocol != "tcp" || db.Ports[0].TargetPort != 0 {
		t.Errorf("db: selector %v, vip %q, affinity %v, port %v; want the defaults", db.Selector, db.Vip, db.SessionAffinity, db.Ports[0])
	}
	for key, want := range map[string]string{
		"":                    "s.hcl:6,1-14",
		"name":                "s.hcl:6,9-14",
		"network":             "s.hcl:7,13-20",
		"vip":                 "s.hcl:9,13-26",
		"selector":            "s.hcl:8,3-11",
		"port[0]":             "s.hcl:10,3-7",
		"port[0].target_port": "s.hcl:13,19-25",
		"port[0].node_port":   "s.hcl:14,19-24",
		"port[1].protocol":    "s.hcl:18,19-24",
		"session_affinity":    "s.hcl:21,3-19",
	} {
		if got := HCLRange(web.Ranges[key]).String(); got != want {
			t.Errorf("ranges[%q] = %s, want %s", key, got, want)
		}
	}
}

// The checks span files: the cluster block's node_port_range and
// service_cidr in one file apply to services in another, and a service
// declared in two files is refused in the later one.
func TestServicesAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"a.hcl": "cluster {\n  service_cidr    = \"172.31.0.0/16\"\n  node_port_range = \"31000-31999\"\n}\n" + svc("  port { port = 80 }\n"),
		"b.hcl": svc("  vip = \"172.30.0.10\"\n  port {\n    port      = 81\n    node_port = 30080\n  }\n"),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	doc, diags := LoadPaths([]string{dir})
	var got []string
	for _, d := range diags {
		got = append(got, strings.TrimPrefix(DiagnosticLine(d), dir+"/"))
	}
	a := filepath.Join(dir, "a.hcl")
	want := []string{
		`b.hcl:1,9-14: Duplicate service; A service named "web" on network "proj1" is already declared at ` + a + `:5,9-14; service names are unique within a network, so rename or remove one.`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(doc.Services) != 1 || doc.Services[0].Origin.GetFile() != a {
		t.Errorf("services %v, want a.hcl's only", doc.Services)
	}

	// Renamed, b.hcl's service is checked against a.hcl's settings.
	src := strings.Replace(svc("  vip = \"172.30.0.10\"\n  port {\n    port      = 81\n    node_port = 30080\n  }\n"), `"web"`, `"web2"`, 1)
	if err := os.WriteFile(filepath.Join(dir, "b.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, diags = LoadPaths([]string{dir})
	got = got[:0]
	for _, d := range diags {
		got = append(got, strings.ReplaceAll(DiagnosticLine(d), dir+"/", ""))
	}
	want = []string{
		`b.hcl:3,9-22: Invalid VIP; service "web2" on network "proj1": vip 172.30.0.10 is outside the cluster's service_cidr 172.31.0.0/16 (set at a.hcl:2,21-36); choose another address in it, or omit vip to have one allocated.`,
		`b.hcl:6,17-22: Invalid service port; service "web2" on network "proj1": port 1: node_port 30080 is outside the cluster's node-port range 31000-31999 (set at a.hcl:3,21-34).`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Settings the cluster block got wrong are reported there, and the
// services are not checked against a default the user did not ask for.
func TestServicesBrokenSettings(t *testing.T) {
	src := "cluster {\n  service_cidr    = \"172.30.0.0/33\"\n  node_port_range = \"3-1\"\n}\n" +
		svc("  vip = \"10.0.0.1\"\n  port {\n    port      = 80\n    node_port = 8080\n  }\n")
	got := firstLines(t, src)
	if len(got) != 2 || !strings.HasPrefix(got[0], "f.hcl:2,") || !strings.HasPrefix(got[1], "f.hcl:3,21-26: Invalid node_port_range") {
		t.Errorf("got %q, want the two cluster attributes refused and nothing else", got)
	}
}

// The same name on two networks, and the same port number over tcp and
// udp, are two services and two ports.
func TestServiceNamesPerNetwork(t *testing.T) {
	src := svc("  port { port = 53 }\n  port {\n    port     = 53\n    protocol = \"udp\"\n  }\n") +
		"service \"web\" {\n  network = \"proj2\"\n  port { port = 53 }\n}\n"
	doc, diags := Parse("f.hcl", []byte(src))
	if len(diags) > 0 || len(doc.Services) != 2 {
		t.Errorf("diagnostics %v, %d services; want none and 2", diags, len(doc.Services))
	}
}
