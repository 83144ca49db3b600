package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sdn-dev/sdn/cluster/api"
)

// TestProductionBinaryHasNoUnsafeReads builds sdnd as `make build` does and
// checks that the test-only switch for stale follower reads (cluster/api,
// compiled in only with the build tag sdn_unsafe_reads) is not in it:
// neither its environment variable's name nor its warning. A build with the
// tag must hold both, or the check would prove nothing.
func TestProductionBinaryHasNoUnsafeReads(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH to build sdnd with")
	}
	if testing.Short() {
		t.Skip("builds sdnd twice")
	}
	dir := t.TempDir()
	build := func(name string, flags ...string) []byte {
		t.Helper()
		bin := filepath.Join(dir, name)
		args := append(append([]string{"build"}, flags...), "-o", bin, ".")
		if out, err := exec.Command(goTool, args...).CombinedOutput(); err != nil {
			t.Fatalf("go %v: %v\n%s", args, err, out)
		}
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	production := build("sdnd")
	tagged := build("sdnd-unsafe-reads", "-tags", "sdn_unsafe_reads")
	for _, s := range []string{api.UnsafeFollowerReadsEnv, "UNSAFE, FOR TESTS ONLY"} {
		if bytes.Contains(production, []byte(s)) {
			t.Errorf("the production sdnd binary contains %q: the test-only stale-read switch is compiled in", s)
		}
		if !bytes.Contains(tagged, []byte(s)) {
			t.Errorf("sdnd built with -tags sdn_unsafe_reads lacks %q: this check cannot see the switch", s)
		}
	}
}
