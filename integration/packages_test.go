package integration

import (
	"os/exec"
	"strings"
	"testing"
)

// TestEveryPackageIsDocumented fails when a package of the module has no
// package comment (CONTRIBUTING.md, Shape: every package says what it is).
func TestEveryPackageIsDocumented(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{.Doc}}", "../...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, doc, _ := strings.Cut(line, "\t")
		n++
		if strings.TrimSpace(doc) == "" {
			t.Errorf("package %s has no package comment", path)
		}
	}
	if n < 8 {
		t.Fatalf("listed only %d packages:\n%s", n, out)
	}
}
