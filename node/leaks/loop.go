package leaks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Defaults of the loop.
const (
	DefaultPeriod = 10 * time.Second
	DefaultGrace  = 30 * time.Second
	// detachTimeout bounds one Detach on the servers.
	detachTimeout = 10 * time.Second
)

// Agent is this host's agent (*agent.Agent): its desired state.
type Agent interface {
	View(fn func(m *model.Desired))
	WaitFor(ctx context.Context, cond func(m *model.Desired) bool) error
}

// Host reads and changes the host's side: workload veths (host ends, in the
// agent's host namespace) and the integration bridge's workload ports.
type Host interface {
	World(ctx context.Context) (World, error)
	// RemovePort takes a workload port off the integration bridge; a port
	// that is not there is not an error.
	RemovePort(ctx context.Context, name string) error
	// RemoveVeth deletes a veth pair by its host end; gone is not an error.
	RemoveVeth(ctx context.Context, name string) error
}

// Locker takes the per-container lock the CNI service holds during ADD, DEL
// and CHECK, if it is free (ok false when an operation holds it).
type Locker func(containerID string) (unlock func(), ok bool)

// Config configures a Loop.
type Config struct {
	Node      string
	Agent     Agent
	Host      Host
	Workloads sdnv1.WorkloadServiceClient
	// Lock, when set, is held while an attachment is released, so that no
	// CNI operation on the container runs meanwhile; when nil a missing veth
	// must stay missing for Grace first.
	Lock Locker
	// Period between passes (DefaultPeriod if 0) and Grace (DefaultGrace if
	// 0): how long a veth or port is seen without an owner before it is
	// removed.
	Period, Grace time.Duration
	Logger        *slog.Logger
	Now           func() time.Time // time.Now if nil (tests)
}

// Loop is the leak loop of one host.
type Loop struct {
	cfg Config
	log *slog.Logger

	mu           sync.Mutex // one pass at a time; guards the maps
	missingSince map[string]time.Time
	orphanSince  map[string]time.Time

	released, removed atomic.Uint64
}

// New returns the loop; Run runs it.
func New(cfg Config) *Loop {
	if cfg.Period == 0 {
		cfg.Period = DefaultPeriod
	}
	if cfg.Grace == 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Loop{cfg: cfg, log: cfg.Logger, missingSince: map[string]time.Time{}, orphanSince: map[string]time.Time{}}
}

// Counts returns how many attachments the loop released and leftovers it
// removed since it started.
func (l *Loop) Counts() (released, removed uint64) { return l.released.Load(), l.removed.Load() }

// Run makes a pass as soon as the host is registered in the agent's state,
// then every Period, until ctx ends.
func (l *Loop) Run(ctx context.Context) {
	if err := l.cfg.Agent.WaitFor(ctx, l.registered); err != nil {
		return
	}
	t := time.NewTicker(l.cfg.Period)
	defer t.Stop()
	for {
		if _, err := l.Pass(ctx, false); err != nil && ctx.Err() == nil {
			l.log.Warn("leak pass failed; trying again next period", "err", err, "period", l.cfg.Period)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (l *Loop) registered(m *model.Desired) bool {
	n := m.Nodes[l.cfg.Node]
	return n != nil && n.Subnet != ""
}

// Outcome is what one pass did (or, dry, would do) and left alone.
type Outcome struct {
	Actions, Skipped []string
}

// Pass compares once and releases and removes what is due; with dry it only
// says what it would do.
func (l *Loop) Pass(ctx context.Context, dry bool) (Outcome, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := l.scan(ctx)
	if err != nil {
		return Outcome{}, err
	}
	var out Outcome
	var errs []error
	for _, g := range f.gone {
		if err := l.release(ctx, g, dry, &out); err != nil {
			errs = append(errs, err)
		}
	}
	for _, lo := range f.leftovers {
		if err := l.remove(ctx, lo, dry, &out); err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// Report compares once and changes nothing.
func (l *Loop) Report(ctx context.Context) (*sdnv1.HostLeaksResponse, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := l.scan(ctx)
	if err != nil {
		return nil, err
	}
	now := l.cfg.Now()
	rep := &sdnv1.HostLeaksResponse{Node: l.cfg.Node, Revision: f.rev, ReleasedTotal: l.released.Load(), RemovedTotal: l.removed.Load()}
	for _, g := range f.gone {
		o := g.w.GetOrigin()
		rep.Gone = append(rep.Gone, &sdnv1.GoneAttachment{Network: g.w.Network, Name: g.w.Name, ContainerId: o.GetContainerId(),
			Ifname: o.GetIfname(), Ip: g.w.Ip, HostIfname: g.hostIf, Port: g.port})
	}
	for _, lo := range f.leftovers {
		rep.Leftovers = append(rep.Leftovers, &sdnv1.LocalLeftover{Name: lo.name, Veth: lo.veth, Port: lo.port, InGrace: l.inGrace(lo, now)})
	}
	return rep, nil
}

// scan reads the world, then the desired state, and compares them. The
// world first: a workload attached meanwhile then has its veth counted as
// an orphan (in grace), never as gone.
func (l *Loop) scan(ctx context.Context) (findings, error) {
	world, err := l.cfg.Host.World(ctx)
	if err != nil {
		return findings{}, fmt.Errorf("read host %s's workload veths and ports: %w", l.cfg.Node, err)
	}
	var f findings
	now := l.cfg.Now()
	l.cfg.Agent.View(func(m *model.Desired) {
		f = compare(m, l.cfg.Node, world, now, l.missingSince, l.orphanSince)
	})
	return f, nil
}

// inGrace says whether a leftover must still be left alone: a veth seen
// without an owner for less than Grace. A port without a veth is never in
// grace: nothing is still making it.
func (l *Loop) inGrace(lo leftover, now time.Time) bool {
	return lo.veth && now.Sub(lo.since) < l.cfg.Grace
}
