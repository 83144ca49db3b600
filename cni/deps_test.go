package main

import (
	"testing"

	"github.com/sdn-dev/sdn/internal/deptest"
)

// TestDeps guards the CNI plugin's boundary (CONTRIBUTING.md,
// "Boundaries"): it is a shim that runtimes execute for every container, so
// it links the API and the model's rules, and nothing of the HCL decoder,
// the servers or the datapath.
func TestDeps(t *testing.T) {
	deps := deptest.Deps(t, ".", false)
	deptest.Forbid(t, deps, "the CNI plugin is a shim over one socket",
		"github.com/hashicorp/hcl", "github.com/zclconf/go-cty", "github.com/sdn-dev/sdn/spec",
		"github.com/sdn-dev/sdn/cluster", "github.com/sdn-dev/sdn/datapath", "github.com/sdn-dev/sdn/node",
		"github.com/sdn-dev/sdn/sdnd", "github.com/hashicorp/raft", "go.etcd.io/bbolt")
	if !deptest.Has(deps, "github.com/sdn-dev/sdn/proto/sdn/v1") {
		t.Errorf("the plugin does not link the API; is the listing broken? got %d packages", len(deps))
	}
}
