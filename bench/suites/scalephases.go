package suites

import (
	"context"
	"fmt"
	"time"

	"github.com/sdn-dev/sdn/bench/scalesim"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// registrationTimeout is how long the registration may take: 2 min plus
// 60 ms a host (7 min at 5,000; the server of issue 13 took 85 s).
func registrationTimeout(hosts int) time.Duration {
	return 2*time.Minute + time.Duration(hosts)*60*time.Millisecond
}

// registration starts every host at once and measures the time until
// the last one has its first whole snapshot.
func (r *scaleRun) registration(ctx context.Context) error {
	t0 := time.Now()
	r.sim.Start(ctx)
	wctx, cancel := context.WithTimeout(ctx, registrationTimeout(r.o.Hosts))
	defer cancel()
	last := t0
	err := r.sim.WaitAll(wctx, 50*time.Millisecond, func(h *scalesim.Host) bool { _, ok := h.FirstSnapshot(); return ok }, func(n int) {
		if time.Since(last) >= 3*time.Second {
			last = time.Now()
			reg, _ := r.sim.Count()
			r.logf("registration: %d registered, %d with their first snapshot (%.0f s)", reg, n, time.Since(t0).Seconds())
		}
	})
	if err != nil {
		return fmt.Errorf("hosts with their first snapshot: %w", err)
	}
	var end time.Time
	for _, h := range r.sim.Hosts() {
		if at, _ := h.FirstSnapshot(); at.After(end) {
			end = at
		}
	}
	took := end.Sub(t0)
	r.res.set(scaleFigRegistration, took.Seconds())
	st := r.sim.Stats()
	r.res.note("registration", "%.2f s; hosts received %s", took.Seconds(), st)
	r.logf("registration: all %d hosts have their first snapshot after %.2f s", r.o.Hosts, took.Seconds())
	return nil
}

// rest measures the servers' CPU over Rest and their RSS at its end, with
// nothing going on but heartbeats and resync reports.
func (r *scaleRun) rest(ctx context.Context) error {
	n := len(r.srv.procs)
	before := make([]int64, n)
	for i := range n {
		t, err := r.srv.cpuTicks(i)
		if err != nil {
			return err
		}
		before[i] = t
	}
	t0 := time.Now()
	r.logf("rest: measuring server CPU for %s", r.o.Rest)
	sleepCtx(ctx, r.o.Rest)
	if err := ctx.Err(); err != nil {
		return err
	}
	elapsed := time.Since(t0)
	cpu := make([]float64, n)
	for i := range n {
		t, err := r.srv.cpuTicks(i)
		if err != nil {
			return err
		}
		// Linux's USER_HZ is 100: a tick is 10 ms.
		cpu[i] = float64(t-before[i]) * 10 * float64(time.Millisecond) / float64(elapsed) * 100
	}
	rss, _ := r.srv.memory()
	maxCPU := 0.0
	for _, c := range cpu {
		maxCPU = max(maxCPU, c)
	}
	r.res.set(scaleFigRestCPU, maxCPU)
	r.res.set(scaleFigRestRSS, float64(maxOf(rss))/1024)
	r.res.note("at rest", "CPU %v %% of a core, RSS %s MiB (per server, over %.0f s)", roundAll(cpu), mibList(rss), elapsed.Seconds())
	return nil
}

func roundAll(vs []float64) []float64 {
	out := make([]float64, len(vs))
	for i, v := range vs {
		out[i] = float64(int(v*10+0.5)) / 10
	}
	return out
}

// waitTimeout bounds the wait for one change to reach its hosts.
const waitTimeout = 2 * time.Minute

// singles attaches Singles workloads one at a time, each on a random
// host, and measures from each Attach response until the target host
// received it, how many other hosts received anything for it, and when
// WaitRealized said it is realized.
func (r *scaleRun) singles(ctx context.Context) error {
	f := newFanout(r.o.Hosts)
	r.sim.SetObserver(f)
	defer r.sim.SetObserver(nil)
	wl := sdnv1.NewWorkloadServiceClient(r.api(ctx))
	var lat, real []time.Duration
	others, early, retries := 0, 0, 0
	for i := range r.o.Singles {
		target := r.rng.IntN(r.o.Hosts)
		name := fmt.Sprintf("single-%d", i)
		id := f.watch(model.WorkloadKey(scaleNetwork, name))
		res, again, err := attach(ctx, wl, name, r.sim.Hosts()[target].Name)
		retries += again
		if err != nil {
			return fmt.Errorf("attach %s: %w", name, err)
		}
		answered := time.Now()
		at, err := waitFirst(ctx, f, target, id)
		if err != nil {
			return fmt.Errorf("workload %s on host %s: %w", name, r.sim.Hosts()[target].Name, err)
		}
		if at.Before(answered) {
			early++
		}
		lat = append(lat, max(0, at.Sub(answered)))
		done, err := r.realized(ctx, res.Revision)
		if err != nil {
			return err
		}
		real = append(real, done.Sub(answered))
		o := f.others(target, id, res.Revision)
		others = max(others, o)
	}
	r.res.set(scaleFigSingleP50, ms(percentile(lat, 50)))
	r.res.set(scaleFigSingleP99, ms(percentile(lat, 99)))
	r.res.set(scaleFigSingleMax, ms(percentile(lat, 100)))
	r.res.set(scaleFigSingleOthers, float64(others))
	r.res.set(scaleFigSingleRealizedP50, ms(percentile(real, 50)))
	r.res.set(scaleFigSingleRealizedMax, ms(percentile(real, 100)))
	r.res.note("single attaches", "%d (%d tries again); target host had it before the Attach response in %d (counted as 0 ms); other hosts receiving anything for one: at most %d of %d",
		r.o.Singles, retries, early, others, r.o.Hosts-1)
	return nil
}

// waitFirst waits until host received the watched change id.
func waitFirst(ctx context.Context, f *fanout, host, id int) (time.Time, error) {
	deadline := time.Now().Add(waitTimeout)
	for {
		if at, ok := f.first(host, id); ok {
			return at, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("not received within %s", waitTimeout)
		}
		if err := ctx.Err(); err != nil {
			return time.Time{}, err
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// network creates a network, a change every host needs, and measures from
// the Apply call (which commits it) until each host received it, and until
// WaitRealized said every host realized it.
func (r *scaleRun) network(ctx context.Context) error {
	f := newFanout(r.o.Hosts)
	r.sim.SetObserver(f)
	defer r.sim.SetObserver(nil)
	id := f.watch(scaleFanoutNetwork)
	t0 := time.Now()
	res, err := sdnv1.NewConfigServiceClient(r.api(ctx)).Apply(ctx, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: scaleFanoutNetwork}}})
	if err != nil {
		return fmt.Errorf("apply network %s: %w", scaleFanoutNetwork, err)
	}
	var lat []time.Duration
	for i := range r.o.Hosts {
		at, err := waitFirst(ctx, f, i, id)
		if err != nil {
			return fmt.Errorf("network %s on host %s: %w", scaleFanoutNetwork, r.sim.Hosts()[i].Name, err)
		}
		lat = append(lat, at.Sub(t0))
	}
	done, err := r.realized(ctx, res.Revision)
	if err != nil {
		return err
	}
	r.res.set(scaleFigNetworkP50, ms(percentile(lat, 50)))
	r.res.set(scaleFigNetworkP99, ms(percentile(lat, 99)))
	r.res.set(scaleFigNetworkMax, ms(percentile(lat, 100)))
	r.res.set(scaleFigNetworkRealized, ms(done.Sub(t0)))
	return nil
}
