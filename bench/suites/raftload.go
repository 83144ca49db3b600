package suites

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// loadResult is what one closed-loop load run measured.
type loadResult struct {
	Ops     int           // operations acknowledged inside the window
	Window  time.Duration // how long the clients ran
	Latency []time.Duration
}

// Throughput is acknowledged operations per second.
func (r loadResult) Throughput() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Window.Seconds()
}

// Percentile returns the p-th percentile (0 < p ≤ 100) latency in
// milliseconds (nearest rank), or 0 without samples.
func (r loadResult) Percentile(p float64) float64 {
	if len(r.Latency) == 0 {
		return 0
	}
	s := slices.Clone(r.Latency)
	slices.Sort(s)
	rank := int(p/100*float64(len(s))+0.999999) - 1
	rank = max(0, min(rank, len(s)-1))
	return float64(s[rank]) / float64(time.Millisecond)
}

// loadOp performs one operation of client c (0..clients-1), its seq-th
// (from 0). It must be safe for concurrent use by different clients.
type loadOp func(ctx context.Context, c, seq int) error

// runLoad runs a closed loop: clients goroutines, each issuing op after op
// (the next once the previous is acknowledged) for window. Only operations
// that complete inside the window count; the first error ends the run.
// Every client finishes its current operation (so a create is always
// followed by its delete when ops alternate) before runLoad returns.
func runLoad(ctx context.Context, clients int, window time.Duration, op loadOp) (loadResult, error) {
	if clients < 1 {
		return loadResult{}, fmt.Errorf("load: %d clients", clients)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		res   loadResult
		first error
		wg    sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(window)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1024)
			for seq := 0; ; seq++ {
				t0 := time.Now()
				if !t0.Before(end) && seq%2 == 0 {
					break // stop between pairs: nothing left behind
				}
				if err := op(ctx, c, seq); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("client %d, operation %d: %w", c, seq, err)
						cancel()
					}
					mu.Unlock()
					break
				}
				if t1 := time.Now(); t1.Before(end) {
					lat = append(lat, t1.Sub(t0))
				}
			}
			mu.Lock()
			res.Latency = append(res.Latency, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Ops = len(res.Latency)
	res.Window = window
	if first != nil {
		return res, first
	}
	return res, ctx.Err()
}
