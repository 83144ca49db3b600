package main

// The diagnosis wired up: sdnctl's root command in-process against real
// sockets on loopback: a listener that accepts and never answers, and a
// gRPC server (plaintext or TLS with certificates from `sdnctl tls init`)
// whose ConfigService is a TEST DOUBLE that can cut its connections while
// a call is in flight, as a killed sdnd does. The same situations against
// a real sdnd are in integration/clierr_test.go.

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/sdn-dev/sdn/pki"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// tlsWords must not appear in an error that has nothing to do with TLS.
var tlsWords = []string{"TLS", "tls", "certificate"}

// silentListener accepts connections and never answers, as a stopped sdnd
// (SIGSTOP) does; it returns its address and a channel closed at the
// first connection.
func silentListener(t *testing.T) (string, <-chan struct{}) {
	t.Helper()
	accepted := make(chan struct{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if len(conns) == 0 {
				close(accepted)
			}
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return lis.Addr().String(), accepted
}

// cutter is a listener that can close every connection it accepted.
type cutter struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (c *cutter) Accept() (net.Conn, error) {
	conn, err := c.Listener.Accept()
	if err == nil {
		c.mu.Lock()
		c.conns = append(c.conns, conn)
		c.mu.Unlock()
	}
	return conn, err
}

// cut closes every connection, as the death of the server's process does.
func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
}

// scriptedConfig is a ConfigService double whose calls run the test's
// functions.
type scriptedConfig struct {
	sdnv1.UnimplementedConfigServiceServer
	apply func(context.Context, *sdnv1.ApplyRequest) (*sdnv1.ApplyResponse, error)
	list  func(context.Context) (*sdnv1.ListResponse, error)
}

func (s *scriptedConfig) Apply(ctx context.Context, req *sdnv1.ApplyRequest) (*sdnv1.ApplyResponse, error) {
	return s.apply(ctx, req)
}

func (s *scriptedConfig) List(ctx context.Context, _ *sdnv1.ListRequest) (*sdnv1.ListResponse, error) {
	return s.list(ctx)
}

// serveScripted serves cfg on loopback, with TLS when tlsCfg is given.
func serveScripted(t *testing.T, cfg *scriptedConfig, creds credentials.TransportCredentials) (string, *cutter) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{Listener: lis}
	var opts []grpc.ServerOption
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	s := grpc.NewServer(opts...)
	sdnv1.RegisterConfigServiceServer(s, cfg)
	go s.Serve(c)
	t.Cleanup(s.Stop)
	return lis.Addr().String(), c
}

// testPKI makes a cluster CA with server s1 (at 127.0.0.1) and client
// admin, and another CA with a client admin; it returns the two dirs.
func testPKI(t *testing.T) (dir, other string) {
	t.Helper()
	dir, other = filepath.Join(t.TempDir(), "tls"), filepath.Join(t.TempDir(), "other")
	for _, d := range []string{dir, other} {
		if r := sdnctl(t, "", "tls", "init", "--dir", d, "--servers", "s1=127.0.0.1", "--clients", "admin"); r.code != 0 {
			t.Fatalf("tls init: %+v", r)
		}
	}
	return dir, other
}

func tlsArgs(p pki.Paths) []string {
	return []string{"--tls-ca", p.CA, "--tls-cert", p.Cert, "--tls-key", p.Key}
}

func serverCreds(t *testing.T, dir string) credentials.TransportCredentials {
	t.Helper()
	cfg, err := pki.PathsFor(dir, pki.RoleServer, "s1").Server()
	if err != nil {
		t.Fatal(err)
	}
	return credentials.NewTLS(cfg)
}

// wantErr checks r failed with exit code 1 saying every one of want and
// none of notWant.
func wantErr(t *testing.T, what string, r result, want []string, notWant []string) {
	t.Helper()
	t.Logf("%s: %s", what, r.stderr)
	if r.code != 1 {
		t.Errorf("%s: exit %d, want 1; stderr:\n%s", what, r.code, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("%s: stderr does not say %q:\n%s", what, w, r.stderr)
		}
	}
	for _, w := range notWant {
		if strings.Contains(r.stderr, w) {
			t.Errorf("%s: stderr says %q:\n%s", what, w, r.stderr)
		}
	}
}

// TestSilentServer: a server that accepts the connection and never
// answers gets "no answer", not a TLS diagnosis, with and without TLS.
func TestSilentServer(t *testing.T) {
	writeFiles(t, map[string]string{"file.hcl": fileHCL})
	dir, _ := testPKI(t)
	addr, _ := silentListener(t)
	no := "no answer from sdnd at " + addr + " within 1s: it accepted the connection but sent nothing back, so the request was not sent"
	r := sdnctl(t, addr, "--timeout", "1s", "apply", "-f", "file.hcl")
	wantErr(t, "apply, plaintext", r, []string{no, "(raise --timeout if it is only slow)"}, tlsWords)
	r = sdnctl(t, addr, append(tlsArgs(pki.PathsFor(dir, pki.RoleClient, "admin")), "--timeout", "1s", "get", "networks")...)
	wantErr(t, "get, TLS", r, []string{no}, tlsWords)
}

