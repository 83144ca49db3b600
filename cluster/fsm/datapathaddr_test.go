package fsm

import (
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
)

// A host registers where its agent serves the datapath service; the
// servers dial it for traces and counters. A host that registers without
// one (an older agent, or --datapath-listen off) keeps working with none;
// a new address is an update; a malformed one is refused with what to do.
func TestRegisterStoresDatapathAddress(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.RegisterNode, register("h1", "198.18.0.1", 1500))
	addr := func() string {
		var a string
		tf.view(func(tx *state.Tx) { n, _ := tx.Node("h1"); a = n.DatapathAddress })
		return a
	}
	if a := addr(); a != "" {
		t.Fatalf("registered without one: datapath address %q", a)
	}
	req := register("h1", "198.18.0.1", 1500)
	req.DatapathAddress = "198.18.0.1:7475"
	r := tf.mustApply(command.RegisterNode, req)
	if a := addr(); a != "198.18.0.1:7475" || len(r.Changes) != 1 || !strings.Contains(strings.Join(r.Changes[0].Details, " "), `datapath_address: "" -> "198.18.0.1:7475"`) {
		t.Fatalf("address %q, changes %v", a, r.Changes)
	}
	if r := tf.mustApply(command.RegisterNode, req); len(r.Changes) != 0 {
		t.Fatalf("the same registration again: changes %v", r.Changes)
	}
	req.DatapathAddress = "h1:7475"
	if r := tf.apply(command.RegisterNode, req); r.Err == nil || !strings.Contains(r.Err.Error(), "want ip:port") {
		t.Fatalf("malformed address: %v", r.Err)
	}
	if a := addr(); a != "198.18.0.1:7475" {
		t.Fatalf("a refused registration changed the address to %q", a)
	}
}
