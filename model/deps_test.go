package model

import (
	"testing"

	"github.com/sdn-dev/sdn/internal/deptest"
)

// TestDeps guards the model's boundary (CONTRIBUTING.md, "Boundaries"): it
// is the ground floor, so it links the standard library and the API types
// (proto/sdn/v1, with what they need) and nothing else of the tree.
func TestDeps(t *testing.T) {
	const api = "github.com/sdn-dev/sdn/proto/sdn/v1"
	allowed := map[string]bool{"github.com/sdn-dev/sdn/model": true}
	for _, p := range deptest.Deps(t, api, false) {
		allowed[p.ImportPath] = true
	}
	deps := deptest.Deps(t, ".", false)
	for _, p := range deps {
		if !p.Standard && !allowed[p.ImportPath] {
			t.Errorf("model links %s: it may use only the standard library and %s", p.ImportPath, api)
		}
	}
	if !deptest.Has(deps, api) {
		t.Errorf("model does not link the API; is the listing broken? got %d packages", len(deps))
	}
}
