package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sdn-dev/sdn/model"
)

// DefaultValidity is how long certificates are valid unless told otherwise.
const DefaultValidity = 365 * 24 * time.Hour

// localHosts are in every server certificate: sdnctl and an agent on a
// server's own host dial it there, and gRPC over a unix socket verifies
// the name "localhost".
var localHosts = []string{"localhost", "127.0.0.1", "::1"}

// Issued describes a certificate that was written.
type Issued struct {
	Identity
	Paths              // CA, Cert and Key files
	Hosts    []string  // DNS names and IP addresses the certificate is valid for, if it may serve
	NotAfter time.Time // when it expires
}

// Issue creates a key and a certificate for role/name signed by the CA in
// dir, and writes them to dir/ROLE-NAME.crt and dir/ROLE-NAME.key (0600).
// hosts are the DNS names and IP addresses the holder is dialed at (a
// port, if given, is ignored). For a server, give every address agents,
// sdnctl and the other servers dial (API and raft); its node name,
// localhost, 127.0.0.1 and ::1 are always added. An agent names hosts only
// if given some (then it may also serve TLS); a client may name none.
// It refuses to replace an existing certificate or key; Reissue does that.
func Issue(dir string, role Role, name string, hosts []string, validity time.Duration) (Issued, error) {
	return issue(dir, request{id: Identity{role, name}, hosts: hosts, validity: validity, now: time.Now()})
}

// Reissue is Issue for rotation: it replaces the certificate and key of
// role/name if they exist, each file by an atomic rename. Processes using
// them (ServerTLS, ClientTLS) switch to the new pair at their next
// handshake, without a restart.
func Reissue(dir string, role Role, name string, hosts []string, validity time.Duration) (Issued, error) {
	return issue(dir, request{id: Identity{role, name}, hosts: hosts, validity: validity, now: time.Now(), replace: true})
}

// request is what issue needs; now is a parameter so tests can issue
// certificates that are already expired.
type request struct {
	id       Identity
	hosts    []string
	validity time.Duration
	now      time.Time
	replace  bool
}

func issue(dir string, r request) (Issued, error) {
	if err := r.id.Validate(); err != nil {
		return Issued{}, err
	}
	if r.validity <= 0 {
		return Issued{}, fmt.Errorf("certificate for %s: validity %s is not positive", r.id, r.validity)
	}
	sans, err := sansFor(r.id, r.hosts)
	if err != nil {
		return Issued{}, err
	}
	ca, err := loadCA(dir)
	if err != nil {
		return Issued{}, err
	}
	p := PathsFor(dir, r.id.Role, r.id.Name)
	if !r.replace {
		for _, f := range []string{p.Cert, p.Key} {
			if exists(f) {
				return Issued{}, fmt.Errorf("%s already exists; refusing to replace the %s certificate of %s. To renew it, issue it again with --replace (running processes pick the new files up without a restart)",
					f, r.id.Role, r.id.Name)
			}
		}
	}
	notAfter := r.now.Add(r.validity)
	if notAfter.After(ca.cert.NotAfter) {
		return Issued{}, fmt.Errorf("certificate for %s would be valid until %s, after the CA itself expires (%s); ask for a shorter validity or create a new CA",
			r.id, notAfter.Format(time.DateOnly), ca.cert.NotAfter.Format(time.DateOnly))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Issued{}, fmt.Errorf("generate key for %s: %w", r.id, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return Issued{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         r.id.Name,
			OrganizationalUnit: []string{string(r.id.Role)},
			Organization:       []string{"sdn"},
		},
		NotBefore:             r.now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{r.id.URI()},
	}
	if len(sans) > 0 {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		for _, h := range sans {
			if ip, err := netip.ParseAddr(h); err == nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return Issued{}, fmt.Errorf("sign certificate for %s: %w", r.id, err)
	}
	kp, err := keyPEM(key)
	if err != nil {
		return Issued{}, err
	}
	if r.replace {
		// Key first: a process that reloads in between sees a new key with
		// the old certificate, refuses that pair and keeps the one it has.
		if err := replaceFile(p.Key, kp, keyMode); err != nil {
			return Issued{}, err
		}
		if err := replaceFile(p.Cert, certPEM(der), certMode); err != nil {
			return Issued{}, err
		}
	} else {
		if err := writeNew(p.Key, kp, keyMode); err != nil {
			return Issued{}, err
		}
		if err := writeNew(p.Cert, certPEM(der), certMode); err != nil {
			os.Remove(p.Key)
			return Issued{}, err
		}
	}
	return Issued{Identity: r.id, Paths: p, Hosts: sans, NotAfter: notAfter}, nil
}

// sansFor returns the hosts a certificate for id names, normalized and
// without duplicates; none means it may not serve TLS. Servers always name
// themselves and localhost; agents name themselves when they name hosts.
func sansFor(id Identity, hosts []string) ([]string, error) {
	var given []string
	for _, h := range hosts {
		n, err := normalizeHost(h)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", id, err)
		}
		given = append(given, n)
	}
	var all []string
	switch id.Role {
	case RoleClient:
		if len(given) > 0 {
			return nil, fmt.Errorf("%s: a client certificate names a user, not hosts; drop the hosts %v", id, given)
		}
	case RoleAgent:
		if len(given) > 0 {
			all = append([]string{id.Name}, given...)
		}
	case RoleServer:
		all = append(append([]string{id.Name}, given...), localHosts...)
	}
	var out []string
	for _, h := range all {
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out, nil
}

// normalizeHost checks one host a certificate is to name and returns its
// canonical form: an IP address as netip prints it, or a lowercase DNS
// name. host:port and [v6]:port are accepted; the port is dropped.
func normalizeHost(h string) (string, error) {
	h = strings.TrimSpace(h)
	orig := h
	if h == "" {
		return "", fmt.Errorf("empty host")
	}
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if ip, err := netip.ParseAddr(h); err == nil {
		if ip.Zone() != "" {
			return "", fmt.Errorf("host %q: an address with a zone (%%%s) cannot be in a certificate; give the address without it", orig, ip.Zone())
		}
		ip = ip.Unmap()
		if ip.IsUnspecified() {
			return "", fmt.Errorf("host %q is the unspecified address, which no peer dials; give the address clients and servers connect to", orig)
		}
		return ip.String(), nil
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if strings.Contains(h, "*") {
		return "", fmt.Errorf("host %q: wildcard names are not issued; name each host", orig)
	}
	if len(h) > 253 {
		return "", fmt.Errorf("host %q is longer than 253 characters", orig)
	}
	if err := model.ValidateNodeName(h); err != nil {
		return "", fmt.Errorf("host %q is neither an IP address nor a DNS name: %v", orig, err)
	}
	labels := strings.Split(h, ".")
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" {
		return "", fmt.Errorf("host %q looks like an IP address but is not a valid one", orig)
	}
	return h, nil
}
