package suites

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sdn-dev/sdn/bench/cnidrive"
)

// loadResult is what one closed-loop load run measured: operations
// acknowledged inside the window, how long the clients ran, and each
// operation's latency. A CNI batch is measured the same way, so it is
// bench/cnidrive's Result (Throughput, Percentile).
type loadResult = cnidrive.Result

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
