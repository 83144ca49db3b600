package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testCluster is a CA directory with a server s1 (for 127.0.0.1), an agent
// h1 and a client admin.
func testCluster(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tls")
	if err := InitCA(dir); err != nil {
		t.Fatal(err)
	}
	mustIssue(t, dir, RoleServer, "s1")
	mustIssue(t, dir, RoleAgent, "h1")
	mustIssue(t, dir, RoleClient, "admin")
	return dir
}

func mustIssue(t *testing.T, dir string, role Role, name string, hosts ...string) Issued {
	t.Helper()
	is, err := Issue(dir, role, name, hosts, DefaultValidity)
	if err != nil {
		t.Fatal(err)
	}
	return is
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := parseCerts(path, data)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

func TestInitAndIssueWriteFilesWithModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "tls")
	if err := InitCA(dir); err != nil {
		t.Fatal(err)
	}
	ca := CAPaths(dir)
	s1 := mustIssue(t, dir, RoleServer, "s1", "10.0.0.1:7421", "S1.Example.com", "10.0.0.1")
	h1 := mustIssue(t, dir, RoleAgent, "h1")
	admin := mustIssue(t, dir, RoleClient, "admin")

	for path, want := range map[string]fs.FileMode{
		dir: 0o700, ca.Key: 0o600, ca.Cert: 0o644,
		s1.Key: 0o600, s1.Cert: 0o644, h1.Key: 0o600, admin.Key: 0o600,
	} {
		if got := mode(t, path); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
	}
	if s1.Cert != filepath.Join(dir, "server-s1.crt") || h1.Key != filepath.Join(dir, "agent-h1.key") || admin.CA != ca.Cert {
		t.Errorf("unexpected paths: %+v %+v %+v", s1.Paths, h1.Paths, admin.Paths)
	}

	cac := readCert(t, ca.Cert)
	if !cac.IsCA || !cac.MaxPathLenZero || !strings.HasPrefix(cac.Subject.CommonName, "sdn cluster CA ") {
		t.Errorf("CA certificate: IsCA=%v MaxPathLenZero=%v CN=%q", cac.IsCA, cac.MaxPathLenZero, cac.Subject.CommonName)
	}
	if _, ok := cac.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("CA key is %T, want ECDSA", cac.PublicKey)
	}

	sc := readCert(t, s1.Cert)
	if got := sc.URIs[0].String(); len(sc.URIs) != 1 || got != "spiffe://sdn/server/s1" {
		t.Errorf("server URIs = %v", sc.URIs)
	}
	if sc.Subject.CommonName != "s1" || !slices.Equal(sc.Subject.OrganizationalUnit, []string{"server"}) {
		t.Errorf("server subject = %v", sc.Subject)
	}
	if want := []string{"s1", "s1.example.com", "localhost"}; !slices.Equal(sc.DNSNames, want) {
		t.Errorf("server DNS names = %v, want %v", sc.DNSNames, want)
	}
	var ips []string
	for _, ip := range sc.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"10.0.0.1", "127.0.0.1", "::1"}; !slices.Equal(ips, want) {
		t.Errorf("server IPs = %v, want %v", ips, want)
	}
	if want := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}; !slices.Equal(sc.ExtKeyUsage, want) {
		t.Errorf("server EKU = %v", sc.ExtKeyUsage)
	}
	if want := []string{"s1", "10.0.0.1", "s1.example.com", "localhost", "127.0.0.1", "::1"}; !slices.Equal(s1.Hosts, want) {
		t.Errorf("Issued.Hosts = %v, want %v", s1.Hosts, want)
	}

	ac := readCert(t, h1.Cert)
	if len(ac.DNSNames)+len(ac.IPAddresses) != 0 || !slices.Equal(ac.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("agent without hosts: SANs %v %v, EKU %v", ac.DNSNames, ac.IPAddresses, ac.ExtKeyUsage)
	}
	if id, err := IdentityOf(readCert(t, admin.Cert)); err != nil || id != (Identity{RoleClient, "admin"}) {
		t.Errorf("client identity = %v, %v", id, err)
	}
	if _, err := readCert(t, admin.Cert).Verify(x509.VerifyOptions{Roots: mustPool(t, ca.Cert), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify against the CA: %v", err)
	}
}

