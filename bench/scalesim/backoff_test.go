package scalesim

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestJitterBounds(t *testing.T) {
	for _, u := range []float64{0, 0.25, 0.5, 0.999999} {
		d := jitter(time.Second, u)
		if d < 500*time.Millisecond || d >= 1500*time.Millisecond {
			t.Errorf("jitter(1s, %v) = %v, want within [0.5s, 1.5s)", u, d)
		}
	}
	if d := jitter(time.Second, 0); d != 500*time.Millisecond {
		t.Errorf("jitter(1s, 0) = %v, want 500ms", d)
	}
}

// The waits double from 100 ms to 5 s, each within ±50% of its base, and
// start over after reset.
func TestBackoff(t *testing.T) {
	b := newBackoff(rand.New(rand.NewPCG(1, 2)))
	bases := []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000}
	for round := range 2 {
		for i, ms := range bases {
			base := ms * time.Millisecond
			if d := b.wait(); d < base/2 || d >= base*3/2 {
				t.Fatalf("round %d, wait %d = %v, want within ±50%% of %v", round, i, d, base)
			}
		}
		b.reset()
	}
}

// Many hosts that failed together spread their first retries: no two
// hundred of a thousand waits are equal, and they cover most of the range.
func TestBackoffSpreads(t *testing.T) {
	lo, hi := time.Hour, time.Duration(0)
	seen := map[time.Duration]bool{}
	for i := range 1000 {
		d := newBackoff(rand.New(rand.NewPCG(7, uint64(i)))).wait()
		seen[d] = true
		lo, hi = min(lo, d), max(hi, d)
	}
	if len(seen) < 990 || lo > 60*time.Millisecond || hi < 140*time.Millisecond {
		t.Errorf("1,000 first waits: %d distinct, from %v to %v; want them spread over 50-150 ms", len(seen), lo, hi)
	}
}
