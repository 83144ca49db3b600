package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/peer"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Realizer makes the host match a complete desired state. Calling it twice
// with the same state changes nothing.
type Realizer interface {
	Realize(ctx context.Context, m *model.Desired) error
}

// ChangeRealizer is a Realizer that realizes a revision from the watch
// faster when it can (datapath/host: the flows alone, when the host-level
// set-up is that of the last full realize). The agent uses it for
// revisions from the watch; the start, resyncs and Sync (CNI ADD) realize
// fully.
type ChangeRealizer interface {
	Realizer
	RealizeChange(ctx context.Context, m *model.Desired) error
}

// Config configures an agent.
type Config struct {
	Node        string
	UnderlayIP  string
	UnderlayMTU uint32
	Labels      map[string]string
	// DatapathAddress is where this host serves the datapath service
	// (node/dpsvc), registered for the servers to call; "" for none.
	DatapathAddress string
	// StatePath is where the desired state is persisted.
	StatePath string
	Logger    *slog.Logger
	// ResyncInterval is how often the host is made to match the desired
	// state even when nothing changed, so what was lost underneath (a
	// restarted ovs-vswitchd starts with no flows, a hand-deleted port) is
	// put back. The realizer diffs against the world, so a resync of a
	// correct host changes nothing. 0 means DefaultResyncInterval.
	ResyncInterval time.Duration
	// AvoidServer, when set, is called with the address of a server that
	// ended the watch because it is behind the cluster (model.ServerBehind):
	// the connection should move to another server for a while.
	AvoidServer func(addr string)
	// HeartbeatInterval is how often the agent tells the leader the host
	// is alive (NodeService.Heartbeat, held in the leader's memory); the
	// servers mark a host down after their --node-down-after without one.
	// 0 means DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
}

// DefaultResyncInterval is the resync period when none is configured.
const DefaultResyncInterval = 15 * time.Second

// DefaultHeartbeatInterval is the heartbeat period when none is
// configured: six of them fit in the servers' default down-after (30 s).
const DefaultHeartbeatInterval = 5 * time.Second

// Agent follows the servers for one host.
type Agent struct {
	cfg      Config
	nodes    sdnv1.NodeServiceClient
	realizer Realizer
	log      *slog.Logger

	// realizeMu serializes realizes and is held while the desired state changes,
	// so a realize never sees a half-applied revision. mu guards the
	// desired-state pointer and changed, for readers that do not realize.
	realizeMu sync.Mutex
	// lastReport is the outcome of the latest realize (stored under
	// realizeMu, read without it: heartbeats must not wait for a long
	// realize). It is sent again whenever a watch opens and rides on every
	// heartbeat: reports live in the servers' memory, so a restarted
	// server, or another one after a failover, knows this host's state
	// without waiting for the next change.
	lastReport atomic.Pointer[sdnv1.ReportRealizedRequest]
	mu         sync.Mutex
	desired    *model.Desired
	changed    chan struct{} // closed and replaced when the desired state changes
	reported   chan struct{} // closed and replaced when lastReport changes (under mu)
	// reportStarted is when the realize behind lastReport started (under mu).
	reportStarted time.Time

	// store is the saved desired state (store.go); pending are the watch
	// events applied since the last save, pendingWhole says the state must
	// be saved whole (a snapshot replaced it, or a save failed). Under
	// realizeMu.
	store        *store
	pending      []*sdnv1.WatchEvent
	pendingWhole bool

	// watchPeer is the server the last watch ran on (Run's goroutine only).
	watchPeer string

	// Snapshots counts full snapshots received (for tests and metrics).
	Snapshots int
	// Deltas counts revisions received as deltas.
	Deltas int
	// Resyncs counts periodic resyncs (under realizeMu).
	Resyncs int
}

// New returns an agent over a connection to any server. It loads the
// persisted desired state, so Realize can run before any server answers.
func New(conn grpc.ClientConnInterface, r Realizer, cfg Config) (*Agent, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	st, m, err := openStore(cfg.StatePath, cfg.Logger)
	if err != nil {
		return nil, err
	}
	return &Agent{cfg: cfg, nodes: sdnv1.NewNodeServiceClient(conn), realizer: r, log: cfg.Logger, desired: m, store: st,
		changed: make(chan struct{}), reported: make(chan struct{})}, nil
}

