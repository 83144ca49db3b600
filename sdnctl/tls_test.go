package main

import (
	"context"
	"strings"
	"testing"
)

// TestTLSFlags: the three files go together, from flags or the
// environment; a client pair that does not load stops sdnctl before it
// dials.
func TestTLSFlags(t *testing.T) {
	r := sdnctl(t, "127.0.0.1:1", "--tls-ca", "/x/ca.crt", "get", "networks")
	if r.code != 2 || !strings.Contains(r.stderr, "--tls-ca given without --tls-cert and --tls-key") {
		t.Errorf("--tls-ca alone: %+v", r)
	}
	env := map[string]string{"SDN_TLS_CA": "/nonexistent/ca.crt", "SDN_TLS_CERT": "/x/c.crt", "SDN_TLS_KEY": "/x/c.key"}
	var out, errb strings.Builder
	code := run(context.Background(), []string{"--server", "127.0.0.1:1", "get", "networks"}, &out, &errb, func(k string) string { return env[k] })
	if code != 1 || !strings.Contains(errb.String(), "TLS: read the cluster CA certificate (--tls-ca): open /nonexistent/ca.crt") {
		t.Errorf("TLS files from the environment: %d %s", code, errb.String())
	}
}
