package suites

import (
	"testing"

	"github.com/sdn-dev/sdn/bench"
	"github.com/sdn-dev/sdn/datapath/flows"
)

func TestAllValid(t *testing.T) {
	if err := bench.Validate(All()); err != nil {
		t.Fatal(err)
	}
}

func TestSyntheticHostSize(t *testing.T) {
	for _, n := range []int{2000, 10000} {
		h, count := syntheticHost(n)
		if got := len(flows.Compile(h)); got != count || count < n || count > n+20 {
			t.Errorf("syntheticHost(%d): %d flows (reported %d), want %d to %d", n, got, count, n, n+20)
		}
	}
}
