package spec

import (
	"testing"
)

func TestPoolArithmetic(t *testing.T) {
	for _, tc := range []struct {
		bits, hostPrefix int
		hosts, perHost   int64
	}{
		{14, 23, 512, 509},
		{10, 23, 8192, 509},
		{14, 14, 1, 262141},
		{24, 23, 0, 509},
		{14, 30, 65536, 1},
		{14, 31, 131072, 0},
	} {
		if got := hostCount(tc.bits, tc.hostPrefix); got != tc.hosts {
			t.Errorf("hostCount(/%d, /%d) = %d, want %d", tc.bits, tc.hostPrefix, got, tc.hosts)
		}
		if got := workloadsPerHost(tc.hostPrefix); got != tc.perHost {
			t.Errorf("workloadsPerHost(/%d) = %d, want %d", tc.hostPrefix, got, tc.perHost)
		}
	}
}

func TestSuggest(t *testing.T) {
	opts := []string{"flat", "multitenant", "policy"}
	for in, want := range map[string]string{
		"multitennant": ` Did you mean "multitenant"?`,
		"Flat":         ` Did you mean "flat"?`,
		"polcy":        ` Did you mean "policy"?`,
		"kubernetes":   "",
	} {
		if got := suggest(in, opts); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}
