package suites

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	var r loadResult
	for i := 1; i <= 100; i++ {
		r.Latency = append(r.Latency, time.Duration(101-i)*time.Millisecond)
	}
	for _, c := range []struct{ p, want float64 }{{50, 50}, {99, 99}, {100, 100}, {1, 1}} {
		if got := r.Percentile(c.p); got != c.want {
			t.Errorf("p%v = %v ms, want %v", c.p, got, c.want)
		}
	}
	if got := (loadResult{}).Percentile(50); got != 0 {
		t.Errorf("no samples: %v", got)
	}
}

func TestRunLoadEndsOnPairsAndStopsOnError(t *testing.T) {
	var mu sync.Mutex
	live := map[[2]int]bool{}
	res, err := runLoad(context.Background(), 4, 50*time.Millisecond, func(_ context.Context, c, seq int) error {
		mu.Lock()
		defer mu.Unlock()
		k := [2]int{c, seq / 2}
		if seq%2 == 0 {
			live[k] = true
		} else {
			delete(live, k)
		}
		time.Sleep(time.Millisecond)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 0 {
		t.Errorf("%d records created and never deleted", len(live))
	}
	if res.Ops == 0 || res.Throughput() <= 0 {
		t.Errorf("no operations counted: %+v", res)
	}
	boom := errors.New("boom")
	_, err = runLoad(context.Background(), 2, time.Second, func(_ context.Context, c, seq int) error {
		if seq == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("error %v, want boom", err)
	}
}