func mustPool(t *testing.T, caFile string) *x509.CertPool {
	t.Helper()
	p, err := loadPool(caFile)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInitCARefusesToReplaceACA(t *testing.T) {
	dir := t.TempDir()
	if err := InitCA(dir); err != nil {
		t.Fatal(err)
	}
	ca := CAPaths(dir)
	before, _ := os.ReadFile(ca.Cert)
	err := InitCA(dir)
	if err == nil || !strings.Contains(err.Error(), "already exists") || !strings.Contains(err.Error(), "tls issue") {
		t.Fatalf("second InitCA: %v, want a refusal that points to tls issue", err)
	}
	if after, _ := os.ReadFile(ca.Cert); !bytes.Equal(before, after) {
		t.Error("the refused InitCA changed ca.crt")
	}
	// A key alone is enough to refuse.
	dir2 := t.TempDir()
	os.WriteFile(filepath.Join(dir2, "ca.key"), []byte("x"), 0o600)
	if err := InitCA(dir2); err == nil {
		t.Error("InitCA replaced a lone ca.key")
	}
	if exists(filepath.Join(dir2, "ca.crt")) {
		t.Error("the refused InitCA wrote ca.crt")
	}
}

func TestIssueRefusesToReplaceButReissueDoes(t *testing.T) {
	dir := testCluster(t)
	p := PathsFor(dir, RoleAgent, "h1")
	before := readCert(t, p.Cert)
	_, err := Issue(dir, RoleAgent, "h1", nil, DefaultValidity)
	if err == nil || !strings.Contains(err.Error(), "--replace") {
		t.Fatalf("Issue over an existing pair: %v, want a refusal mentioning --replace", err)
	}
	if after := readCert(t, p.Cert); after.SerialNumber.Cmp(before.SerialNumber) != 0 {
		t.Error("the refused Issue replaced the certificate")
	}
	if _, err := Reissue(dir, RoleAgent, "h1", []string{"10.0.1.1"}, DefaultValidity); err != nil {
		t.Fatal(err)
	}
	after := readCert(t, p.Cert)
	if after.SerialNumber.Cmp(before.SerialNumber) == 0 || len(after.IPAddresses) != 1 {
		t.Errorf("Reissue did not write a new certificate with the host: %v", after.IPAddresses)
	}
	if mode(t, p.Key) != 0o600 || mode(t, p.Cert) != 0o644 {
		t.Errorf("modes after Reissue: key %v cert %v", mode(t, p.Key), mode(t, p.Cert))
	}
	if _, err := tls.LoadX509KeyPair(p.Cert, p.Key); err != nil {
		t.Errorf("reissued pair does not load: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

func TestIssueRejectsBadRequests(t *testing.T) {
	dir := testCluster(t)
	for _, tc := range []struct {
		role     Role
		name     string
		hosts    []string
		validity time.Duration
		want     string
	}{
		{RoleServer, "S1", nil, DefaultValidity, "lowercase"},
		{RoleServer, "", nil, DefaultValidity, "empty"},
		{RoleAgent, "h_1", nil, DefaultValidity, "only lowercase letters"},
		{RoleAgent, "-h1", nil, DefaultValidity, "starts or ends with '-'"},
		{RoleAgent, strings.Repeat("a", 64), nil, DefaultValidity, "longer than 63"},
		{"admin", "x", nil, DefaultValidity, "unknown role"},
		{RoleClient, "bob", []string{"10.0.0.1"}, DefaultValidity, "names a user, not hosts"},
		{RoleServer, "s2", []string{"0.0.0.0"}, DefaultValidity, "unspecified"},
		{RoleServer, "s2", []string{"[::]:7420"}, DefaultValidity, "unspecified"},
		{RoleServer, "s2", []string{"*.example.com"}, DefaultValidity, "wildcard"},
		{RoleServer, "s2", []string{"10.0.0.300"}, DefaultValidity, "not a valid one"},
		{RoleServer, "s2", []string{"fe80::1%eth0"}, DefaultValidity, "zone"},
		{RoleServer, "s2", []string{"a b"}, DefaultValidity, "neither an IP address nor a DNS name"},
		{RoleServer, "s2", []string{""}, DefaultValidity, "empty host"},
		{RoleServer, "s2", nil, 0, "not positive"},
		{RoleServer, "s2", nil, 20 * 365 * 24 * time.Hour, "after the CA itself expires"},
	} {
		_, err := Issue(dir, tc.role, tc.name, tc.hosts, tc.validity)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Issue(%s, %q, %q, %s) = %v, want an error containing %q", tc.role, tc.name, tc.hosts, tc.validity, err, tc.want)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "server-s2.*")); len(m) > 0 {
		t.Errorf("refused requests left files: %v", m)
	}
	_, err := Issue(t.TempDir(), RoleAgent, "h9", nil, DefaultValidity)
	if err == nil || !strings.Contains(err.Error(), "tls init") {
		t.Errorf("Issue without a CA: %v, want a hint to run tls init", err)
	}
}

func TestNormalizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1":         "10.0.0.1",
		"10.0.0.1:7421":    "10.0.0.1",
		"[2001:db8::1]:80": "2001:db8::1",
		"[2001:db8::1]":    "2001:db8::1",
		"2001:DB8::1":      "2001:db8::1",
		"::ffff:10.0.0.1":  "10.0.0.1",
		"S1.Example.COM.":  "s1.example.com",
		" s1 ":             "s1",
	} {
		got, err := normalizeHost(in)
		if err != nil || got != want {
			t.Errorf("normalizeHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// selfSigned makes a certificate carrying uris, to test identity parsing.
func selfSigned(t *testing.T, uris ...string) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func TestIdentityOf(t *testing.T) {
	for _, tc := range []struct {
		uris []string
		want string // identity, or a piece of the error
	}{
		{[]string{"spiffe://sdn/server/s1"}, "server/s1"},
		{[]string{"spiffe://sdn/agent/h1.example.com"}, "agent/h1.example.com"},
		{[]string{"https://example.com/x", "spiffe://sdn/client/admin"}, "client/admin"},
		{nil, "has no sdn identity"},
		{[]string{"spiffe://other/server/s1"}, "not of the form"},
		{[]string{"spiffe://sdn/server"}, "not of the form"},
		{[]string{"spiffe://sdn/server/s1/x"}, "only lowercase"},
		{[]string{"spiffe://sdn/boss/s1"}, "unknown role"},
		{[]string{"spiffe://sdn/server/S1"}, "only lowercase"},
		{[]string{"spiffe://sdn/server/s1", "spiffe://sdn/server/s2"}, "exactly one"},
	} {
		id, err := IdentityOf(selfSigned(t, tc.uris...))
		got := id.String()
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("IdentityOf(%v) = %q, want %q", tc.uris, got, tc.want)
		}
	}
	if _, err := PeerIdentity(tls.ConnectionState{}); err == nil || !strings.Contains(err.Error(), "no certificate") {
		t.Errorf("PeerIdentity without a certificate: %v", err)
	}
	st := tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{selfSigned(t, "spiffe://sdn/server/s1")}}
	if _, err := PeerIdentity(st); err == nil || !strings.Contains(err.Error(), "not verified") {
		t.Errorf("PeerIdentity of an unverified certificate: %v", err)
	}
}

func TestPathsCheck(t *testing.T) {
	if err := (Paths{}).Check(); err == nil || !strings.Contains(err.Error(), "tls init") {
		t.Errorf("empty Paths: %v", err)
	}
	if err := (Paths{CA: "a", Cert: "b"}).Check(); err == nil || !strings.Contains(err.Error(), "--tls-key") {
		t.Errorf("Paths without key: %v", err)
	}
	if err := PathsFor("d", RoleAgent, "h1").Check(); err != nil {
		t.Error(err)
	}
	if !(Paths{}).IsZero() || PathsFor("d", RoleAgent, "h1").IsZero() {
		t.Error("IsZero is wrong")
	}
}

// The TLS tests below run real handshakes over loopback.

// tlsServer accepts TLS connections with cfg. For each it reports the
// handshake's error (nil if it succeeded) and, after a good handshake,
// writes the peer's identity and the serial of the certificate this side
// presented, then closes.
type tlsServer struct {
	addr string
	errs chan error
}

func serveTLS(t *testing.T, cfg *tls.Config) *tlsServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s := &tlsServer{addr: l.Addr().String(), errs: make(chan error, 16)}
	tl := tls.NewListener(l, cfg)
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				c.SetDeadline(time.Now().Add(10 * time.Second))
				err := tc.Handshake()
				s.errs <- err
				if err != nil {
					return
				}
				id, _ := PeerIdentity(tc.ConnectionState())
				io.WriteString(c, id.String()+" "+servedSerial(cfg))
			}()
		}
	}()
	return s
}

