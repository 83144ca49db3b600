package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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

// TestTLSHints: connection failures caused by TLS are explained.
func TestTLSHints(t *testing.T) {
	plain := &app{server: "s:1", timeout: time.Second}
	withTLS := &app{server: "s:1", timeout: time.Second, tlsCA: "ca.crt", tlsCert: "me.crt", tlsKey: "me.key"}
	for _, c := range []struct {
		a    *app
		msg  string
		want string
	}{
		{plain, `connection error: desc = "error reading server preface: connection reset by peer"`, "it speaks mutual TLS and sdnctl ran without TLS: pass --tls-ca"},
		{plain, `write tcp 127.0.0.1:37432->127.0.0.1:17420: write: broken pipe`, "it speaks mutual TLS and sdnctl ran without TLS"},
		{plain, `connection error: desc = "transport: Error while dialing: dial tcp: connect: connection refused"`, "cannot reach sdnd at s:1"},
		{withTLS, `connection error: desc = "transport: authentication handshake failed: tls: first record does not look like a TLS handshake"`, "it speaks plaintext (sdnd --dev or --insecure-plaintext)"},
		{withTLS, `connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"`, "was not signed by the CA in --tls-ca (ca.crt)"},
		{withTLS, `connection error: desc = "error reading server preface: remote error: tls: unknown certificate authority"`, "it does not trust your certificate (--tls-cert me.crt)"},
		{withTLS, `write tcp 127.0.0.1:1->127.0.0.1:2: write: broken pipe`, "most likely it refused your certificate (--tls-cert me.crt)"},
		{withTLS, `connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate is valid for 10.0.0.1, not 10.0.0.9"`, "its certificate does not name the address dialled"},
		{withTLS, `connection error: desc = "transport: authentication handshake failed: peer agent/h1 is refused: only server certificates are accepted here"`, "is --server the address of an sdnd server?"},
	} {
		err := c.a.rpcError(context.Background(), status.Error(codes.Unavailable, c.msg))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.msg, err, c.want)
		}
	}
	err := withTLS.rpcError(context.Background(), status.Error(codes.PermissionDenied, "agent/h1 may not call ConfigService/Apply"))
	if err == nil || err.Error() != "sdnd at s:1 refused the call: agent/h1 may not call ConfigService/Apply" {
		t.Errorf("PermissionDenied: %v", err)
	}
}
