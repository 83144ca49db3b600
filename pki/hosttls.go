package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// A host's datapath service (node/dpsvc: trace, rule counters) is served
// by its agent and called by the servers. The agent presents the
// certificate it has: an agent certificate usually names no host and may
// not serve TLS by the usual rules (no server-auth usage, no address), so
// the servers do not check it by address but by identity: the host they
// dial must present agent/NODE or server/NODE, NODE being the host they
// meant (the TLS server name the caller sets, e.g. grpc.WithAuthority(NODE)),
// signed by the cluster CA.

// HostServiceTLS returns the TLS configuration of an agent's datapath
// service: its own certificate (agent or server) from certFile and keyFile,
// re-read when they change, and a certificate from the cluster CA required
// of every caller. Every role completes the handshake; the service admits
// servers only, per call, so others get a clear PermissionDenied.
func HostServiceTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	return acceptingTLS(certFile, keyFile, caFile, x509.ExtKeyUsageClientAuth)
}

// HostClientTLS returns the TLS configuration a server dials hosts'
// datapath services with: its certificate from certFile and keyFile, and
// the host's certificate verified against the CA in caFile and required to
// be agent/NODE or server/NODE for the NODE in tls.Config.ServerName (gRPC
// fills it from the call's authority: dial with grpc.WithAuthority(node)).
// revoked, if not nil, refuses a revoked host certificate.
func HostClientTLS(certFile, keyFile, caFile string, revoked Revoked) (*tls.Config, error) {
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
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get(), nil },
		// The chain and the identity are checked below, in place of the
		// address check an agent's certificate could not pass.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyHost(pool, cs, revoked, time.Now())
		},
	}, nil
}

// verifyHost checks a host's certificate: signed by the CA, valid now, an
// agent's or a server's, naming the node dialled, not revoked.
func verifyHost(pool *x509.CertPool, cs tls.ConnectionState, revoked Revoked, now time.Time) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the host presented no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("the host's certificate does not verify against the cluster CA: %w", err)
	}
	id, err := IdentityOf(leaf)
	if err != nil {
		return fmt.Errorf("the host's certificate: %w", err)
	}
	if id.Role != RoleAgent && id.Role != RoleServer {
		return fmt.Errorf("the host presented %s's certificate; a host's datapath service presents its agent's (or its server's) certificate", id)
	}
	if cs.ServerName == "" {
		return errors.New("no host name to check the host's certificate against (dial with grpc.WithAuthority(NODE))")
	}
	if id.Name != cs.ServerName {
		return fmt.Errorf("dialled host %s's datapath service but the certificate there is %s's: the node's registered datapath address points at another host", cs.ServerName, id)
	}
	if revoked != nil {
		if ok, why := revoked(Serial(leaf)); ok {
			return &RevokedError{Identity: id, Serial: Serial(leaf), Why: why}
		}
	}
	return nil
}
