package pki

import (
	"fmt"
	"time"
)

// Member is one certificate to issue: who it names and the hosts it is
// dialed at (see Issue for which hosts a role may name).
type Member struct {
	Identity
	Hosts []string
}

// Check reports whether a certificate for m can be issued: a valid name,
// and hosts its role may name, each a valid IP address or DNS name. It
// reads no file.
func (m Member) Check() error {
	if err := m.Validate(); err != nil {
		return err
	}
	_, err := sansFor(m.Identity, m.Hosts)
	return err
}

// InitOptions says what Init creates besides the CA.
type InitOptions struct {
	// Members are the certificates to issue, in this order.
	Members []Member
	// Validity is how long each member's certificate is valid (the CA's is
	// 10 years); zero means DefaultValidity.
	Validity time.Duration
}

// Check reports whether Init would accept o, without touching any file.
func (o InitOptions) Check() error {
	if o.Validity < 0 {
		return fmt.Errorf("validity %s is not positive", o.Validity)
	}
	for _, m := range o.Members {
		if err := m.Check(); err != nil {
			return err
		}
	}
	return nil
}

// InitResult is what Init wrote.
type InitResult struct {
	// CA names the CA's files, ca.crt and ca.key (see CAPaths); zero when
	// Init failed before writing them.
	CA Paths
	// Issued are the members' certificates written, in the order asked.
	Issued []Issued
}

// Init creates a cluster's CA in dir (as InitCA), then a certificate and
// key for each member (as Issue). It checks every member first, so a
// mistake in one leaves nothing behind. If issuing fails after the CA was
// written, the result says what was written before the error.
func Init(dir string, o InitOptions) (InitResult, error) {
	if err := o.Check(); err != nil {
		return InitResult{}, err
	}
	validity := o.Validity
	if validity == 0 {
		validity = DefaultValidity
	}
	if err := InitCA(dir); err != nil {
		return InitResult{}, err
	}
	res := InitResult{CA: CAPaths(dir)}
	for _, m := range o.Members {
		is, err := issue(dir, request{id: m.Identity, hosts: m.Hosts, validity: validity, now: time.Now()})
		if err != nil {
			return res, err
		}
		res.Issued = append(res.Issued, is)
	}
	return res, nil
}
