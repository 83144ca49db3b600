package scalesim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Host is one simulated agent.
type Host struct {
	Index      int
	Name       string
	UnderlayIP string

	sim *Sim
	rng *rand.Rand // the run goroutine's only

	// mu guards desired (replaced by a snapshot, changed by deltas) and
	// the connection (replaced when the host moves to another server).
	mu      sync.Mutex
	desired *model.Desired
	server  int
	conn    *grpc.ClientConn
	nodes   sdnv1.NodeServiceClient

	registered atomic.Bool
	watching   atomic.Bool
	revision   atomic.Uint64
	// lastReport is the latest realize outcome: sent when a watch opens,
	// with every resync, and riding on every heartbeat.
	lastReport atomic.Pointer[sdnv1.ReportRealizedRequest]
	// firstSnapshot is when the first whole snapshot arrived (Unix ns).
	firstSnapshot atomic.Int64
	c             counters
}

// underlayBase is the first simulated underlay address: hosts take
// 198.18.0.1 on, one each (198.18.0.0/15 holds 131,070 of them).
var underlayBase = netip.MustParseAddr("198.18.0.1")

// underlayIP returns host i's underlay address.
func underlayIP(i int) string {
	a := underlayBase.As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}

// Revision is the revision of the host's desired state.
func (h *Host) Revision() uint64 { return h.revision.Load() }

// Watching reports whether the host's watch is open and has delivered its
// first snapshot or, on a resumed watch, its first event.
func (h *Host) Watching() bool { return h.watching.Load() }

// FirstSnapshot returns when the host's first whole snapshot arrived
// (false: none yet).
func (h *Host) FirstSnapshot() (time.Time, bool) {
	ns := h.firstSnapshot.Load()
	return time.Unix(0, ns), ns != 0
}

// Registered reports whether the host's latest registration succeeded.
func (h *Host) Registered() bool { return h.registered.Load() }

// Server is the index of the server the host talks to now.
func (h *Host) Server() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.server
}

// Stats returns what the host received and what failed for it.
func (h *Host) Stats() Stats {
	var s Stats
	h.c.addTo(&s)
	return s
}

// View calls fn with the host's desired state, which does not change while
// fn runs; fn must not keep or modify it.
func (h *Host) View(fn func(d *model.Desired)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fn(h.desired)
}

// client returns the host's NodeService client on its current connection.
func (h *Host) client() sdnv1.NodeServiceClient {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.nodes
}

