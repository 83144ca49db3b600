package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/fsm"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// RunLiveness runs the leader's side of host liveness until ctx ends: on
// the leader, every tick (a quarter of the down-after time, at most a
// second) it compares the stored hosts with the heartbeats l holds and
// proposes each transition once: SetNodeLiveness when a host goes down or
// comes back, ReleaseNode when one stayed down past the cluster's
// node_release_after. On a follower it only notes that it does not lead.
func (s *Server) RunLiveness(ctx context.Context, l *Liveness) {
	every := min(max(l.DownAfter()/4, 50*time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.livenessTick(ctx, l)
	}
}

func (s *Server) livenessTick(ctx context.Context, l *Liveness) {
	if !s.IsLeader() {
		if leading, _ := l.Leading(); leading {
			l.Follow()
		}
		return
	}
	l.Lead(s.raft.CurrentTerm())
	var nodes []*sdnv1.Node
	var settings *sdnv1.ClusterSettings
	var clusterID string
	if err := s.fsm.View(func(tx *state.Tx) error {
		nodes, settings, clusterID = tx.Nodes(), tx.Cluster(), tx.ClusterID()
		return nil
	}); err != nil {
		s.log.Error("host liveness: read the hosts", "err", err)
		return
	}
	if clusterID == "" {
		s.initClusterID(ctx)
	}
	grace, never := fsm.NodeReleaseAfter(settings)
	trs := l.Decide(nodes, grace, never)
	if n := l.Withheld(); n > 0 {
		s.log.Warn("hosts silent at once; not marking them down: more likely this leader is overloaded or cut off than they are all gone", "silent", n, "hosts", len(nodes), "down_after", l.DownAfter())
	}
	for _, tr := range trs {
		if ctx.Err() != nil || !s.IsLeader() {
			return
		}
		s.proposeTransition(ctx, l, tr, grace, never)
	}
}

func (s *Server) proposeTransition(ctx context.Context, l *Liveness, tr Transition, grace time.Duration, never bool) {
	var (
		typ command.Type
		msg proto.Message
	)
	switch tr.Kind {
	case MarkDown:
		typ, msg = command.SetNodeLiveness, &sdnv1.SetNodeLivenessRequest{Name: tr.Host, Down: true, AtUnixMs: tr.At.UnixMilli()}
	case MarkUp:
		typ, msg = command.SetNodeLiveness, &sdnv1.SetNodeLivenessRequest{Name: tr.Host, Down: false, AtUnixMs: tr.At.UnixMilli()}
	case Release:
		typ, msg = command.ReleaseNode, &sdnv1.ReleaseNodeRequest{Name: tr.Host, DownSinceUnixMs: tr.DownSinceUnixMs}
	default:
		return
	}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.ApplyTimeout)
	defer cancel()
	res, err := s.Propose(pctx, typ, msg)
	var ce *fsm.Error
	switch {
	case errors.As(err, &ce):
		// The state moved on meanwhile (the host came back, or was
		// removed): nothing to do.
		s.log.Info("host liveness: transition no longer applies", "node", tr.Host, "transition", tr.Kind.String(), "reason", ce.Error())
		return
	case err != nil:
		s.log.Warn("host liveness: propose a transition; retrying at the next tick", "node", tr.Host, "transition", tr.Kind.String(), "err", err)
		return
	}
	last := "never since this server became leader"
	if !tr.LastHeartbeat.IsZero() {
		last = tr.LastHeartbeat.UTC().Format(time.RFC3339)
	}
	keep := "until it comes back or `sdnctl node remove`"
	if !never {
		keep = fmt.Sprintf("for node_release_after (%s) unless it comes back", grace)
	}
	switch tr.Kind {
	case MarkDown:
		s.log.Warn("host marked down: no heartbeat for "+l.DownAfter().String()+"; it keeps its subnet and workload addresses "+keep,
			"node", tr.Host, "last_heartbeat", last, "revision", res.Revision)
	case MarkUp:
		s.log.Info("host is up again: heartbeats resumed", "node", tr.Host,
			"was_down_since", time.UnixMilli(tr.DownSinceUnixMs).UTC().Format(time.RFC3339), "revision", res.Revision)
	case Release:
		s.log.Warn("host released: down since "+time.UnixMilli(tr.DownSinceUnixMs).UTC().Format(time.RFC3339)+", longer than node_release_after ("+grace.String()+"); its subnet and workload addresses are free",
			"node", tr.Host, "changes", len(res.Changes), "revision", res.Revision)
	}
}

// initClusterID gives a cluster without an id (new, or from before ids) a
// random one. It runs on the leader's tick until one is committed; a
// second proposal racing it is ignored by the FSM.
func (s *Server) initClusterID(ctx context.Context) {
	id := rand.Text()
	pctx, cancel := context.WithTimeout(ctx, s.cfg.ApplyTimeout)
	defer cancel()
	if _, err := s.Propose(pctx, command.InitCluster|command.IgnoreUnknownFlag, &sdnv1.InitClusterRequest{ClusterId: id}); err != nil {
		s.log.Warn("set the cluster id (retried next tick)", "err", err)
		return
	}
	var got string
	if err := s.fsm.View(func(tx *state.Tx) error { got = tx.ClusterID(); return nil }); err == nil {
		s.log.Info("this cluster's id", "cluster_id", got)
	}
}
