package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/pki"
)

// TestSecurity: the TLS files must name a role the process runs and its
// node name; plaintext only when asked for.
func TestSecurity(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	if err := pki.InitCA(dir); err != nil {
		t.Fatal(err)
	}
	for _, id := range []pki.Identity{{Role: pki.RoleServer, Name: "s1"}, {Role: pki.RoleAgent, Name: "h1"}, {Role: pki.RoleClient, Name: "admin"}} {
		if _, err := pki.Issue(dir, id.Role, id.Name, nil, pki.DefaultValidity); err != nil {
			t.Fatal(err)
		}
	}
	files := func(role pki.Role, name string) []string {
		p := pki.PathsFor(dir, role, name)
		return []string{"--tls-ca", p.CA, "--tls-cert", p.Cert, "--tls-key", p.Key}
	}
	server := []string{"--server", "--bootstrap", "--listen", "127.0.0.1:7420"}
	agent := []string{"--agent", "--servers", "127.0.0.1:7420", "--underlay-iface", "eth0"}
	tests := []struct {
		name string
		args []string
		want string // "" = TLS on; "plain:FLAG" = plaintext; else an error substring
	}{
		{"server", append(append([]string{"--node-name", "s1"}, server...), files(pki.RoleServer, "s1")...), ""},
		{"server and agent with the server's pair", append(append(append([]string{"--node-name", "s1"}, server...), agent[3:]...), append([]string{"--agent"}, files(pki.RoleServer, "s1")...)...), ""},
		{"agent", append(append([]string{"--node-name", "h1"}, agent...), files(pki.RoleAgent, "h1")...), ""},
		{"dev", []string{"--dev"}, "plain:--dev"},
		{"dev with TLS", append([]string{"--dev", "--node-name", "s1"}, files(pki.RoleServer, "s1")...), ""},
		{"insecure", append([]string{"--insecure-plaintext"}, server...), "plain:--insecure-plaintext"},
		{"server with an agent's pair", append(append([]string{"--node-name", "h1"}, server...), files(pki.RoleAgent, "h1")...),
			"is agent/h1's certificate; sdnd --server needs its server certificate, server-h1.crt"},
		{"agent with a client's pair", append(append([]string{"--node-name", "admin"}, agent...), files(pki.RoleClient, "admin")...),
			"is client/admin's certificate; sdnd --agent needs the host's agent certificate"},
		{"agent with another host's pair", append(append([]string{"--node-name", "h2"}, agent...), files(pki.RoleAgent, "h1")...),
			"names agent/h1 but --node-name is h2"},
		{"missing file", append(append([]string{"--node-name", "s1"}, server...), "--tls-ca", "/nonexistent/ca.crt", "--tls-cert", pki.PathsFor(dir, pki.RoleServer, "s1").Cert, "--tls-key", pki.PathsFor(dir, pki.RoleServer, "s1").Key),
			"read the cluster CA certificate (--tls-ca)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, testEnv(nil))
			if err != nil {
				t.Fatal(err)
			}
			sec, err := security(o)
			switch {
			case tt.want == "":
				if err != nil || !sec.tls() || sec.clientTLS == nil || (o.server && (sec.serverTLS == nil || sec.raftTLS == nil)) {
					t.Fatalf("want TLS, got %+v, %v", sec, err)
				}
			case strings.HasPrefix(tt.want, "plain:"):
				if err != nil || sec.tls() || sec.plaintext != strings.TrimPrefix(tt.want, "plain:") {
					t.Fatalf("want plaintext by %s, got %+v, %v", tt.want, sec, err)
				}
			default:
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("want an error with %q, got %v", tt.want, err)
				}
			}
		})
	}
}