// connect opens the host's connection to server i (lazily: gRPC dials at
// the first call) and closes the one it had.
func (h *Host) connect(i int) error {
	conn, err := h.sim.dial(h.sim.cfg.Servers[i])
	if err != nil {
		return fmt.Errorf("host %s: connection to %s: %w", h.Name, h.sim.cfg.Servers[i], err)
	}
	h.mu.Lock()
	old := h.conn
	h.server, h.conn, h.nodes = i, conn, sdnv1.NewNodeServiceClient(conn)
	h.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// move switches to the next server after a failure (a no-op with one
// server).
func (h *Host) move() {
	n := len(h.sim.cfg.Servers)
	if n < 2 {
		return
	}
	if err := h.connect((h.Server() + 1) % n); err != nil {
		h.sim.log.Warn("move to the next server", "host", h.Name, "err", err)
		return
	}
	h.c.moves.Add(1)
}

// run follows the servers until ctx ends, as node/agent's Run does:
// register, watch from the revision held, and on failure back off and try
// the next server.
func (h *Host) run(ctx context.Context) {
	go h.resyncLoop(ctx)
	b := newBackoff(h.rng)
	beating := false
	for ctx.Err() == nil {
		if !h.registered.Load() {
			if err := h.register(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				h.c.registerFailures.Add(1)
				h.sim.sample(kindRegister, err)
				h.afterFailure(ctx, b, err)
				continue
			}
			if !beating {
				beating = true
				go h.heartbeatLoop(ctx)
			}
		}
		got, err := h.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		h.c.watchBroken.Add(1)
		h.sim.sample(kindWatch, err)
		if status.Code(err) == codes.NotFound {
			h.c.notFound.Add(1)
			h.registered.Store(false)
		}
		if got {
			b.reset()
		}
		h.afterFailure(ctx, b, err)
	}
}

// afterFailure moves to the next server unless the failure says the
// server works (it does not know the host), then waits out the backoff.
func (h *Host) afterFailure(ctx context.Context, b *backoff, err error) {
	if status.Code(err) != codes.NotFound {
		h.move()
	}
	sleep(ctx, b.wait())
}

// register registers the host (again).
func (h *Host) register(ctx context.Context) error {
	var clusterID string
	h.View(func(d *model.Desired) { clusterID = d.ClusterID })
	rctx, cancel := context.WithTimeout(ctx, h.sim.cfg.CallTimeout)
	defer cancel()
	_, err := h.client().Register(rctx, &sdnv1.RegisterNodeRequest{
		Name: h.Name, UnderlayIp: h.UnderlayIP, UnderlayMtu: 1500, ClusterId: clusterID,
	})
	if err != nil {
		return fmt.Errorf("register host %s: %w", h.Name, err)
	}
	h.c.registrations.Add(1)
	h.registered.Store(true)
	return nil
}

// report sends a realize outcome, as the agent does after a burst of
// revisions, when a watch opens, and with every resync.
func (h *Host) report(ctx context.Context, rep *sdnv1.ReportRealizedRequest) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := h.client().ReportRealized(rctx, rep)
	switch {
	case err == nil:
		h.c.reports.Add(1)
	case ctx.Err() != nil:
	case status.Code(err) == codes.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded):
		h.c.reportTimeouts.Add(1)
	default:
		h.c.reportFailures.Add(1)
		h.sim.sample(kindReport, err)
	}
}

// heartbeatLoop heartbeats every interval with the latest report riding
// along, and registers again when the servers do not know the host.
func (h *Host) heartbeatLoop(ctx context.Context) {
	every := h.sim.cfg.HeartbeatInterval
	tick(ctx, every, func() {
		var realized *sdnv1.ReportRealizedRequest
		if last := h.lastReport.Load(); last != nil {
			realized = &sdnv1.ReportRealizedRequest{Revision: last.Revision, Error: last.Error}
		}
		hctx, cancel := context.WithTimeout(ctx, max(every, 5*time.Second))
		_, err := h.client().Heartbeat(hctx, &sdnv1.HeartbeatRequest{Node: h.Name, Realized: realized})
		cancel()
		switch {
		case err == nil:
			h.c.heartbeats.Add(1)
		case ctx.Err() != nil:
		case status.Code(err) == codes.NotFound:
			h.c.notFound.Add(1)
			if err := h.register(ctx); err != nil && ctx.Err() == nil {
				h.c.registerFailures.Add(1)
				h.sim.sample(kindRegister, err)
			}
		case status.Code(err) == codes.DeadlineExceeded:
			h.c.heartbeatTimeouts.Add(1)
		default:
			h.c.heartbeatFailures.Add(1)
			h.sim.sample(kindHeartbeat, err)
		}
	})
}

// resyncLoop reports the revision held every resync interval, as the
// agent's periodic resync does (its realize is a no-op here).
func (h *Host) resyncLoop(ctx context.Context) {
	if h.sim.cfg.ResyncInterval <= 0 {
		return
	}
	tick(ctx, h.sim.cfg.ResyncInterval, func() {
		if rev := h.Revision(); rev != 0 {
			rep := &sdnv1.ReportRealizedRequest{Node: h.Name, Revision: rev}
			h.lastReport.Store(rep)
			h.report(ctx, rep)
		}
	})
}

// tick calls fn every d until ctx ends.
func tick(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