// Desired returns the agent's current desired state (do not modify; it
// changes under the caller while Run runs: use View then).
func (a *Agent) Desired() *model.Desired {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.desired
}

// Register registers the host and returns its node record.
func (a *Agent) Register(ctx context.Context) (*sdnv1.Node, error) {
	var clusterID string
	a.View(func(m *model.Desired) { clusterID = m.ClusterID })
	res, err := a.nodes.Register(ctx, &sdnv1.RegisterNodeRequest{Name: a.cfg.Node, UnderlayIp: a.cfg.UnderlayIP, UnderlayMtu: a.cfg.UnderlayMTU, Labels: a.cfg.Labels, ClusterId: clusterID,
		DatapathAddress: a.cfg.DatapathAddress})
	if err != nil {
		return nil, fmt.Errorf("register host %s: %w", a.cfg.Node, err)
	}
	return res.Node, nil
}

// Run realizes the persisted state first, then follows the watch until ctx
// ends, reconnecting with backoff. A refused registration ends it.
func (a *Agent) Run(ctx context.Context) error {
	if a.desired.Revision > 0 {
		a.realizeMu.Lock()
		rep := &sdnv1.ReportRealizedRequest{Node: a.cfg.Node, Revision: a.desired.Revision}
		started := time.Now()
		if err := a.realizer.Realize(ctx, a.desired); err != nil {
			rep.Error = err.Error()
			a.log.Warn("realize persisted state", "revision", a.desired.Revision, "err", err)
		}
		a.storeReport(rep, started)
		a.realizeMu.Unlock()
	}
	go a.resyncLoop(ctx)
	var b backoff
	registered, beating := false, false
	for ctx.Err() == nil {
		if !registered {
			if _, err := a.Register(ctx); err != nil {
				if isRefusal(err) {
					return err
				}
				a.log.Warn("servers unreachable; keeping the host as it is", "err", err)
				sleep(ctx, b.next())
				continue
			}
			registered = true
			if !beating {
				beating = true
				go a.heartbeatLoop(ctx)
			}
		}
		started := time.Now()
		err := a.follow(ctx)
		if ctx.Err() != nil {
			break
		}
		if time.Since(started) > backoffReset {
			b = backoff{} // it ran well: the next failure is new
		}
		var wrong *WrongClusterError
		if errors.As(err, &wrong) {
			return err
		}
		a.log.Warn("watch ended; resuming", "after_revision", a.desired.Revision, "err", err)
		if addr := a.watchPeer; strings.Contains(status.Convert(err).Message(), model.ServerBehind) && a.cfg.AvoidServer != nil && addr != "" {
			a.cfg.AvoidServer(addr)
		}
		if status.Code(err) == codes.NotFound {
			registered = false
		}
		sleep(ctx, b.next())
	}
	return nil
}

