package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// ServerTLS returns the TLS configuration of a process that accepts
// connections (sdnd's API, raft's listener): TLS 1.3 only, its certificate
// from certFile and keyFile (re-read when they change), and a certificate
// required of every peer, verified against the CA certificate(s) in caFile
// and carrying an sdn identity. Every role is admitted: decide per call
// with Authorize or PeerIdentity, or per listener with RequirePeerRole.
//
// It fails when the files do not load, the certificate was not signed by
// that CA, has expired, or may not serve TLS (a client's or a host-less
// agent's certificate).
func ServerTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	return acceptingTLS(certFile, keyFile, caFile, x509.ExtKeyUsageServerAuth)
}

// acceptingTLS is the configuration of a listener whose own certificate
// must allow usage, admitting every role of the CA's certificates.
func acceptingTLS(certFile, keyFile, caFile string, usage x509.ExtKeyUsage) (*tls.Config, error) {
	pool, err := loadPool(caFile)
	if err != nil {
		return nil, err
	}
	kp, err := newKeyPair(certFile, keyFile, caFile, pool, usage)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		ClientAuth:       tls.RequireAndVerifyClientCert,
		ClientCAs:        pool,
		GetCertificate:   func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get(), nil },
		VerifyConnection: verifyRoles(allRoles),
	}, nil
}

// ClientTLS returns the TLS configuration of a process that dials sdnd
// servers (sdnctl, agents, servers dialing each other): TLS 1.3 only, its
// certificate from certFile and keyFile (re-read when they change), and
// the server's certificate verified against the CA certificate(s) in
// caFile, for the host dialed (tls.Config.ServerName, which gRPC and
// tls.Dial fill in from the address), and with the server role.
func ClientTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	pool, err := loadPool(caFile)
	if err != nil {
		return nil, err
	}
	kp, err := newKeyPair(certFile, keyFile, caFile, pool, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		RootCAs:              pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get(), nil },
		VerifyConnection:     verifyRoles([]Role{RoleServer}),
	}, nil
}

// RequirePeerRole returns a copy of cfg (from ServerTLS or ClientTLS) that
// completes a handshake only with a peer of one of roles: the peer is
// refused before it sends a byte of application data. Raft's listener
// takes RequirePeerRole(serverCfg, RoleServer).
func RequirePeerRole(cfg *tls.Config, roles ...Role) *tls.Config {
	c := cfg.Clone()
	c.VerifyConnection = verifyRoles(roles)
	return c
}

func verifyRoles(roles []Role) func(tls.ConnectionState) error {
	roles = append([]Role(nil), roles...)
	return func(cs tls.ConnectionState) error {
		id, err := PeerIdentity(cs)
		if err != nil {
			return err
		}
		for _, r := range roles {
			if id.Role == r {
				return nil
			}
		}
		return fmt.Errorf("peer %s is refused: only %s certificates are accepted here", id, roleList(roles))
	}
}

func roleList(roles []Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, " or ")
}

// loadPool reads the CA certificate(s) a process trusts.
func loadPool(caFile string) (*x509.CertPool, error) {
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read the cluster CA certificate (--%s): %w", FlagCA, err)
	}
	certs, err := parseCerts(caFile, data)
	if err != nil {
		return nil, fmt.Errorf("the cluster CA certificate (--%s): %w", FlagCA, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		if !c.IsCA {
			return nil, fmt.Errorf("%s (--%s) holds %q, which is not a CA certificate; give the ca.crt made by `tls init`", caFile, FlagCA, c.Subject.CommonName)
		}
		pool.AddCert(c)
	}
	return pool, nil
}

// keyPair is a certificate and key loaded from files and re-read when
// either file changes.
type keyPair struct {
	certFile, keyFile, caFile string
	pool                      *x509.CertPool
	usage                     x509.ExtKeyUsage

	mu    sync.Mutex
	stamp [2]os.FileInfo
	cert  *tls.Certificate
}

func newKeyPair(certFile, keyFile, caFile string, pool *x509.CertPool, usage x509.ExtKeyUsage) (*keyPair, error) {
	kp := &keyPair{certFile: certFile, keyFile: keyFile, caFile: caFile, pool: pool, usage: usage}
	stamp, err := kp.stat()
	if err != nil {
		return nil, err
	}
	cert, err := kp.load(time.Now())
	if err != nil {
		return nil, err
	}
	kp.stamp, kp.cert = stamp, cert
	return kp, nil
}

// get returns the pair to present: the files' current contents if they
// changed and form a valid pair, else the pair last loaded.
func (kp *keyPair) get() *tls.Certificate {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	stamp, err := kp.stat()
	if err != nil {
		return kp.cert // a file is being replaced or is gone: keep what works
	}
	if sameStamp(stamp, kp.stamp) {
		return kp.cert
	}
	cert, err := kp.load(time.Now())
	if err != nil {
		// Keep the stamp old, so the next handshake tries again: the
		// other file of a rotation may not have landed yet.
		return kp.cert
	}
	kp.stamp, kp.cert = stamp, cert
	return kp.cert
}

func (kp *keyPair) stat() ([2]os.FileInfo, error) {
	var st [2]os.FileInfo
	for i, f := range []string{kp.certFile, kp.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return st, fmt.Errorf("TLS files: %w", err)
		}
		st[i] = fi
	}
	return st, nil
}

func sameStamp(a, b [2]os.FileInfo) bool {
	for i := range a {
		if a[i] == nil || b[i] == nil || !os.SameFile(a[i], b[i]) ||
			!a[i].ModTime().Equal(b[i].ModTime()) || a[i].Size() != b[i].Size() {
			return false
		}
	}
	return true
}

// load reads the pair and checks it is one this process may present: the
// key matches, the CA signed it, it is valid now, it has the usage this
// side needs and an sdn identity.
func (kp *keyPair) load(now time.Time) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(kp.certFile)
	if err != nil {
		return nil, fmt.Errorf("read certificate (--%s): %w", FlagCert, err)
	}
	keyPEM, err := os.ReadFile(kp.keyFile)
	if err != nil {
		return nil, fmt.Errorf("read key (--%s): %w", FlagKey, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load %s with key %s: %w", kp.certFile, kp.keyFile, err)
	}
	leaf := cert.Leaf
	id, err := IdentityOf(leaf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kp.certFile, err)
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: kp.pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{kp.usage}})
	if err != nil {
		return nil, explainOwnCert(kp.certFile, kp.caFile, id, leaf, err)
	}
	return &cert, nil
}

// explainOwnCert turns a failure to verify this process's own certificate
// into what to do about it.
func explainOwnCert(certFile, caFile string, id Identity, leaf *x509.Certificate, err error) error {
	var inv x509.CertificateInvalidError
	var unk x509.UnknownAuthorityError
	switch {
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		return fmt.Errorf("%s (%s) is valid from %s to %s, not now; renew it with `tls issue --replace --role %s --name %s ...` (or check this host's clock)",
			certFile, id, leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339), id.Role, id.Name)
	case errors.As(err, &inv) && inv.Reason == x509.IncompatibleUsage:
		return fmt.Errorf("%s (%s) may not be used to serve TLS: only server certificates, and agent certificates issued with hosts, may; use this host's server certificate",
			certFile, id)
	case errors.As(err, &unk):
		return fmt.Errorf("%s (%s) was not signed by the CA in %s (issued by %q); the files come from different clusters' CAs",
			certFile, id, caFile, leaf.Issuer.CommonName)
	}
	return fmt.Errorf("%s (%s): %w", certFile, id, err)
}