// servedSerial is the serial of the certificate cfg presents now.
func servedSerial(cfg *tls.Config) string {
	var c *tls.Certificate
	if cfg.GetCertificate != nil {
		c, _ = cfg.GetCertificate(nil)
	} else if len(cfg.Certificates) > 0 {
		c = &cfg.Certificates[0]
	}
	if c == nil || c.Leaf == nil {
		return "?"
	}
	return c.Leaf.SerialNumber.String()
}

// dial connects with cfg and returns what the server wrote: its view of
// the client's identity and its certificate's serial.
func dial(t *testing.T, addr string, cfg *tls.Config) (string, error) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// In TLS 1.3 the client finishes before the server has checked the
	// client's certificate; a refusal shows on the first read.
	b, err := io.ReadAll(c)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func (s *tlsServer) serverErr(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.errs:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the server saw no handshake")
		return nil
	}
}

func clientTLS(t *testing.T, dir string, role Role, name string) *tls.Config {
	t.Helper()
	p := PathsFor(dir, role, name)
	cfg, err := ClientTLS(p.Cert, p.Key, p.CA)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func serverTLS(t *testing.T, dir string, role Role, name string) *tls.Config {
	t.Helper()
	p := PathsFor(dir, role, name)
	cfg, err := ServerTLS(p.Cert, p.Key, p.CA)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// rawClient is a client config presenting the pair in certFile/keyFile
// without ClientTLS's checks, trusting the CA in caFile.
func rawClient(t *testing.T, certFile, keyFile, caFile string) *tls.Config {
	t.Helper()
	cfg := &tls.Config{RootCAs: mustPool(t, caFile), MinVersion: tls.VersionTLS13}
	if certFile != "" {
		kp, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		// Always present it (Go's client would otherwise send only a
		// certificate from a CA the server names).
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &kp, nil }
	}
	return cfg
}

func TestServerAcceptsMembersAndRejectsOthers(t *testing.T) {
	dir := testCluster(t)
	srv := serveTLS(t, serverTLS(t, dir, RoleServer, "s1"))
	ca := CAPaths(dir).CA

	for _, id := range []Identity{{RoleClient, "admin"}, {RoleAgent, "h1"}, {RoleServer, "s1"}} {
		got, err := dial(t, srv.addr, clientTLS(t, dir, id.Role, id.Name))
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if !strings.HasPrefix(got, id.String()+" ") {
			t.Errorf("%s: the server saw %q", id, got)
		}
		if err := srv.serverErr(t); err != nil {
			t.Errorf("%s: server handshake: %v", id, err)
		}
	}

	// A certificate from another cluster's CA.
	other := filepath.Join(t.TempDir(), "other")
	if err := InitCA(other); err != nil {
		t.Fatal(err)
	}
	stranger := mustIssue(t, other, RoleClient, "admin")
	if _, err := ClientTLS(stranger.Cert, stranger.Key, ca); err == nil || !strings.Contains(err.Error(), "not signed by the CA") {
		t.Errorf("ClientTLS with another CA's certificate: %v", err)
	}
	if _, err := dial(t, srv.addr, rawClient(t, stranger.Cert, stranger.Key, ca)); err == nil {
		t.Error("a client with another CA's certificate got through")
	}
	if err := srv.serverErr(t); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("server on another CA's client: %v, want unknown authority", err)
	}

	// No certificate at all.
	if _, err := dial(t, srv.addr, rawClient(t, "", "", ca)); err == nil {
		t.Error("a client without a certificate got through")
	}
	if err := srv.serverErr(t); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("server on a client without a certificate: %v", err)
	}

	// An expired certificate from the right CA.
	old, err := issue(dir, request{id: Identity{RoleClient, "old"}, validity: 24 * time.Hour, now: time.Now().Add(-48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ClientTLS(old.Cert, old.Key, ca); err == nil || !strings.Contains(err.Error(), "renew it") {
		t.Errorf("ClientTLS with an expired certificate: %v, want advice to renew", err)
	}
	if _, err := dial(t, srv.addr, rawClient(t, old.Cert, old.Key, ca)); err == nil {
		t.Error("a client with an expired certificate got through")
	}
	if err := srv.serverErr(t); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("server on an expired client certificate: %v", err)
	}

	// TLS 1.2 is not offered.
	cfg := clientTLS(t, dir, RoleClient, "admin")
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	if _, err := dial(t, srv.addr, cfg); err == nil {
		t.Error("a TLS 1.2 client got through")
	}
	srv.serverErr(t)
}

func TestClientVerifiesTheServer(t *testing.T) {
	dir := testCluster(t)
	admin := clientTLS(t, dir, RoleClient, "admin")

	// A server of another cluster.
	other := filepath.Join(t.TempDir(), "other")
	if err := InitCA(other); err != nil {
		t.Fatal(err)
	}
	mustIssue(t, other, RoleServer, "s1")
	otherCfg := serverTLS(t, other, RoleServer, "s1")
	otherCfg.ClientAuth = tls.RequestClientCert // so only the client's check decides
	srv := serveTLS(t, otherCfg)
	if _, err := dial(t, srv.addr, admin); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("dialing another cluster's server: %v, want unknown authority", err)
	}

	// A member of the right CA that is not a server: an agent issued with
	// hosts may serve TLS, but not pose as an sdnd server.
	mustIssue(t, dir, RoleAgent, "h2", "127.0.0.1")
	srv = serveTLS(t, serverTLS(t, dir, RoleAgent, "h2"))
	if _, err := dial(t, srv.addr, admin); err == nil || !strings.Contains(err.Error(), "only server certificates") {
		t.Errorf("dialing an agent as a server: %v, want a role refusal", err)
	}
	// That agent's certificate is accepted where agents may serve.
	if _, err := dial(t, srv.addr, RequirePeerRole(admin, RoleAgent)); err != nil {
		t.Errorf("dialing the agent with RequirePeerRole(agent): %v", err)
	}

	// The right server, dialed by a name its certificate does not have.
	srv = serveTLS(t, serverTLS(t, dir, RoleServer, "s1"))
	wrong := admin.Clone()
	wrong.ServerName = "s2.example.com"
	if _, err := dial(t, srv.addr, wrong); err == nil || !strings.Contains(err.Error(), "not s2.example.com") {
		t.Errorf("dialing s1 as s2.example.com: %v", err)
	}
	// ...and by names it has: its node name and localhost.
	for _, name := range []string{"s1", "localhost", "127.0.0.1"} {
		c := admin.Clone()
		c.ServerName = name
		if _, err := dial(t, srv.addr, c); err != nil {
			t.Errorf("dialing s1 as %s: %v", name, err)
		}
	}
}

