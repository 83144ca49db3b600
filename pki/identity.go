package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/sdn-dev/sdn/model"
)

// Role is what a certificate's holder is in the cluster.
type Role string

// The roles. See the package documentation for what each may do.
const (
	RoleServer Role = "server"
	RoleAgent  Role = "agent"
	RoleClient Role = "client"
)

// allRoles lists every role.
var allRoles = []Role{RoleServer, RoleAgent, RoleClient}

// trustDomain is the host part of every SPIFFE ID sdn issues. One CA per
// cluster makes the CA, not this name, the trust boundary.
const trustDomain = "sdn"

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	for _, r := range allRoles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q: use server (sdnd servers), agent (sdnd agents) or client (sdnctl users)", s)
}

// Identity is who a certificate names: a role and a node or user name.
type Identity struct {
	Role Role
	Name string
}

// String returns ROLE/NAME, e.g. server/s1.
func (id Identity) String() string { return string(id.Role) + "/" + id.Name }

// URI returns the identity's SPIFFE ID, spiffe://sdn/ROLE/NAME, the one URI
// subject alternative name of its certificate.
func (id Identity) URI() *url.URL {
	return &url.URL{Scheme: "spiffe", Host: trustDomain, Path: "/" + string(id.Role) + "/" + id.Name}
}

// Validate checks that the role is known and the name is a DNS subdomain
// (lowercase letters, digits, '-' and '.'), as node names are.
func (id Identity) Validate() error {
	if _, err := ParseRole(string(id.Role)); err != nil {
		return err
	}
	if err := validateName(id.Name); err != nil {
		return fmt.Errorf("%s name %q: %v", id.Role, id.Name, err)
	}
	return nil
}

// IdentityOf reads the identity of a certificate from its SPIFFE ID. It
// does not verify the certificate; use it on verified chains only.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	var found []*url.URL
	for _, u := range cert.URIs {
		if u.Scheme == "spiffe" {
			found = append(found, u)
		}
	}
	subject := cert.Subject.CommonName
	switch {
	case len(found) == 0:
		return Identity{}, fmt.Errorf("certificate %q has no sdn identity (a spiffe://%s/ROLE/NAME URI SAN); was it issued by `tls issue`?", subject, trustDomain)
	case len(found) > 1:
		return Identity{}, fmt.Errorf("certificate %q has %d SPIFFE IDs; an sdn certificate has exactly one", subject, len(found))
	}
	u := found[0]
	if u.Host != trustDomain || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return Identity{}, fmt.Errorf("certificate %q: SPIFFE ID %s is not of the form spiffe://%s/ROLE/NAME", subject, u, trustDomain)
	}
	role, name, ok := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if !ok {
		return Identity{}, fmt.Errorf("certificate %q: SPIFFE ID %s is not of the form spiffe://%s/ROLE/NAME", subject, u, trustDomain)
	}
	id := Identity{Role: Role(role), Name: name}
	if err := id.Validate(); err != nil {
		return Identity{}, fmt.Errorf("certificate %q: SPIFFE ID %s: %v", subject, u, err)
	}
	return id, nil
}

// PeerIdentity returns the identity of the other end of a TLS connection,
// read from its verified chain. It works in tls.Config.VerifyConnection
// and after the handshake. A connection without a verified peer
// certificate (no certificate, or a config that skips verification) is an
// error.
func PeerIdentity(state tls.ConnectionState) (Identity, error) {
	if len(state.VerifiedChains) == 0 || len(state.VerifiedChains[0]) == 0 {
		if len(state.PeerCertificates) == 0 {
			return Identity{}, errors.New("the peer presented no certificate")
		}
		return Identity{}, errors.New("the peer's certificate was not verified against the cluster CA")
	}
	return IdentityOf(state.VerifiedChains[0][0])
}

// PeerRole is PeerIdentity split into its parts.
func PeerRole(state tls.ConnectionState) (Role, string, error) {
	id, err := PeerIdentity(state)
	return id.Role, id.Name, err
}

// validateName checks a node or user name: the rule node names follow
// (model.ValidateNodeName), a DNS subdomain of lowercase letters, digits,
// '-' and '.'.
func validateName(s string) error { return model.ValidateNodeName(s) }
