package suites

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/sdn-dev/sdn/bench"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// The label figure: lat-cli (host2) flips between role=blocked and
// role=allowed through PolicyService.LabelWorkload while a loop of short
// TCP connects runs from it to lat-srv (host1), whose gate policy admits
// only role=allowed. Two times per flip, from just before the call: until
// StatusService.WaitRealized says every host realized the call's revision,
// and until the probe's outcome flipped for good.

// Probe timing: a connect is started every polProbeEvery; one that has not
// connected after polProbeTimeout counts as blocked (its SYN was dropped:
// the next retransmission would come after 1 s); the new outcome is
// confirmed once polProbeStable connects in a row, all resolved, show it.
const (
	polProbeEvery   = 5 * time.Millisecond
	polProbeTimeout = 200 * time.Millisecond
	polProbeStable  = 20
	polFlipDeadline = 15 * time.Second
)

// labelState is what the label figure keeps across rounds.
type labelState struct {
	conn     *grpc.ClientConn
	allowed  bool            // lat-cli's role is "allowed" now
	realized []time.Duration // every flip so far
	probed   []time.Duration
}

// labelRound flips lat-cli's label sizes.flips times and returns the p50
// and p99 of this round's flips.
func (p *policyBench) labelRound(ctx context.Context, env *bench.Env) (map[string]float64, error) {
	if p.labelState.conn == nil {
		conn, err := p.lab.Dial()
		if err != nil {
			return nil, err
		}
		p.labelState.conn = conn
	}
	var real, probe loadResult
	for range p.sizes.flips {
		r, c, err := p.flip(ctx)
		if err != nil {
			return nil, err
		}
		real.Latency, probe.Latency = append(real.Latency, r), append(probe.Latency, c)
	}
	p.realized, p.probed = append(p.realized, real.Latency...), append(p.probed, probe.Latency...)
	all := func(d []time.Duration) string {
		r := loadResult{Latency: d}
		return fmt.Sprintf("p50 %.1f ms, p99 %.1f ms, max %.1f ms", r.Percentile(50), r.Percentile(99), r.Percentile(100))
	}
	env.Note("label flips, all rounds", fmt.Sprintf("%d flips: realized %s; probe confirmed %s", len(p.realized), all(p.realized), all(p.probed)))
	env.Logf("label flips: realized p50 %.1f p99 %.1f ms, probe p50 %.1f p99 %.1f ms",
		real.Percentile(50), real.Percentile(99), probe.Percentile(50), probe.Percentile(99))
	return map[string]float64{
		figLabelRealized50: real.Percentile(50), figLabelRealized99: real.Percentile(99),
		figLabelProbe50: probe.Percentile(50), figLabelProbe99: probe.Percentile(99),
	}, nil
}

// flip changes lat-cli's role once and returns the two times.
func (p *policyBench) flip(ctx context.Context) (realized, confirmed time.Duration, err error) {
	want := !p.allowed
	role := "blocked"
	if want {
		role = "allowed"
	}
	cli, srv := p.lat[1], p.lat[0]
	pr := startConnectLoop(ctx, cli.NS, net.JoinHostPort(srv.IP, strconv.Itoa(polLatPort)))
	defer pr.stop()
	time.Sleep(10 * polProbeEvery) // a few connects of the old state

	t0 := time.Now()
	res, err := sdnv1.NewPolicyServiceClient(p.labelState.conn).LabelWorkload(ctx, &sdnv1.LabelWorkloadRequest{
		Network: cli.Network, Name: cli.SDNName(), Set: map[string]string{"role": role},
	})
	if err != nil {
		return 0, 0, fmt.Errorf("label %s/%s role=%s: %w", cli.Network, cli.SDNName(), role, err)
	}
	if err := waitRealized(ctx, p.labelState.conn, res.GetRevision()); err != nil {
		return 0, 0, err
	}
	realized = time.Since(t0)
	at, err := pr.confirm(ctx, t0, want)
	if err != nil {
		return 0, 0, fmt.Errorf("role=%s (revision %d, realized after %v): %w", role, res.GetRevision(), realized.Round(time.Millisecond), err)
	}
	p.allowed = want
	return realized, at.Sub(t0), nil
}