// TestConnectionLostAfterSending: the server's connections close while
// a call is in flight, as when sdnd is killed during an apply: a write's
// outcome is unknown, a read failed; no TLS diagnosis either way.
func TestConnectionLostAfterSending(t *testing.T) {
	writeFiles(t, map[string]string{"file.hcl": fileHCL})
	dir, _ := testPKI(t)
	admin := tlsArgs(pki.PathsFor(dir, pki.RoleClient, "admin"))
	for _, withTLS := range []bool{false, true} {
		var creds credentials.TransportCredentials
		var args []string
		if withTLS {
			creds, args = serverCreds(t, dir), admin
		}
		var c *cutter
		cfg := &scriptedConfig{
			apply: func(context.Context, *sdnv1.ApplyRequest) (*sdnv1.ApplyResponse, error) {
				c.cut()
				return &sdnv1.ApplyResponse{Revision: 1}, nil
			},
			list: func(context.Context) (*sdnv1.ListResponse, error) {
				c.cut()
				return &sdnv1.ListResponse{}, nil
			},
		}
		var addr string
		addr, c = serveScripted(t, cfg, creds)
		name := map[bool]string{false: "plaintext", true: "TLS"}[withTLS]
		r := sdnctl(t, addr, append(args, "apply", "-f", "file.hcl")...)
		wantErr(t, "apply, "+name, r, []string{
			"lost the connection to sdnd at " + addr + " after sending the request (",
			"): the outcome is unknown; check with `sdnctl plan` or `sdnctl status`",
		}, tlsWords)
		for _, cmd := range [][]string{{"plan", "-f", "file.hcl"}, {"get", "networks"}} {
			r := sdnctl(t, addr, append(args, cmd...)...)
			wantErr(t, cmd[0]+", "+name, r, []string{
				"lost the connection to sdnd at " + addr + " during the call (", "): the read failed; try again",
			}, append(tlsWords, "outcome"))
		}
	}
}

// TestTLSMismatch: the hints for plaintext against TLS and back, and for
// a certificate the server does not trust, come from the connection, and
// still say what to do.
func TestTLSMismatch(t *testing.T) {
	dir, other := testPKI(t)
	never := &scriptedConfig{
		list: func(context.Context) (*sdnv1.ListResponse, error) {
			t.Error("the call reached the server")
			return &sdnv1.ListResponse{}, nil
		},
	}
	tlsAddr, _ := serveScripted(t, never, serverCreds(t, dir))
	plainAddr, _ := serveScripted(t, never, nil)
	admin := pki.PathsFor(dir, pki.RoleClient, "admin")
	// Trusts both CAs (so the server too), presents a certificate the
	// server does not trust.
	foreign := pki.PathsFor(other, pki.RoleClient, "admin")
	foreign.CA = filepath.Join(t.TempDir(), "both.crt")
	a, _ := os.ReadFile(admin.CA)
	b, _ := os.ReadFile(pki.CAPaths(other).Cert)
	if err := os.WriteFile(foreign.CA, append(a, b...), 0o644); err != nil {
		t.Fatal(err)
	}

	r := sdnctl(t, tlsAddr, "get", "networks")
	wantErr(t, "plaintext to TLS", r, []string{"cannot talk to sdnd at " + tlsAddr + ": it speaks mutual TLS and sdnctl ran without TLS: pass --tls-ca, --tls-cert and --tls-key"}, nil)
	r = sdnctl(t, plainAddr, append(tlsArgs(admin), "get", "networks")...)
	wantErr(t, "TLS to plaintext", r, []string{"cannot talk to sdnd at " + plainAddr + ": it speaks plaintext (sdnd --dev or --insecure-plaintext) and sdnctl dialled with TLS: drop --tls-ca"}, nil)
	r = sdnctl(t, tlsAddr, append(tlsArgs(foreign), "get", "networks")...)
	wantErr(t, "a certificate from another CA", r, []string{"your certificate (--tls-cert " + foreign.Cert + ")"}, nil)
	r = sdnctl(t, tlsAddr, append(tlsArgs(pki.PathsFor(other, pki.RoleClient, "admin")), "get", "networks")...)
	wantErr(t, "another cluster's CA", r, []string{"its certificate was not signed by the CA in --tls-ca (" + pki.CAPaths(other).Cert + ")"}, nil)
}
