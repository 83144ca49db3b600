package scalesim

import (
	"testing"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Equal nodes received by different hosts become one object; a changed
// node becomes the shared version from then on.
func TestInternerSharesEqualNodes(t *testing.T) {
	in := newInterner()
	a := &sdnv1.Node{Name: "h1", Subnet: "10.0.0.0/22"}
	b := &sdnv1.Node{Name: "h1", Subnet: "10.0.0.0/22"}
	if got := in.node(a); got != a {
		t.Fatal("the first node seen is not the shared one")
	}
	if got := in.node(b); got != a {
		t.Error("an equal node was not replaced by the shared one")
	}
	c := &sdnv1.Node{Name: "h1", Subnet: "10.0.0.0/22", DownSinceUnixMs: 5}
	if got := in.node(c); got != c {
		t.Error("a changed node was replaced by the old version")
	}
	if got := in.node(&sdnv1.Node{Name: "h1", Subnet: "10.0.0.0/22"}); got == a || got == c {
		t.Error("the old version came back as shared after a newer one")
	}
}

func TestInternChangesKeepsNamesAndOthers(t *testing.T) {
	in := newInterner()
	first := &sdnv1.Node{Name: "h1"}
	in.node(first)
	cs := []*sdnv1.ObjectChange{
		{Kind: "node", Name: "h1", Node: &sdnv1.Node{Name: "h1"}},
		{Kind: "node", Name: "h2", Op: sdnv1.ChangeOp_CHANGE_OP_DELETE},
		{Kind: "network", Name: "n", Network: &sdnv1.Network{Name: "n"}},
	}
	in.changes(cs)
	if cs[0].Node != first {
		t.Error("node change not interned")
	}
	if cs[1].Node != nil || cs[2].Network.Name != "n" {
		t.Error("a delete or another kind was changed")
	}
}

func TestUnderlayIPs(t *testing.T) {
	seen := map[string]bool{}
	for i := range 70000 {
		ip := underlayIP(i)
		if seen[ip] {
			t.Fatalf("host %d: address %s used twice", i, ip)
		}
		seen[ip] = true
	}
	if underlayIP(0) != "198.18.0.1" || underlayIP(65535) != "198.19.0.0" {
		t.Errorf("underlayIP(0), (65535) = %s, %s", underlayIP(0), underlayIP(65535))
	}
}
