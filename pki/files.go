package pki

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The flags through which sdnd and sdnctl take the three files a process
// needs; `tls init` and `tls issue` print them.
const (
	FlagCA   = "tls-ca"
	FlagCert = "tls-cert"
	FlagKey  = "tls-key"
)

// File modes. Keys are for their owner only.
const (
	dirMode  fs.FileMode = 0o700
	keyMode  fs.FileMode = 0o600
	certMode fs.FileMode = 0o644
)

// Paths names the files one process uses for mutual TLS: the CA
// certificate(s) it trusts and its own certificate and key.
type Paths struct {
	CA, Cert, Key string
}

// CAPaths returns where the CA of dir lives: Cert is ca.crt, Key is ca.key
// (CA is ca.crt too).
func CAPaths(dir string) Paths {
	return Paths{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, "ca.crt"), Key: filepath.Join(dir, "ca.key")}
}

// PathsFor returns the files of identity role/name in dir:
// dir/ca.crt, dir/ROLE-NAME.crt and dir/ROLE-NAME.key.
func PathsFor(dir string, role Role, name string) Paths {
	base := filepath.Join(dir, string(role)+"-"+name)
	return Paths{CA: filepath.Join(dir, "ca.crt"), Cert: base + ".crt", Key: base + ".key"}
}

// IsZero reports whether no file is named: TLS is not configured.
func (p Paths) IsZero() bool { return p == Paths{} }

// Check returns an error unless all three files are named, saying which
// flags are missing. Flags that name none of them are fine for Check; the
// caller decides whether plaintext was asked for.
func (p Paths) Check() error {
	var missing []string
	for _, f := range []struct{ v, flag string }{{p.CA, FlagCA}, {p.Cert, FlagCert}, {p.Key, FlagKey}} {
		if f.v == "" {
			missing = append(missing, "--"+f.flag)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 3:
		return fmt.Errorf("no TLS files given: set --%s, --%s and --%s (create them with `tls init`)", FlagCA, FlagCert, FlagKey)
	}
	return fmt.Errorf("mutual TLS needs --%s, --%s and --%s together; missing %v", FlagCA, FlagCert, FlagKey, missing)
}

// Server returns ServerTLS(p.Cert, p.Key, p.CA).
func (p Paths) Server() (*tls.Config, error) { return ServerTLS(p.Cert, p.Key, p.CA) }

// Client returns ClientTLS(p.Cert, p.Key, p.CA).
func (p Paths) Client() (*tls.Config, error) { return ClientTLS(p.Cert, p.Key, p.CA) }

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func keyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ReadCertificate returns the first certificate of a PEM file.
func ReadCertificate(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := parseCerts(path, data)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// parseCerts returns every certificate in a PEM file's contents.
func parseCerts(path string, data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: parse certificate: %w", path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return certs, nil
}

// parseKey reads a PEM private key (PKCS #8, or the EC and PKCS #1 forms
// other tools write).
func parseKey(path string, data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, fmt.Errorf("%s holds no PEM private key", path)
		}
		var k any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: parse private key: %w", path, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: a %T cannot sign", path, k)
		}
		return s, nil
	}
}

// writeNew creates path with data and mode; it never replaces a file.
func writeNew(path string, data []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	err = writeAndClose(f, data, mode)
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// replaceFile writes data to path atomically (a temporary file renamed over
// it), so a reader sees the old contents or the new, never a mix.
func replaceFile(path string, data []byte, mode fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	if err := writeAndClose(f, data, mode); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeAndClose writes data, sets mode exactly (whatever the umask), syncs
// and closes f.
func writeAndClose(f *os.File, data []byte, mode fs.FileMode) error {
	_, err := f.Write(data)
	err = errors.Join(err, f.Chmod(mode), f.Sync())
	return errors.Join(err, f.Close())
}

// exists reports whether path exists (a broken symlink counts).
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
