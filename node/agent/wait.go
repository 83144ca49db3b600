package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Waiting on the agent: what callers on this host (the CNI service, the
// Docker driver, the DNS server, the leak loop) use to read the desired
// state and to wait for it, or for its realize.

// View calls fn with the current desired state, which does not change while fn
// runs. fn must not keep it or modify it.
func (a *Agent) View(fn func(m *model.Desired)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fn(a.desired)
}

// WaitFor waits until cond holds for the desired state (evaluated now and after
// every change, under View's rules) or ctx ends.
func (a *Agent) WaitFor(ctx context.Context, cond func(m *model.Desired) bool) error {
	for {
		a.mu.Lock()
		ok, ch := cond(a.desired), a.changed
		a.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// storeReport records the outcome of a realize that started at started
// (zero for a PROGRESS, which realizes nothing and keeps the last one's)
// and wakes Realized.
func (a *Agent) storeReport(rep *sdnv1.ReportRealizedRequest, started time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastReport.Store(rep)
	if !started.IsZero() {
		a.reportStarted = started
	}
	close(a.reported)
	a.reported = make(chan struct{})
}

// Realized waits until a realize of revision rev or later that started at
// or after since has finished (the watch path's, a resync's, a Sync's) and
// returns nil if it succeeded. It is for a caller that changed the host at
// since and then published the change to the servers (CNI ADD plugs the
// port, then attaches): the watch path's realize of the new revision sees
// both, and nothing is realized twice. When that realize failed, or rev
// was realized already but before since (an ADD repeated for a workload
// attached before, whose port was plugged again), it is Sync: one more
// realize, whose outcome it returns. A caller that changes the host after
// publishing must use Sync.
func (a *Agent) Realized(ctx context.Context, rev uint64, since time.Time) error {
	for {
		a.mu.Lock()
		ch, started := a.reported, a.reportStarted
		last := a.lastReport.Load()
		a.mu.Unlock()
		if last != nil && last.Revision >= rev {
			if last.Error == "" && !started.Before(since) {
				return nil
			}
			return a.Sync(ctx, rev)
		}
		select {
		case <-ctx.Done():
			have := uint64(0)
			if last != nil {
				have = last.Revision
			}
			return fmt.Errorf("wait for this host to realize revision %d (last realized %d): %w", rev, have, ctx.Err())
		case <-ch:
		}
	}
}

// Sync waits until the desired state has reached revision rev, then realizes the
// current desired state once more and returns the outcome. The extra realize is
// for changes made on the host since the last one, e.g. a workload port
// plugged after its workload arrived (CNI ADD): when Sync returns nil the
// datapath holds everything revision rev asks for.
func (a *Agent) Sync(ctx context.Context, rev uint64) error {
	var have uint64
	err := a.WaitFor(ctx, func(m *model.Desired) bool { have = m.Revision; return have >= rev })
	if err != nil {
		return fmt.Errorf("wait for desired state revision %d from the servers (have %d): %w", rev, have, err)
	}
	a.realizeMu.Lock()
	rep := &sdnv1.ReportRealizedRequest{Node: a.cfg.Node, Revision: a.desired.Revision}
	started := time.Now()
	rerr := a.realizer.Realize(ctx, a.desired)
	if rerr != nil {
		rep.Error = rerr.Error()
	}
	prev := a.lastReport.Load()
	changed := prev == nil || prev.Error != rep.Error || prev.Revision != rep.Revision
	a.storeReport(rep, started)
	a.realizeMu.Unlock()
	if changed {
		// A realize that failed on the watch path and succeeds here must
		// reach the servers, or they wait for this host forever.
		a.report(ctx, rep)
	}
	if rerr != nil {
		return fmt.Errorf("realize desired state revision %d: %w", rep.Revision, rerr)
	}
	return nil
}
