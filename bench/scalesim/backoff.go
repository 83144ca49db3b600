package scalesim

import (
	"math/rand/v2"
	"time"
)

// The reconnect backoff: the first wait is about backoffMin, each failure
// in a row doubles it up to backoffMax, and every wait is jittered by ±50%
// so that thousands of hosts that failed together do not retry together.
const (
	backoffMin = 100 * time.Millisecond
	backoffMax = 5 * time.Second
)

// backoff is one host's reconnect backoff. It is not safe for concurrent
// use.
type backoff struct {
	next time.Duration // the base of the next wait, before jitter
	rng  *rand.Rand
}

func newBackoff(rng *rand.Rand) *backoff { return &backoff{next: backoffMin, rng: rng} }

// wait returns how long to wait before the next try, and doubles the base
// for the one after.
func (b *backoff) wait() time.Duration {
	d := jitter(b.next, b.rng.Float64())
	b.next = min(b.next*2, backoffMax)
	return d
}

// reset starts over from backoffMin, after a success.
func (b *backoff) reset() { b.next = backoffMin }

// jitter spreads d over [d/2, d*3/2) as u goes over [0, 1).
func jitter(d time.Duration, u float64) time.Duration {
	return time.Duration(float64(d) * (0.5 + u))
}