// waitRealized waits, through StatusService.WaitRealized, until every host
// realized rev; a host marked down is an error (it was not waited for).
func waitRealized(ctx context.Context, conn *grpc.ClientConn, rev uint64) error {
	st, err := sdnv1.NewStatusServiceClient(conn).WaitRealized(ctx, &sdnv1.WaitRealizedRequest{Revision: rev, TimeoutMs: polFlipDeadline.Milliseconds()})
	if err != nil {
		return fmt.Errorf("wait realized %d: %w", rev, err)
	}
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("wait realized %d: the stream ended without done", rev)
		}
		if err != nil {
			return fmt.Errorf("wait realized %d: %w", rev, err)
		}
		if !m.GetDone() {
			continue
		}
		if len(m.GetPending()) > 0 || len(m.GetDown()) > 0 {
			return fmt.Errorf("revision %d not realized within %v: pending %s, down %s", rev, polFlipDeadline,
				strings.Join(m.GetPending(), ","), strings.Join(m.GetDown(), ","))
		}
		return nil
	}
}

// connectLoop starts a TCP connect from a namespace to an address every
// polProbeEvery, each given polProbeTimeout, and records their outcomes.
type connectLoop struct {
	mu       sync.Mutex
	attempts []*connectAttempt // by start time
	errs     []error
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

type connectAttempt struct {
	start    time.Time
	done, ok bool
}

func startConnectLoop(ctx context.Context, ns, addr string) *connectLoop {
	ctx, cancel := context.WithCancel(ctx)
	l := &connectLoop{cancel: cancel}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTicker(polProbeEvery)
		defer t.Stop()
		for {
			a := &connectAttempt{start: time.Now()}
			l.mu.Lock()
			l.attempts = append(l.attempts, a)
			l.mu.Unlock()
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				ok, err := connectOnce(ns, addr)
				l.mu.Lock()
				defer l.mu.Unlock()
				a.done, a.ok = true, ok
				if err != nil {
					l.errs = append(l.errs, err)
				}
			}()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return l
}

// connectOnce connects from namespace ns to addr: whether it connected
// within polProbeTimeout; an error only when the bench itself failed.
func connectOnce(ns, addr string) (bool, error) {
	var c net.Conn
	err := inNS(ns, func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, polProbeTimeout)
		return err
	})
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) {
			return false, nil
		}
		return false, err
	}
	_ = c.Close()
	return true, nil
}

// stop ends the loop and waits for the connects under way.
func (l *connectLoop) stop() {
	l.cancel()
	l.wg.Wait()
}

// confirm waits until the attempts show want for good and returns the
// start of the first attempt of that final run: every resolved attempt
// from it on has outcome want, at least polProbeStable of them, and every
// attempt started before t0 showed the old outcome.
func (l *connectLoop) confirm(ctx context.Context, t0 time.Time, want bool) (time.Time, error) {
	deadline := time.Now().Add(polFlipDeadline)
	for {
		at, ok, err := l.check(t0, want)
		if err != nil || ok {
			return at, err
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("the probe did not show connects %s for good within %v", reachWord(want), polFlipDeadline)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(polProbeEvery):
		}
	}
}

// check looks at the resolved prefix of the attempts (see confirm).
func (l *connectLoop) check(t0 time.Time, want bool) (time.Time, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) > 0 {
		return time.Time{}, false, errors.Join(l.errs...)
	}
	first, run := -1, 0
	for i, a := range l.attempts {
		if !a.done {
			break
		}
		if a.start.Before(t0) && a.ok == want {
			return time.Time{}, false, fmt.Errorf("a connect started %v before the label change was already %s", t0.Sub(a.start).Round(time.Millisecond), reachWord(want))
		}
		if a.ok != want {
			first, run = -1, 0
			continue
		}
		if first < 0 {
			first = i
		}
		run++
	}
	if run < polProbeStable {
		return time.Time{}, false, nil
	}
	return l.attempts[first].start, true, nil
}

// reachWord says what a connect outcome is.
func reachWord(ok bool) string {
	if ok {
		return "allowed"
	}
	return "blocked"
}
