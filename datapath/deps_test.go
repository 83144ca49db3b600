package datapath

import (
	"testing"

	"github.com/sdn-dev/sdn/internal/deptest"
)

// TestDeps guards the datapath's boundary (CONTRIBUTING.md, "Boundaries"):
// it takes its input from package model and knows nothing of the servers,
// the daemon or the agent that drives it, stores nothing and serves nothing.
// So it links no cluster, sdnd or node package, no raft, no bbolt, no HCL,
// and no datapath package imports gRPC (the API types come through proto).
func TestDeps(t *testing.T) {
	deps := deptest.Deps(t, "./...", true)
	deptest.Forbid(t, deps, "the datapath takes model.Desired and must not depend on the servers, the daemon or the agent",
		"github.com/sdn-dev/sdn/cluster", "github.com/sdn-dev/sdn/sdnd", "github.com/sdn-dev/sdn/node", "github.com/sdn-dev/sdn/spec")
	deptest.Forbid(t, deps, "the datapath keeps no raft log or store",
		"github.com/hashicorp/raft", "github.com/hashicorp/raft-boltdb", "go.etcd.io/bbolt", "github.com/hashicorp/hcl")
	for _, p := range deps {
		if !deptest.Under(p.ImportPath, "github.com/sdn-dev/sdn/datapath") {
			continue
		}
		for _, imp := range p.Imports {
			if deptest.Under(imp, "google.golang.org/grpc") {
				t.Errorf("%s imports %s: the datapath serves and dials nothing", p.ImportPath, imp)
				break
			}
		}
	}
	if !deptest.Has(deps, "github.com/sdn-dev/sdn/model") {
		t.Errorf("the datapath does not link model; is the listing broken? got %d packages", len(deps))
	}
}
