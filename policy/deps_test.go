package policy

import (
	"testing"

	"github.com/sdn-dev/sdn/internal/deptest"
)

// TestDeps guards the policy package's boundary (CONTRIBUTING.md,
// "Boundaries"): the semantics are pure and shared by the servers and the
// agents, so it links the standard library, the API types and model only.
func TestDeps(t *testing.T) {
	const api = "github.com/sdn-dev/sdn/proto/sdn/v1"
	const model = "github.com/sdn-dev/sdn/model"
	allowed := map[string]bool{"github.com/sdn-dev/sdn/policy": true, model: true}
	for _, p := range deptest.Deps(t, api, false) {
		allowed[p.ImportPath] = true
	}
	deps := deptest.Deps(t, ".", false)
	for _, p := range deps {
		if !p.Standard && !allowed[p.ImportPath] {
			t.Errorf("policy links %s: it may use only the standard library, %s and %s", p.ImportPath, api, model)
		}
	}
	if !deptest.Has(deps, api) || !deptest.Has(deps, model) {
		t.Errorf("policy does not link the API and model; is the listing broken? got %d packages", len(deps))
	}
}
