package suites

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/bench/scalesim"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// burst attaches Burst workloads on random hosts from BurstClients
// concurrent clients, and measures each attach's latency, the time from
// the first attach until every host received every workload placed there
// (its last revision that concerns it), and until WaitRealized said every
// host realized the last attach's revision.
func (r *scaleRun) burst(ctx context.Context) error {
	if r.o.Burst < 0 {
		return nil
	}
	n := r.o.Burst
	keys, targets := make([]string, n), make([]int, n)
	for i := range n {
		keys[i], targets[i] = model.WorkloadKey(scaleNetwork, fmt.Sprintf("burst-%d", i)), r.rng.IntN(r.o.Hosts)
	}
	bw := newBurstWatch(r.o.Hosts, keys, targets)
	r.sim.SetObserver(bw)
	defer r.sim.SetObserver(nil)
	before := r.sim.Stats()
	r.logf("burst: %d attaches from %d clients", n, r.o.BurstClients)
	t0 := time.Now()
	lat, last, failed, retries := r.attachAll(ctx, targets)
	if failed > 0 {
		return fmt.Errorf("%d of %d attaches failed", failed, n)
	}
	attached := time.Since(t0)
	wctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	var all time.Time
	for {
		done, at := bw.done()
		if done == r.o.Hosts {
			all = at
			break
		}
		if wctx.Err() != nil {
			return fmt.Errorf("%d of %d hosts have every workload placed there after %s", done, r.o.Hosts, waitTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	realized, err := r.realized(ctx, last)
	if err != nil {
		return err
	}
	r.res.set(scaleFigBurstP50, ms(percentile(lat, 50)))
	r.res.set(scaleFigBurstP99, ms(percentile(lat, 99)))
	r.res.set(scaleFigBurstAll, all.Sub(t0).Seconds())
	r.res.set(scaleFigBurstRealized, realized.Sub(t0).Seconds())
	r.res.note("burst", "%d attaches in %.2f s (%d tries again after Unavailable or a timeout); hosts received %s", n, attached.Seconds(), retries, r.sim.Stats().Sub(before))
	return nil
}

// attachAll attaches burst-i on host targets[i] for every i, from
// BurstClients clients, and returns each attach's latency (retries
// included), the highest revision answered, how many failed and how many
// tries were made again.
func (r *scaleRun) attachAll(ctx context.Context, targets []int) (lat []time.Duration, last uint64, failed, retries int) {
	wl := sdnv1.NewWorkloadServiceClient(r.api(ctx))
	var (
		next atomic.Int64
		mu   sync.Mutex
		wg   sync.WaitGroup
	)
	for range r.o.BurstClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(targets) || ctx.Err() != nil {
					return
				}
				t := time.Now()
				res, again, err := attach(ctx, wl, fmt.Sprintf("burst-%d", i), r.sim.Hosts()[targets[i]].Name)
				d := time.Since(t)
				mu.Lock()
				retries += again
				if err != nil {
					failed++
					if failed == 1 {
						r.logf("burst: attach burst-%d failed: %v", i, err)
					}
				} else {
					lat = append(lat, d)
					last = max(last, res.Revision)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return lat, last, failed, retries
}

// attachTries bounds how long an attach is tried again.
const attachTries = time.Minute

// attach attaches workload name of scaleNetwork on host, trying again
// (an attach of a workload already there returns it) while the answer is
// Unavailable (no leader: an election under load) or a timeout, for up to
// attachTries. It returns the answer and how many tries failed before.
func attach(ctx context.Context, wl sdnv1.WorkloadServiceClient, name, host string) (*sdnv1.AttachWorkloadResponse, int, error) {
	deadline := time.Now().Add(attachTries)
	for again := 0; ; again++ {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		res, err := wl.Attach(cctx, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{Name: name, Network: scaleNetwork, Node: host}})
		cancel()
		code := status.Code(err)
		if err == nil || code != codes.Unavailable && code != codes.DeadlineExceeded || time.Now().After(deadline) || ctx.Err() != nil {
			return res, again, err
		}
		sleepCtx(ctx, 200*time.Millisecond)
	}
}

// stormErrorWindow is how long after every host is watching again the
// storm's errors are still counted: one heartbeat timeout, so that
// heartbeats sent during the storm have had their outcome.
const stormErrorWindow = 6 * time.Second

// storm SIGKILLs the leader and measures the time until every host is
// watching again from a surviving server, with the change made after the
// election (a new network, so that a host on a resumed watch proves it is
// current), then counts the agents' errors and restarts the killed
// server.
func (r *scaleRun) storm(ctx context.Context) error {
	if r.o.NoStorm || r.o.Servers < 2 {
		return nil
	}
	lead, err := r.srv.leader(ctx)
	if err != nil {
		return err
	}
	before := r.sim.Stats()
	r.srv.memory() // the leader's peak so far, before it is gone
	r.logf("storm: killing the leader, %s", r.srv.procs[lead].id)
	t0 := time.Now()
	if err := r.srv.kill(lead); err != nil {
		return err
	}
	marker, err := r.stormMarker(ctx)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, registrationTimeout(r.o.Hosts))
	defer cancel()
	last := t0
	err = r.sim.WaitAll(wctx, 20*time.Millisecond, func(h *scalesim.Host) bool {
		return h.Watching() && h.Revision() >= marker && h.Server() != lead
	}, func(n int) {
		if time.Since(last) >= 3*time.Second {
			last = time.Now()
			r.logf("storm: %d of %d hosts watching again (%.0f s)", n, r.o.Hosts, time.Since(t0).Seconds())
		}
	})
	if err != nil {
		return fmt.Errorf("hosts watching again: %w", err)
	}
	took := time.Since(t0)
	sleepCtx(ctx, stormErrorWindow)
	d := r.sim.Stats().Sub(before)
	r.res.set(scaleFigStorm, took.Seconds())
	r.res.set(scaleFigStormErrors, float64(d.Errors.Total()))
	r.res.note("reconnect storm", "every host watching again %.2f s after the kill; errors until %s later: %s; server moves %d, registrations %d, snapshots %d",
		took.Seconds(), stormErrorWindow, d.Errors, d.Moves, d.Registrations, d.Snapshots)
	r.logf("storm: every host watching again after %.2f s; restarting %s", took.Seconds(), r.srv.procs[lead].id)
	return r.srv.restart(ctx, lead)
}

// stormMarker creates a network once a new leader answers and returns its
// revision.
func (r *scaleRun) stormMarker(ctx context.Context) (uint64, error) {
	var rev uint64
	err := waitFor(ctx, time.Minute, " (after killing the leader)", func() error {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		res, err := sdnv1.NewConfigServiceClient(r.api(ctx)).Apply(cctx, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: scaleStormNetwork}}})
		if err != nil {
			return fmt.Errorf("apply network %s: %w", scaleStormNetwork, err)
		}
		rev = res.Revision
		return nil
	})
	return rev, err
}

// verify compares every host's state with the leader's lists.
func (r *scaleRun) verify(ctx context.Context) error {
	bad, exp, err := r.sim.Verify(ctx, r.api(ctx), time.Minute)
	if err != nil {
		return err
	}
	r.res.set(scaleFigWrong, float64(len(bad)))
	if len(bad) == 0 {
		r.res.note("verify", "every host holds the state of revision %d (%d networks, %d nodes)", exp.Revision, len(exp.Networks), len(exp.Nodes))
		return nil
	}
	msg := ""
	for _, m := range bad[:min(3, len(bad))] {
		msg += fmt.Sprintf("; %s: %s", m.Host, m.Diff)
	}
	r.res.note("verify", "%d hosts differ from revision %d%s", len(bad), exp.Revision, msg)
	return nil
}
