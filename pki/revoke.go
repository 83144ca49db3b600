package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// Serial is a certificate's serial number as sdn writes it: lower-case hex
// without leading zeros (big.Int.Text(16)).
func Serial(cert *x509.Certificate) string { return cert.SerialNumber.Text(16) }

// ParseSerial reads a certificate serial written in hex, as `openssl x509
// -noout -serial` prints it (with or without "serial=", colons, either
// case), and returns it as Serial writes it.
func ParseSerial(s string) (string, error) {
	clean := strings.ReplaceAll(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "serial="), ":", "")
	n, ok := new(big.Int).SetString(clean, 16)
	if !ok || n.Sign() <= 0 {
		return "", fmt.Errorf("certificate serial %q is not a positive hexadecimal number (as `openssl x509 -noout -serial` prints it)", s)
	}
	return n.Text(16), nil
}

// Revoked says whether a certificate serial is revoked, and why (a text
// for the refusal: who revoked it, when, the reason).
type Revoked func(serial string) (revoked bool, why string)

// RevokedWhy is how refusals say why a certificate is revoked: when, by
// whom, and the reason if one was given.
func RevokedWhy(at time.Time, by, reason string) string {
	why := fmt.Sprintf("revoked %s by %s", at.UTC().Format(time.RFC3339), by)
	if reason != "" {
		why += ": " + reason
	}
	return why
}

// RevokedError is the refusal of a revoked certificate.
type RevokedError struct {
	Identity Identity
	Serial   string
	Why      string
}

func (e *RevokedError) Error() string {
	return fmt.Sprintf("the certificate of %s (serial %s) is revoked: %s", e.Identity, e.Serial, e.Why)
}

// CheckRevoked returns a RevokedError when the peer's verified certificate
// is revoked.
func CheckRevoked(cs tls.ConnectionState, revoked Revoked) error {
	if revoked == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return nil
	}
	leaf := cs.VerifiedChains[0][0]
	serial := Serial(leaf)
	if ok, why := revoked(serial); ok {
		id, _ := IdentityOf(leaf)
		return &RevokedError{Identity: id, Serial: serial, Why: why}
	}
	return nil
}

// WithRevocation returns a copy of cfg (from ServerTLS, ClientTLS or
// RequirePeerRole) that also refuses, during the handshake, a peer whose
// certificate revoked reports revoked. The check runs after cfg's own.
func WithRevocation(cfg *tls.Config, revoked Revoked) *tls.Config {
	c := cfg.Clone()
	inner := cfg.VerifyConnection
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if inner != nil {
			if err := inner(cs); err != nil {
				return err
			}
		}
		return CheckRevoked(cs, revoked)
	}
	return c
}

// RevokedFromContext returns a RevokedError when the certificate of a gRPC
// call's connection is revoked: a connection opened before the revocation
// is refused at its next call. nil for a call without TLS.
func RevokedFromContext(ctx context.Context, revoked Revoked) error {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return errors.New("no gRPC peer in the context")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil
	}
	return CheckRevoked(ti.State, revoked)
}
