package main

import (
	"testing"

	"github.com/sdn-dev/sdn/internal/deptest"
)

// TestDeps guards the CLI's boundary (CONTRIBUTING.md, "Boundaries"):
// sdnctl speaks only the API, so neither it nor its tests may link the
// servers, the datapath, the host side or the daemon.
func TestDeps(t *testing.T) {
	deps := deptest.Deps(t, ".", true)
	deptest.Forbid(t, deps, "the CLI may use only the gRPC API (sdnv1), spec, model, pki and snapshot",
		"github.com/sdn-dev/sdn/cluster", "github.com/sdn-dev/sdn/datapath",
		"github.com/sdn-dev/sdn/node", "github.com/sdn-dev/sdn/sdnd")
	if !deptest.Has(deps, "github.com/sdn-dev/sdn/proto/sdn/v1") {
		t.Errorf("go list -deps did not list the API package; is the listing broken? got %d packages", len(deps))
	}
}
