package fsm

import (
	"testing"

	"github.com/sdn-dev/sdn/internal/deptest"
)

// TestDeps guards the FSM's boundary (CONTRIBUTING.md, "Boundaries"): it is
// the deterministic state machine, so it links no raft (the server in
// package cluster adapts it), no API server, no host side and no datapath.
func TestDeps(t *testing.T) {
	deps := deptest.Deps(t, ".", false)
	deptest.Forbid(t, deps, "the FSM is deterministic and knows nothing of raft, the API server, the hosts or the daemon",
		"github.com/hashicorp/raft", "github.com/sdn-dev/sdn/cluster/api", "github.com/sdn-dev/sdn/cluster/join",
		"github.com/sdn-dev/sdn/cluster/transport", "github.com/sdn-dev/sdn/datapath", "github.com/sdn-dev/sdn/node",
		"github.com/sdn-dev/sdn/sdnd", "github.com/sdn-dev/sdn/spec")
	if deptest.Has(deps, "github.com/sdn-dev/sdn/cluster") {
		t.Error("links github.com/sdn-dev/sdn/cluster: the raft server wraps the FSM, never the other way")
	}
	if !deptest.Has(deps, "go.etcd.io/bbolt") {
		t.Errorf("the FSM does not link bbolt; is the listing broken? got %d packages", len(deps))
	}
}
