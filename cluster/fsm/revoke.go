package fsm

import (
	"fmt"

	"github.com/sdn-dev/sdn/model"

	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/pki"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// revokeCertificate records a revoked certificate; the first revocation of
// a serial is kept (a second changes nothing).
func revokeCertificate(e *exec, c *sdnv1.RevokedCertificate) (*Result, *Error) {
	serial, err := pki.ParseSerial(c.Serial)
	if err != nil {
		return nil, refuse(CodeInvalid, model.KindCertificate, c.Serial, "serial", err.Error())
	}
	if serial != c.Serial {
		return nil, refuse(CodeInvalid, model.KindCertificate, c.Serial, "serial", fmt.Sprintf("certificate serial %q is not in canonical form (%s)", c.Serial, serial))
	}
	if _, ok := e.tx.Revoked(serial); !ok && e.write {
		if err := e.tx.PutRevoked(c); err != nil {
			return nil, ioError(err)
		}
	}
	return &Result{Revision: e.tx.Meta().Revision}, nil
}

// Revoked reports whether the certificate with serial (canonical hex) is
// revoked, and its entry. It reads the local state: a revocation takes
// effect on each server as it applies the command.
func (f *FSM) Revoked(serial string) (*sdnv1.RevokedCertificate, bool) {
	var c *sdnv1.RevokedCertificate
	var ok bool
	_ = f.View(func(tx *state.Tx) error {
		c, ok = tx.Revoked(serial)
		return nil
	})
	return c, ok
}
