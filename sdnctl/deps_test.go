package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps checks CONVENTIONS #10: sdnctl speaks only the API, so neither it
// nor its tests may link the cluster, datapath or daemon packages.
func TestDeps(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH to list dependencies with")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-test", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list -deps: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := []string{
		"github.com/sdn-dev/sdn/cluster",
		"github.com/sdn-dev/sdn/datapath",
		"github.com/sdn-dev/sdn/sdnd",
	}
	deps := strings.Fields(string(out))
	sawAPI := false
	for _, dep := range deps {
		if dep == "github.com/sdn-dev/sdn/proto/sdn/v1" {
			sawAPI = true
		}
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("sdnctl depends on %s; the CLI may use only the gRPC API (sdnv1) and spec", dep)
			}
		}
	}
	if !sawAPI {
		t.Errorf("go list -deps did not list the API package; is the listing broken? got %d packages", len(deps))
	}
}
