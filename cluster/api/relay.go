package api

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Relay takes, on the leader, a batch of what a follower heard from the
// agents watching it: each signal counts as if the agent had called the
// leader itself (Heartbeat, ReportRealized), for hosts the state knows.
// Unknown hosts are listed back; the follower tells their agents at their
// next heartbeat.
func (s *Server) Relay(ctx context.Context, req *sdnv1.RelayRequest) (*sdnv1.RelayResponse, error) {
	var unknown []string
	err := s.cluster.FSM().View(func(tx *state.Tx) error {
		for _, sig := range req.Signals {
			if _, ok := tx.Node(sig.Node); !ok {
				unknown = append(unknown, sig.Node)
			}
		}
		return nil
	})
	if err != nil {
		return nil, toStatus(err)
	}
	s.takeSignals(req.Signals)
	return &sdnv1.RelayResponse{Unknown: unknown}, nil
}

// takeSignals takes, on the leader, what agents told a follower, as if
// they had told the leader itself.
func (s *Server) takeSignals(sigs []*sdnv1.HostSignal) {
	now := s.now()
	for _, sig := range sigs {
		if sig.Node == "" {
			continue
		}
		if sig.Alive {
			s.live.HeartbeatAged(sig.Node, time.Duration(sig.AgeMs)*time.Millisecond)
		}
		if r := sig.Report; r != nil {
			s.realized.Report(sig.Node, r.Revision, r.Error, now)
		}
		if r := sig.Learned; r != nil {
			s.realized.Learn(sig.Node, r.Revision, r.Error, now)
		}
	}
}

// relayFailing is how long a follower's relays may fail before it refuses
// heartbeats itself (Unavailable), so that agents see that the leader does
// not hear them.
const relayFailing = 15 * time.Second

// relayEvery is how often a follower relays heartbeats; reports go at once
// (a relay in flight takes everything that came meanwhile with the next).
var relayEvery = time.Second

// relayer holds, on a follower, what agents said until it is relayed.
type relayer struct {
	mu      sync.Mutex
	pending map[string]*sdnv1.HostSignal
	heard   map[string]time.Time // when each pending host was last heard
	unknown map[string]bool      // hosts the leader said it does not know
	failed  time.Time            // since when relays fail (zero: they do not)
	lastErr error
	kick    chan struct{}
}

func newRelayer() *relayer {
	return &relayer{pending: map[string]*sdnv1.HostSignal{}, heard: map[string]time.Time{}, unknown: map[string]bool{}, kick: make(chan struct{}, 1)}
}

// add merges one signal into what waits for the next relay; urgent wakes
// the relay loop (a report: someone may be waiting for it).
func (r *relayer) add(sig *sdnv1.HostSignal, urgent bool) {
	r.mu.Lock()
	if sig.Alive {
		r.heard[sig.Node] = time.Now()
	}
	r.merge(sig)
	r.mu.Unlock()
	if urgent {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

// merge folds sig into pending: a newer report replaces an older one, a
// learned revision only moves forward.
func (r *relayer) merge(sig *sdnv1.HostSignal) {
	p := r.pending[sig.Node]
	if p == nil {
		r.pending[sig.Node] = sig
		return
	}
	p.Alive = p.Alive || sig.Alive
	if sig.Report != nil {
		p.Report = sig.Report
	}
	if sig.Learned != nil && (p.Learned == nil || sig.Learned.Revision >= p.Learned.Revision) {
		p.Learned = sig.Learned
	}
}

// take empties pending, each signal with its age.
func (r *relayer) take() []*sdnv1.HostSignal {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	out := make([]*sdnv1.HostSignal, 0, len(r.pending))
	for h, sig := range r.pending {
		if at, ok := r.heard[h]; ok && sig.Alive {
			sig.AgeMs = uint32(min(now.Sub(at).Milliseconds(), 1<<31))
		}
		out = append(out, sig)
	}
	clear(r.pending)
	return out
}

// requeue puts back a batch that was not relayed, under anything newer
// (its age grows from when the host was heard, kept in heard);
// it reports whether relays just started failing.
func (r *relayer) requeue(batch []*sdnv1.HostSignal, err error) (first bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, sig := range batch {
		if newer := r.pending[sig.Node]; newer != nil {
			r.pending[sig.Node] = sig
			r.merge(newer)
		} else {
			r.pending[sig.Node] = sig
		}
	}
	first = r.failed.IsZero()
	if first {
		r.failed = time.Now()
	}
	r.lastErr = err
	return first
}

// relayed records a successful relay and the hosts the leader did not
// know; it reports whether relays had been failing.
func (r *relayer) relayed(unknown []string) (recovered bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	recovered = !r.failed.IsZero()
	r.failed, r.lastErr = time.Time{}, nil
	for _, h := range unknown {
		r.unknown[h] = true
	}
	return recovered
}

// admit decides a heartbeat or report from host on a follower: NotFound
// once for a host the leader said it does not know (its agent registers
// again), Unavailable while relays have failed for relayFailing.
func (r *relayer) admit(host string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unknown[host] {
		delete(r.unknown, host)
		return status.Errorf(codes.NotFound, "host %s is not registered (the leader does not know it: removed, or released after being down longer than the cluster's node_release_after); its agent registers it again", host)
	}
	if !r.failed.IsZero() && time.Since(r.failed) > relayFailing {
		return status.Errorf(codes.Unavailable, "this server has not reached the leader for %s (%v): the leader does not hear this host through it", time.Since(r.failed).Round(time.Second), r.lastErr)
	}
	return nil
}

// runRelay relays, while this server follows, what agents told it; when it
// leads, it takes what is left itself. It ends when the server shuts down.
func (s *Server) runRelay() {
	t := time.NewTicker(relayEvery)
	defer t.Stop()
	hub := s.cluster.Hub()
	for !hub.Closed() {
		select {
		case <-t.C:
		case <-s.relays.kick:
		}
		batch := s.relays.take()
		if len(batch) == 0 {
			continue
		}
		if s.cluster.IsLeader() {
			s.takeSignals(batch)
			s.relays.relayed(nil)
			continue
		}
		res, err := s.relayToLeader(batch)
		if err != nil {
			if s.relays.requeue(batch, err) {
				s.log.Warn("relaying agents' heartbeats and reports to the leader failed; retrying every second", "hosts", len(batch), "err", err)
			}
			continue
		}
		if s.relays.relayed(res.Unknown) {
			s.log.Info("relaying agents' heartbeats and reports to the leader works again")
		}
	}
}

// relayToLeader sends one batch to the leader.
func (s *Server) relayToLeader(batch []*sdnv1.HostSignal) (*sdnv1.RelayResponse, error) {
	_, addr := s.cluster.Leader()
	if addr == "" {
		return nil, errors.New("no leader known")
	}
	conn, err := s.peers.Conn(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The server's own call, not a forwarded one: with mutual TLS the
	// leader admits it by this server's certificate (a forwarded mark
	// would make it look for the caller named in it, and refuse).
	return sdnv1.NewNodeServiceClient(conn).Relay(ctx, &sdnv1.RelayRequest{Server: s.cluster.ID(), Signals: batch})
}