func TestServerTLSRefusesCertificatesThatCannotServe(t *testing.T) {
	dir := testCluster(t)
	for _, id := range []Identity{{RoleClient, "admin"}, {RoleAgent, "h1"}} {
		p := PathsFor(dir, id.Role, id.Name)
		if _, err := ServerTLS(p.Cert, p.Key, p.CA); err == nil || !strings.Contains(err.Error(), "may not be used to serve") {
			t.Errorf("ServerTLS with %s's certificate: %v", id, err)
		}
	}
	p := PathsFor(dir, RoleServer, "s1")
	if _, err := ServerTLS(p.Cert, PathsFor(dir, RoleAgent, "h1").Key, p.CA); err == nil || !strings.Contains(err.Error(), "private key does not match") {
		t.Errorf("ServerTLS with another's key: %v", err)
	}
	if _, err := ServerTLS(p.Cert, p.Key, p.Cert); err == nil || !strings.Contains(err.Error(), "not a CA certificate") {
		t.Errorf("ServerTLS with a leaf as the CA: %v", err)
	}
	if _, err := ServerTLS(p.Cert, p.Key, filepath.Join(dir, "nope.crt")); err == nil || !strings.Contains(err.Error(), "--tls-ca") {
		t.Errorf("ServerTLS without a CA file: %v", err)
	}
}

