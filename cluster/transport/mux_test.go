package transport

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sdn-dev/sdn/pki"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var hclogDiscard = hclog.NewNullLogger()

func listen(t *testing.T, cfg Config) *Mux {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	cfg.Logger = quiet
	m, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestOneAddressCarriesBoth: gRPC and raft reach the same port, each its
// own side.
func TestOneAddressCarriesBoth(t *testing.T) {
	a := listen(t, Config{})
	g := grpc.NewServer()
	healthpb.RegisterHealthServer(g, health.NewServer())
	go g.Serve(a.API())
	defer g.Stop()

	conn, err := grpc.NewClient(a.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("gRPC through the mux: %v", err)
	}

	// Raft between two muxes, through hashicorp/raft's network transport.
	b := listen(t, Config{})
	ta := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: a.Raft(), MaxPool: 2, Timeout: 5 * time.Second})
	tb := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: b.Raft(), MaxPool: 2, Timeout: 5 * time.Second})
	defer ta.Close()
	defer tb.Close()
	if ta.LocalAddr() != raft.ServerAddress(a.Addr().String()) {
		t.Fatalf("raft's local address %s, want the mux's %s", ta.LocalAddr(), a.Addr())
	}
	go func() {
		rpc := <-tb.Consumer()
		rpc.Respond(&raft.AppendEntriesResponse{Term: 7, Success: true}, nil)
	}()
	var resp raft.AppendEntriesResponse
	if err := ta.AppendEntries("b", tb.LocalAddr(), &raft.AppendEntriesRequest{Term: 7}, &resp); err != nil {
		t.Fatalf("raft through the mux: %v", err)
	}
	if !resp.Success || resp.Term != 7 {
		t.Fatalf("raft response %+v", resp)
	}
	// gRPC still works after raft took its connections.
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("gRPC after raft: %v", err)
	}
}

func TestAdvertise(t *testing.T) {
	if _, err := Listen(Config{Addr: "0.0.0.0:0", Logger: quiet}); err == nil || !strings.Contains(err.Error(), "--raft-advertise") {
		t.Fatalf("wildcard listen without advertise: %v", err)
	}
	if _, err := Listen(Config{Addr: "127.0.0.1:0", Advertise: "0.0.0.0:7420", Logger: quiet}); err == nil {
		t.Fatal("wildcard advertise accepted")
	}
	m := listen(t, Config{Addr: "0.0.0.0:0", Advertise: "10.1.2.3:7420"})
	if got := m.Addr().String(); got != "10.1.2.3:7420" {
		t.Fatalf("advertised %s", got)
	}
	if got := m.Raft().Addr().String(); got != "10.1.2.3:7420" {
		t.Fatalf("raft's address %s", got)
	}
}

