package lab

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// suffix keeps the lab names of concurrent test runs apart.
func suffix() string { return fmt.Sprintf("%x", os.Getpid()%0x10000) }

// testWriter sends a lab's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func sameInts(a, b []int) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// downAtEnd removes the lab whatever the test did, as `make lab-down`
// would: before the test's temporary directories go.
func downAtEnd(t *testing.T, name, dir string) {
	t.Helper()
	t.Cleanup(func() {
		l, err := Open(name, dir, nil)
		if err == nil {
			err = l.Down()
		}
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// logsOnFailure puts the tails of the lab's sdnd logs into the test log
// when the test failed, before the lab and its directory go.
func logsOnFailure(t *testing.T, l *Lab) {
	t.Helper()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for i := 1; i <= l.Hosts; i++ {
			t.Logf("last lines of %s:\n%s", l.sdndLog(i), tail(l.sdndLog(i), 40))
		}
	})
}
