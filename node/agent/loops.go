package agent

import (
	"context"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// The agent's background loops (resync, heartbeat) and its backoff.

// backoffReset: a watch that lasted this long ran well, and the backoff
// starts over after it ends.
const backoffReset = 30 * time.Second

// backoff is the agent's wait between attempts: from 100 ms, doubling up
// to 5 s, each wait drawn between half and one and a half of it, so that
// thousands of agents that lost the same server (a restart, a leader
// change) do not come back in step.
type backoff struct{ d time.Duration }

func (b *backoff) next() time.Duration {
	if b.d == 0 {
		b.d = 100 * time.Millisecond
	}
	d := b.d/2 + rand.N(b.d)
	b.d = min(b.d*2, 5*time.Second)
	return d
}

// resyncLoop realizes the current desired state every ResyncInterval and
// reports the outcome, changed or not: reports live in the leader's memory,
// so a new leader (after a failover, or a restart) learns every host's
// state within one interval even when nothing changes. The report is also
// the host's sign of life.
func (a *Agent) resyncLoop(ctx context.Context) {
	every := a.cfg.ResyncInterval
	if every <= 0 {
		every = DefaultResyncInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.realizeMu.Lock()
		if a.desired.Revision == 0 {
			a.realizeMu.Unlock()
			continue
		}
		rep := &sdnv1.ReportRealizedRequest{Node: a.cfg.Node, Revision: a.desired.Revision}
		started := time.Now()
		if err := a.realizer.Realize(ctx, a.desired); err != nil {
			rep.Error = err.Error()
			a.log.Error("resync desired state", "revision", a.desired.Revision, "err", err)
		}
		a.storeReport(rep, started)
		a.Resyncs++
		a.realizeMu.Unlock()
		if ctx.Err() == nil {
			a.report(ctx, rep)
		}
	}
}

// heartbeatLoop tells the leader every HeartbeatInterval that this host is
// alive. Heartbeats cost the servers no raft write: the leader keeps them
// in memory and writes only when a host goes down or comes back. A host
// the servers no longer know (removed, or released after being down past
// the cluster's node_release_after) registers again.
func (a *Agent) heartbeatLoop(ctx context.Context) {
	every := a.cfg.HeartbeatInterval
	if every <= 0 {
		every = DefaultHeartbeatInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// The latest realize outcome rides along: a leader just elected
		// learns it within one heartbeat, and one that a PROGRESS moved
		// forward reaches the leader (which never lets it move a report
		// back or over an error).
		var realized *sdnv1.ReportRealizedRequest
		if last := a.lastReport.Load(); last != nil {
			realized = &sdnv1.ReportRealizedRequest{Revision: last.Revision, Error: last.Error}
		}
		hctx, cancel := context.WithTimeout(ctx, max(every, 5*time.Second))
		_, err := a.nodes.Heartbeat(hctx, &sdnv1.HeartbeatRequest{Node: a.cfg.Node, Realized: realized})
		cancel()
		switch {
		case err == nil:
			if failing {
				a.log.Info("heartbeats reach the leader again")
			}
			failing = false
		case ctx.Err() != nil:
			return
		case status.Code(err) == codes.NotFound:
			a.log.Warn("the servers do not know this host (removed, or released after being down longer than the cluster's node_release_after); registering again", "err", err)
			if _, err := a.Register(ctx); err != nil {
				a.log.Warn("register again", "err", err)
			}
		case !failing:
			// Once per outage; the servers mark the host down if it
			// lasts their --node-down-after.
			failing = true
			a.log.Warn("heartbeat to the leader failed; retrying every interval", "interval", every, "err", err)
		}
	}
}