// TestSilentConnection: a connection that sends nothing does not block
// others.
func TestSilentConnection(t *testing.T) {
	m := listen(t, Config{})
	silent, err := net.Dial("tcp", m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	b := listen(t, Config{})
	go func() {
		c, err := m.Raft().Accept()
		if err == nil {
			c.Write([]byte("ok"))
			c.Close()
		}
	}()
	c, err := b.Raft().Dial(raft.ServerAddress(m.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ok" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

// TestRaftTLS: with TLS configured, raft connections are wrapped after the
// type byte (the seam mutual TLS uses).
func TestRaftTLS(t *testing.T) {
	cert := selfSigned(t)
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	srv := &tls.Config{Certificates: []tls.Certificate{cert}}
	cli := &tls.Config{RootCAs: pool} // ServerName comes from the address dialled
	a := listen(t, Config{ServerTLS: srv, ClientTLS: cli})
	b := listen(t, Config{ServerTLS: srv, ClientTLS: cli})
	go func() {
		c, err := a.Raft().Accept()
		if err == nil {
			io.Copy(c, c)
		}
	}()
	c, err := b.Raft().Dial(raft.ServerAddress(a.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo over TLS: %q, %v", buf, err)
	}
	if st := c.(*tls.Conn).ConnectionState(); !st.HandshakeComplete {
		t.Fatal("no TLS handshake")
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sdn-test"}, DNSNames: []string{"sdn-test"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// syncWriter collects log output written from several goroutines.
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestRaftMutualTLS: with sdnd's certificates (pki), raft between servers
// is mutual TLS: a server reaches another, while a plaintext raft dial, an
// agent's certificate and a certificate from another CA are refused at the
// handshake (and the refusing server logs why), and a server does not
// talk raft to a listener presenting a non-server certificate.
func TestRaftMutualTLS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	other := filepath.Join(t.TempDir(), "other")
	for _, d := range []string{dir, other} {
		if err := pki.InitCA(d); err != nil {
			t.Fatal(err)
		}
	}
	issue := func(d string, role pki.Role, name string) pki.Paths {
		if _, err := pki.Issue(d, role, name, []string{"127.0.0.1"}, pki.DefaultValidity); err != nil {
			t.Fatal(err)
		}
		return pki.PathsFor(d, role, name)
	}
	// A mux as sdnd configures it for the holder of p.
	muxFor := func(p pki.Paths, log io.Writer) *Mux {
		srv, err := p.Server()
		if err != nil {
			t.Fatal(err)
		}
		cli, err := p.Client()
		if err != nil {
			t.Fatal(err)
		}
		m, err := Listen(Config{Addr: "127.0.0.1:0", ServerTLS: pki.RequirePeerRole(srv, pki.RoleServer), ClientTLS: cli,
			Logger: slog.New(slog.NewTextHandler(log, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	transport := func(m *Mux) *raft.NetworkTransport {
		tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: m.Raft(), MaxPool: 2, Timeout: 2 * time.Second, Logger: hclogDiscard})
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	s1log := &syncWriter{}
	s1 := muxFor(issue(dir, pki.RoleServer, "s1"), s1log)
	s2 := muxFor(issue(dir, pki.RoleServer, "s2"), io.Discard)
	t1 := transport(s1)
	go func() {
		for rpc := range t1.Consumer() {
			rpc.Respond(&raft.AppendEntriesResponse{Term: 7, Success: true}, nil)
		}
	}()
	appendTo := func(from *raft.NetworkTransport) error {
		var resp raft.AppendEntriesResponse
		err := from.AppendEntries("s1", t1.LocalAddr(), &raft.AppendEntriesRequest{Term: 7}, &resp)
		if err == nil && !resp.Success {
			return errors.New("not acknowledged")
		}
		return err
	}
	if err := appendTo(transport(s2)); err != nil {
		t.Fatalf("s2 → s1 AppendEntries over mutual TLS: %v", err)
	}

	refused := []struct {
		name, log string
		mux       *Mux
	}{
		{"plaintext", "first record does not look like a TLS handshake", listen(t, Config{})},
		{"agent certificate", "peer agent/h1 is refused: only server certificates are accepted here", muxFor(issue(dir, pki.RoleAgent, "h1"), io.Discard)},
		// s9 trusts both CAs, so it gets as far as presenting its
		// certificate, which s1's CA did not sign.
		{"server certificate of another CA", "certificate signed by unknown authority", muxFor(bundled(t, issue(other, pki.RoleServer, "s9"), dir), io.Discard)},
	}
	for _, r := range refused {
		if err := appendTo(transport(r.mux)); err == nil {
			t.Errorf("%s: AppendEntries reached s1's raft", r.name)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(s1log.String(), r.log) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !strings.Contains(s1log.String(), r.log) {
			t.Errorf("%s: s1's log does not say %q:\n%s", r.name, r.log, s1log.String())
		}
	}

	// s1 dialling a listener whose certificate is an agent's (issued with
	// an address) refuses it before sending anything.
	h2 := muxFor(issue(dir, pki.RoleAgent, "h2"), io.Discard)
	_, err := s1.Raft().Dial(raft.ServerAddress(h2.Addr().String()), 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), "only server certificates are accepted here") {
		t.Fatalf("s1 dialled a non-server: %v", err)
	}
}

// bundled returns p with a CA file that also trusts the CA of dir.
func bundled(t *testing.T, p pki.Paths, dir string) pki.Paths {
	t.Helper()
	a, err := os.ReadFile(p.CA)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(pki.CAPaths(dir).Cert)
	if err != nil {
		t.Fatal(err)
	}
	p.CA = filepath.Join(t.TempDir(), "bundle.crt")
	if err := os.WriteFile(p.CA, append(a, b...), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