// Raft's listener admits servers only.
func TestRequirePeerRole(t *testing.T) {
	dir := testCluster(t)
	mustIssue(t, dir, RoleServer, "s2")
	raft := serveTLS(t, RequirePeerRole(serverTLS(t, dir, RoleServer, "s1"), RoleServer))

	got, err := dial(t, raft.addr, clientTLS(t, dir, RoleServer, "s2"))
	if err != nil || !strings.HasPrefix(got, "server/s2 ") {
		t.Fatalf("server s2 to raft: %q, %v", got, err)
	}
	if err := raft.serverErr(t); err != nil {
		t.Fatal(err)
	}
	for _, id := range []Identity{{RoleAgent, "h1"}, {RoleClient, "admin"}} {
		if _, err := dial(t, raft.addr, clientTLS(t, dir, id.Role, id.Name)); err == nil {
			t.Errorf("%s got through to raft", id)
		}
		if err := raft.serverErr(t); err == nil || !strings.Contains(err.Error(), "only server certificates") {
			t.Errorf("raft on %s: %v", id, err)
		}
	}
}

func TestRotationWithoutRestart(t *testing.T) {
	dir := testCluster(t)
	scfg := serverTLS(t, dir, RoleServer, "s1")
	srv := serveTLS(t, scfg)
	ccfg := clientTLS(t, dir, RoleClient, "admin")

	serial := func() string {
		t.Helper()
		got, err := dial(t, srv.addr, ccfg)
		if err != nil {
			t.Fatal(err)
		}
		srv.serverErr(t)
		_, s, _ := strings.Cut(got, " ")
		return s
	}
	first := serial()
	if first != readCert(t, PathsFor(dir, RoleServer, "s1").Cert).SerialNumber.String() {
		t.Fatalf("served serial %s is not server-s1.crt's", first)
	}

	// A half-done rotation (a new key, the old certificate) is ignored.
	p := PathsFor(dir, RoleServer, "s1")
	oldKey, _ := os.ReadFile(p.Key)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	kp, _ := keyPEM(k)
	if err := replaceFile(p.Key, kp, keyMode); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got != first {
		t.Errorf("after a lone key change the server presents %s, want the old %s", got, first)
	}
	if err := replaceFile(p.Key, oldKey, keyMode); err != nil {
		t.Fatal(err)
	}

	if _, err := Reissue(dir, RoleServer, "s1", nil, DefaultValidity); err != nil {
		t.Fatal(err)
	}
	second := serial()
	if second == first || second != readCert(t, p.Cert).SerialNumber.String() {
		t.Errorf("after Reissue the server presents %s (was %s), want the new certificate's", second, first)
	}

	// The client side reloads too: the server sees the new client serial.
	seen := make(chan string, 1)
	watch := scfg.Clone()
	watch.VerifyConnection = func(cs tls.ConnectionState) error {
		seen <- cs.PeerCertificates[0].SerialNumber.String()
		return nil
	}
	srv2 := serveTLS(t, watch)
	if _, err := Reissue(dir, RoleClient, "admin", nil, DefaultValidity); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(t, srv2.addr, ccfg); err != nil {
		t.Fatal(err)
	}
	if got, want := <-seen, readCert(t, PathsFor(dir, RoleClient, "admin").Cert).SerialNumber.String(); got != want {
		t.Errorf("the client presented %s after Reissue, want %s", got, want)
	}
}