func isRefusal(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.ResourceExhausted:
		return true
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// follow runs one watch stream. Revisions are applied to the desired state as
// they arrive, but the host is realized once per burst: after a revision,
// every one already received is applied too before the realize, so an
// agent behind by many revisions (a write storm, a reconnect) catches up
// with one realize instead of one per revision.
func (a *Agent) follow(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// One revision's changes are one event, which after a large apply is
	// larger than gRPC's default 4 MiB (docs/design.md, "Message sizes
	// and paging").
	var p peer.Peer
	a.watchPeer = ""
	stream, err := a.nodes.Watch(ctx, &sdnv1.WatchRequest{Node: a.cfg.Node, AfterRevision: a.desired.Revision, Filtered: true},
		grpc.MaxCallRecvMsgSize(model.MaxResponseBytes), grpc.Peer(&p))
	if err != nil {
		return err
	}
	defer func() {
		if p.Addr != nil {
			a.watchPeer = p.Addr.String()
		}
	}()
	if last := a.lastReport.Load(); last != nil {
		a.report(ctx, last)
	}
	events := receive(ctx, stream)
	f := &follower{}
	for {
		var r received
		select {
		case r = <-events:
		default:
			// Nothing more has arrived: realize what did, then wait.
			a.flush(ctx, f)
			select {
			case r = <-events:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if r.err != nil {
			a.flush(ctx, f)
			if r.err == io.EOF {
				return errors.New("server closed the watch")
			}
			return r.err
		}
		change, err := a.accept(f, r.ev)
		if err != nil {
			return err
		}
		if change == nil {
			continue
		}
		// Whole revisions only, under realizeMu: a realize (a resync, a
		// CNI Sync) never sees half of one.
		a.realizeMu.Lock()
		a.update(change)
		if r.ev.Type == sdnv1.WatchEventType_WATCH_EVENT_TYPE_PROGRESS {
			a.progressed(f, r.ev.Revision)
		} else {
			f.dirty = true
		}
		a.realizeMu.Unlock()
	}
}

// received is one message of a watch stream, or the error that ended it.
type received struct {
	ev  *sdnv1.WatchEvent
	err error
}

// receive relays a watch stream's messages until the stream or ctx ends.
func receive(ctx context.Context, stream grpc.ServerStreamingClient[sdnv1.WatchEvent]) <-chan received {
	events := make(chan received, 64)
	go func() {
		for {
			ev, err := stream.Recv()
			select {
			case events <- received{ev, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return events
}

// follower is one watch stream's progress.
type follower struct {
	next  *model.Desired // a snapshot being received
	dirty bool           // the desired state changed since the last realize
}

// flush realizes the desired state and reports it, if it changed and no
// snapshot is half received.
func (a *Agent) flush(ctx context.Context, f *follower) {
	if f.dirty && f.next == nil && ctx.Err() == nil {
		a.realizeMu.Lock()
		rep := a.realize(ctx)
		a.realizeMu.Unlock()
		a.report(ctx, rep)
		f.dirty = false
	}
}

// accept takes one watch event. It returns the change the event makes to
// the desired state, nil when it makes none yet (a snapshot chunk before the
// last, a revision already held), or why the stream must end.
func (a *Agent) accept(f *follower, ev *sdnv1.WatchEvent) (func(), error) {
	if err := a.checkCluster(ev.ClusterId); err != nil {
		a.log.Error("refusing another cluster's state; keeping the host as it is", "err", err)
		return nil, err
	}
	switch ev.Type {
	case sdnv1.WatchEventType_WATCH_EVENT_TYPE_SNAPSHOT:
		return a.acceptSnapshot(f, ev), nil
	case sdnv1.WatchEventType_WATCH_EVENT_TYPE_PROGRESS:
		if f.next != nil {
			return nil, errors.New("server sent a progress event inside a snapshot")
		}
		if ev.Revision <= a.desired.Revision {
			return nil, nil
		}
		return func() {
			a.desired.Revision = ev.Revision
			a.keep(&sdnv1.WatchEvent{Type: ev.Type, Revision: ev.Revision})
		}, nil
	case sdnv1.WatchEventType_WATCH_EVENT_TYPE_DELTA:
		if f.next != nil {
			return nil, errors.New("server sent a delta inside a snapshot")
		}
		if ev.Revision <= a.desired.Revision {
			return nil, nil
		}
		a.Deltas++
		return func() {
			a.desired.Apply(ev.Changes, ev.Revision)
			if ev.ClusterId != "" {
				a.desired.ClusterID = ev.ClusterId
			}
			a.keep(&sdnv1.WatchEvent{Type: ev.Type, Revision: ev.Revision, Changes: ev.Changes, ClusterId: ev.ClusterId})
		}, nil
	default:
		return nil, fmt.Errorf("unknown watch event type %v", ev.Type)
	}
}

// acceptSnapshot adds one chunk of a full snapshot to f.next; with the last
// chunk it returns the change that swaps the whole snapshot in.
func (a *Agent) acceptSnapshot(f *follower, ev *sdnv1.WatchEvent) func() {
	if f.next == nil {
		f.next = model.NewDesired()
		f.next.ClusterID = a.desired.ClusterID
		a.log.Info("receiving full state", "revision", ev.Revision, "reason", ev.Reason)
	}
	if ev.ClusterId != "" {
		f.next.ClusterID = ev.ClusterId
	}
	f.next.Apply(ev.Changes, ev.Revision)
	if !ev.SnapshotDone {
		return nil
	}
	snap := f.next
	f.next = nil
	a.Snapshots++
	return func() {
		a.desired = snap
		a.pending, a.pendingWhole = nil, true
	}
}

// keep records a watch event applied to the desired state, for the next
// save (the caller holds realizeMu). Consecutive progress events keep only
// the last.
func (a *Agent) keep(ev *sdnv1.WatchEvent) {
	if n := len(a.pending); n > 0 && ev.Type == sdnv1.WatchEventType_WATCH_EVENT_TYPE_PROGRESS &&
		a.pending[n-1].Type == sdnv1.WatchEventType_WATCH_EVENT_TYPE_PROGRESS {
		a.pending[n-1] = ev
		return
	}
	a.pending = append(a.pending, ev)
}

// save persists the desired state: what changed since the last save,
// appended to the store's log, or the whole state (store.go); the caller
// holds realizeMu.
func (a *Agent) save() error {
	err := a.store.save(a.desired, a.pending, a.pendingWhole)
	a.pending = nil
	a.pendingWhole = err != nil
	return err
}

// progressed takes a PROGRESS event (the caller holds realizeMu): nothing
// that concerns this host changed up to rev, so a host that realized its
// state realized rev too. Nothing is realized or reported for it: the
// servers know which revisions concerned this host, and the next heartbeat
// carries the new revision.
func (a *Agent) progressed(f *follower, rev uint64) {
	if last := a.lastReport.Load(); last != nil && last.Error == "" && !f.dirty && f.next == nil {
		a.storeReport(&sdnv1.ReportRealizedRequest{Node: a.cfg.Node, Revision: rev}, time.Time{})
	}
}

// WrongClusterError says the servers belong to another cluster than the
// state this host holds. The agent stops rather than give its host up.
type WrongClusterError struct {
	Node, Have, Servers string
}

func (e *WrongClusterError) Error() string {
	return fmt.Sprintf("host %s holds the state of cluster %s, but these servers are cluster %s: point the agent at its own cluster's servers, or, to move the host to this cluster, stop the agent and delete its saved desired state (DATA-DIR/agent/desired.pb and desired.pb.log) first",
		e.Node, e.Have, e.Servers)
}

// checkCluster refuses an event of another cluster than the desired state's (an
// event or a desired state without an id, from before ids, passes).
func (a *Agent) checkCluster(id string) error {
	have := a.desired.ClusterID
	if id == "" || have == "" || id == have {
		return nil
	}
	return &WrongClusterError{Node: a.cfg.Node, Have: have, Servers: id}
}

// update changes the desired state under mu and wakes WaitFor.
func (a *Agent) update(change func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	change()
	close(a.changed)
	a.changed = make(chan struct{})
}

// realize persists the desired state and realizes it; the caller holds realizeMu.
func (a *Agent) realize(ctx context.Context) *sdnv1.ReportRealizedRequest {
	rep := &sdnv1.ReportRealizedRequest{Node: a.cfg.Node, Revision: a.desired.Revision}
	started := time.Now()
	if err := a.save(); err != nil {
		rep.Error = err.Error()
	} else if err := a.realizeChange(ctx); err != nil {
		rep.Error = err.Error()
		a.log.Error("realize desired state", "revision", a.desired.Revision, "err", err)
	}
	a.storeReport(rep, started)
	return rep
}

// realizeChange realizes a revision from the watch: through RealizeChange
// when the realizer has it.
func (a *Agent) realizeChange(ctx context.Context) error {
	if cr, ok := a.realizer.(ChangeRealizer); ok {
		return cr.RealizeChange(ctx, a.desired)
	}
	return a.realizer.Realize(ctx, a.desired)
}

// report tells the servers the outcome of a realize.
func (a *Agent) report(ctx context.Context, rep *sdnv1.ReportRealizedRequest) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := a.nodes.ReportRealized(rctx, rep); err != nil {
		a.log.Warn("report realized revision", "revision", rep.Revision, "err", err)
	}
}
