package agent

import (
	"testing"
	"time"
)

// TestBackoffJitters: each wait lies between half and one and a half of
// the step, and the steps double from 100 ms up to 5 s.
func TestBackoffJitters(t *testing.T) {
	var b backoff
	step := 100 * time.Millisecond
	for i := 0; i < 12; i++ {
		d := b.next()
		if d < step/2 || d >= step*3/2 {
			t.Fatalf("wait %d: %v outside [%v, %v)", i, d, step/2, step*3/2)
		}
		step = min(step*2, 5*time.Second)
	}
}
