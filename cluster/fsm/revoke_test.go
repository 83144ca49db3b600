package fsm

import (
	"testing"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestRevokeCertificate: the first revocation of a serial is kept, a
// second changes nothing, neither moves the revision, and a serial not in
// canonical form is refused.
func TestRevokeCertificate(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}}})
	rev := tf.revision()
	typ := command.RevokeCertificate | command.IgnoreUnknownFlag
	if r := tf.apply(typ, &sdnv1.RevokedCertificate{Serial: "0A"}); r.Err == nil {
		t.Fatal("a serial not in canonical form was taken")
	}
	tf.mustApply(typ, &sdnv1.RevokedCertificate{Serial: "a1", Identity: "agent/h1", Reason: "first", RevokedBy: "client/admin"})
	tf.mustApply(typ, &sdnv1.RevokedCertificate{Serial: "a1", Reason: "second"})
	tf.mustApply(typ, &sdnv1.RevokedCertificate{Serial: "b2"})
	if c, ok := tf.f.Revoked("a1"); !ok || c.Reason != "first" || c.Identity != "agent/h1" {
		t.Fatalf("a1: %v %v; want the first revocation", c, ok)
	}
	if _, ok := tf.f.Revoked("c3"); ok {
		t.Fatal("c3 revoked")
	}
	if got := tf.revision(); got != rev {
		t.Fatalf("revision %d after revocations, want %d", got, rev)
	}
	var n int
	var list []*sdnv1.RevokedCertificate
	tf.f.View(func(tx *state.Tx) error { n, list = tx.RevokedCount(), tx.RevokedCertificates(); return nil })
	if n != 2 || len(list) != 2 || list[0].Serial != "a1" || list[1].Serial != "b2" {
		t.Fatalf("count %d, list %v", n, list)
	}
}
