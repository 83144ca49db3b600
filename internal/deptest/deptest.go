// Package deptest writes the tree's import boundaries as tests: a guard
// lists what a set of packages links (`go list -deps`) and fails on what it
// must not. Each boundary that matters has a deps_test.go next to the code
// it guards (sdnctl, cni, datapath, model); CONTRIBUTING.md lists them.
package deptest

import (
	"os/exec"
	"strings"
	"testing"
)

// Package is one package a listing found.
type Package struct {
	ImportPath string
	Standard   bool     // part of the Go standard library
	Imports    []string // its direct imports
}

// Deps lists the packages that pattern (e.g. "./...", relative to the
// test's directory) links, the matched packages included; withTests adds
// what their tests link. It skips the test when there is no go command.
func Deps(t *testing.T, pattern string, withTests bool) []Package {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH to list dependencies with")
	}
	args := []string{"list", "-deps", "-f", "{{.ImportPath}}\t{{.Standard}}\t{{join .Imports \" \"}}"}
	if withTests {
		args = append(args, "-test")
	}
	out, err := exec.Command(goTool, append(args, pattern)...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list -deps %s: %v\n%s", pattern, err, ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v", pattern, err)
	}
	var pkgs []Package
	seen := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("go list printed %q", line)
		}
		// A package recompiled for a test is listed as "path [path.test]".
		// It counts once, with the imports of both.
		path, _, _ := strings.Cut(f[0], " ")
		if i, ok := seen[path]; ok {
			pkgs[i].Imports = append(pkgs[i].Imports, strings.Fields(f[2])...)
			continue
		}
		seen[path] = len(pkgs)
		pkgs = append(pkgs, Package{ImportPath: path, Standard: f[1] == "true", Imports: strings.Fields(f[2])})
	}
	if len(pkgs) == 0 {
		t.Fatalf("go list -deps %s listed nothing; is the listing broken?", pattern)
	}
	return pkgs
}

// Under reports whether path is prefix or a package below it.
func Under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// Forbid fails the test for every package of deps that is, or is below,
// one of forbidden, naming why (the boundary's reason).
func Forbid(t *testing.T, deps []Package, why string, forbidden ...string) {
	t.Helper()
	for _, p := range deps {
		for _, f := range forbidden {
			if Under(p.ImportPath, f) {
				t.Errorf("links %s: %s", p.ImportPath, why)
			}
		}
	}
}

// Has reports whether deps holds the package path; a guard checks that what
// it must see is there, so a broken listing cannot pass.
func Has(deps []Package, path string) bool {
	for _, p := range deps {
		if p.ImportPath == path {
			return true
		}
	}
	return false
}