// ca.crt may be a bundle of CAs (CA rotation): all are trusted, and Issue
// signs with the one whose key is ca.key.
func TestCABundle(t *testing.T) {
	dir := testCluster(t)
	other := filepath.Join(t.TempDir(), "new")
	if err := InitCA(other); err != nil {
		t.Fatal(err)
	}
	newAdmin := mustIssue(t, other, RoleClient, "admin")
	a, _ := os.ReadFile(CAPaths(dir).Cert)
	b, _ := os.ReadFile(CAPaths(other).Cert)
	if err := os.WriteFile(CAPaths(dir).Cert, append(a, b...), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := serveTLS(t, serverTLS(t, dir, RoleServer, "s1"))
	for _, cfg := range []*tls.Config{clientTLS(t, dir, RoleClient, "admin"), rawClient(t, newAdmin.Cert, newAdmin.Key, CAPaths(dir).CA)} {
		if _, err := dial(t, srv.addr, cfg); err != nil {
			t.Errorf("bundle: %v", err)
		}
		if err := srv.serverErr(t); err != nil {
			t.Errorf("bundle, server: %v", err)
		}
	}
	is := mustIssue(t, dir, RoleAgent, "h7")
	if got, want := readCert(t, is.Cert).Issuer.CommonName, readCert(t, CAPaths(dir).Cert).Subject.CommonName; got != want {
		t.Errorf("issued by %q with a bundle, want the first CA %q", got, want)
	}
}
