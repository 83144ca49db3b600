package pki

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CertFile is one certificate file of a directory, as List found it.
type CertFile struct {
	// Path is the file, dir/NAME.crt.
	Path string
	// Cert is the file's first certificate; nil if the file could not be
	// read or parsed (Problem says why).
	Cert *x509.Certificate
	// IsCA is set for ca.crt and any other CA certificate.
	IsCA bool
	// Identity is who the certificate names; zero for a CA, or when it
	// names no sdn identity.
	Identity Identity
	// Hosts are the DNS names, then the IP addresses, it is valid for.
	Hosts []string
	// Problem says why the certificate cannot be used as it is, e.g.
	// "EXPIRED", "not signed by ca.crt", "key does not match"; empty if
	// nothing is wrong.
	Problem string
}

// List reads every certificate (*.crt) in dir and checks each as a process
// would use it: valid now, and, except for CA certificates, naming an sdn
// identity, signed by dir's ca.crt, with a matching key file
// (ROLE-NAME.key) that only its owner may read. Files are in name order.
// It fails if dir holds no *.crt file.
func List(dir string) ([]CertFile, error) { return list(dir, time.Now()) }

func list(dir string, now time.Time) ([]CertFile, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.crt"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no certificates (*.crt) in %s", dir)
	}
	caFile := CAPaths(dir).CA
	pool, poolErr := loadPool(caFile)
	out := make([]CertFile, 0, len(files))
	for _, f := range files {
		out = append(out, inspect(f, caFile, pool, poolErr, now))
	}
	return out, nil
}

// inspect reads and checks one certificate file for List.
func inspect(f, caFile string, pool *x509.CertPool, poolErr error, now time.Time) CertFile {
	cf := CertFile{Path: f}
	data, err := os.ReadFile(f)
	if err != nil {
		cf.Problem = err.Error()
		return cf
	}
	certs, err := parseCerts(f, data)
	if err != nil {
		cf.Problem = err.Error()
		return cf
	}
	leaf := certs[0]
	cf.Cert = leaf
	cf.Hosts = append(cf.Hosts, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		cf.Hosts = append(cf.Hosts, ip.String())
	}
	switch {
	case now.After(leaf.NotAfter):
		cf.Problem = "EXPIRED"
	case now.Before(leaf.NotBefore):
		cf.Problem = "not valid yet"
	}
	if f == caFile || leaf.IsCA {
		cf.IsCA = true
		return cf
	}
	id, err := IdentityOf(leaf)
	if err != nil {
		cf.Problem = "no sdn identity"
		return cf
	}
	cf.Identity = id
	if cf.Problem == "" {
		cf.Problem = checkLeaf(f, leaf, pool, poolErr, now)
	}
	return cf
}

// checkLeaf checks a member's certificate against the CA and its key
// file; it returns the problem, or "".
func checkLeaf(f string, leaf *x509.Certificate, pool *x509.CertPool, poolErr error, now time.Time) string {
	if poolErr != nil {
		return "cannot check: no usable ca.crt"
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return "not signed by ca.crt"
	}
	keyFile := strings.TrimSuffix(f, ".crt") + ".key"
	if _, err := tls.LoadX509KeyPair(f, keyFile); err != nil {
		if !exists(keyFile) {
			return "no key file " + filepath.Base(keyFile)
		}
		return "key does not match"
	}
	if fi, err := os.Stat(keyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return fmt.Sprintf("key readable by others (%v); chmod 600", fi.Mode().Perm())
	}
	return ""
}
