package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"time"
)

// caYears is how long a CA made by InitCA is valid.
const caYears = 10

// backdate is how far before "now" a certificate becomes valid, so hosts
// whose clocks are a little behind accept it at once.
const backdate = 5 * time.Minute

// InitCA creates a new cluster CA in dir: ca.crt (the certificate every
// member trusts) and ca.key (its private key, mode 0600). dir is created
// with mode 0700 if it does not exist. InitCA never replaces a CA: if
// either file exists it fails and changes nothing.
func InitCA(dir string) error { return initCA(dir, time.Now()) }

func initCA(dir string, now time.Time) error {
	p := CAPaths(dir)
	for _, f := range []string{p.Cert, p.Key} {
		if exists(f) {
			return fmt.Errorf("a CA already exists in %s (%s found); refusing to replace it, since every certificate it signed would stop being trusted. "+
				"Issue certificates from it with `tls issue --dir %s ...`, choose another --dir for a new cluster, or remove %s and %s first if you really mean to start over",
				dir, f, dir, p.Cert, p.Key)
		}
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("create CA directory: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	id, err := keyID(key.Public())
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// The CN carries a short id of the key, so two clusters' CAs are
		// told apart in "signed by unknown authority" errors.
		Subject:               pkix.Name{CommonName: "sdn cluster CA " + id, Organization: []string{"sdn"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.AddDate(caYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("create CA certificate: %w", err)
	}
	kp, err := keyPEM(key)
	if err != nil {
		return err
	}
	// The key first: a CA certificate without its key could not be used,
	// and the existence check above would then refuse to repair it.
	if err := writeNew(p.Key, kp, keyMode); err != nil {
		return err
	}
	if err := writeNew(p.Cert, certPEM(der), certMode); err != nil {
		os.Remove(p.Key)
		return err
	}
	return nil
}

// authority is a loaded CA: the certificate that signs and its key.
type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// loadCA reads dir's CA. ca.crt may be a bundle; the certificate whose
// public key matches ca.key is the one that signs.
func loadCA(dir string) (*authority, error) {
	p := CAPaths(dir)
	certData, err := os.ReadFile(p.Cert)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no CA in %s (%s does not exist): run `tls init --dir %s` first, or pass the --dir that holds ca.crt and ca.key", dir, p.Cert, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	keyData, err := os.ReadFile(p.Key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s has the CA certificate but not its key %s; certificates can only be issued where the CA key is", dir, p.Key)
	}
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	certs, err := parseCerts(p.Cert, certData)
	if err != nil {
		return nil, err
	}
	key, err := parseKey(p.Key, keyData)
	if err != nil {
		return nil, err
	}
	for _, c := range certs {
		if pub, ok := c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); ok && pub.Equal(key.Public()) {
			if !c.IsCA {
				return nil, fmt.Errorf("%s is not a CA certificate", p.Cert)
			}
			return &authority{cert: c, key: key}, nil
		}
	}
	return nil, fmt.Errorf("%s does not belong to any certificate in %s; the CA files do not match", p.Key, p.Cert)
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil // never 0
}

// keyID is a short id of a public key: the first bytes of the SHA-256 of
// its PKIX encoding, in hex.
func keyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:4]), nil
}
