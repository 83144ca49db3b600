package api

import (
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// catchUpWait is how long a watch from a revision this server has not
// reached yet waits for it before falling back to a full snapshot (a
// variable for tests).
var catchUpWait = 5 * time.Second

// A watch from a revision ahead of a server whose state is empty (a new
// cluster waiting for a snapshot restore, maybe with hosts registered
// again) is held, however long: sending that host the empty state would
// take every workload it runs off the network. The restore (which moves
// the revision past every host's) or the first network or workload
// declared ends the wait with a full snapshot.

// Watch streams what a host needs, from a revision: the history after it
// when the server still has it, otherwise (or when asked from 0) a full
// snapshot in chunks, then every later revision as it commits. Every
// revision is sent, empty when nothing in it concerns the host, so the host
// can report each one realized.
func (s *Server) Watch(req *sdnv1.WatchRequest, stream grpc.ServerStreamingServer[sdnv1.WatchEvent]) error {
	if req.Node == "" {
		return status.Error(codes.InvalidArgument, "watch names no node; agents watch as their host")
	}
	if req.Filtered && s.feed != nil {
		return s.watchFiltered(req, stream)
	}
	ctx := stream.Context()
	hub := s.cluster.Hub()
	rev := req.AfterRevision
	resync := rev == 0
	reason := "full state requested"
	// A host that comes from another server may be ahead of this one by
	// what this one has not applied yet: give it time to catch up before
	// sending a full state.
	catchUp := time.Now().Add(catchUpWait)
	held := false
	for {
		_, wake := hub.Wait()
		var events []*sdnv1.WatchEvent
		behind, hold := false, false
		var clusterID string
		err := s.cluster.FSM().View(func(tx *state.Tx) error {
			m := tx.Meta()
			clusterID = tx.ClusterID()
			switch {
			case resync:
			case rev < m.Compacted:
				resync, reason = true, fmt.Sprintf("revision %d was compacted (history starts after %d)", rev, m.Compacted)
			case rev > m.Revision && tx.Empty():
				behind, hold = true, true
				return nil
			case rev > m.Revision && time.Now().Before(catchUp):
				behind = true
				return nil
			case rev > m.Revision:
				resync, reason = true, fmt.Sprintf("revision %d is ahead of this server's %d (state restored from a snapshot?)", rev, m.Revision)
			}
			if resync {
				events = s.snapshot(tx, req.Node, reason)
				rev = m.Revision
				resync = false
				return nil
			}
			tx.ChangesAfter(rev, func(ev *sdnv1.WatchEvent) bool {
				events = append(events, filterEvent(ev, req.Node))
				rev = ev.Revision
				return true
			})
			return nil
		})
		if err != nil {
			return toStatus(err)
		}
		for _, ev := range events {
			ev.ClusterId = clusterID
		}
		if behind {
			if hub.Closed() {
				return status.Error(codes.Unavailable, "server shutting down")
			}
			var timeout <-chan time.Time
			if !hold {
				timeout = time.After(time.Until(catchUp))
			} else if !held {
				held = true
				s.log.Warn("holding the watch of a host ahead of this server's empty state until a snapshot is restored or something is declared; it keeps what it runs", "node", req.Node, "after_revision", rev)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-wake:
			case <-timeout:
			}
			continue
		}
		for _, ev := range events {
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
		if len(events) > 0 {
			continue
		}
		if hub.Closed() {
			return status.Error(codes.Unavailable, "server shutting down")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		}
	}
}

// snapshot renders the whole state a host needs as chunked events: every
// network and node, and the host's own workloads (hostState), rendered by
// model.State like the agent's own copy. A chunk holds at most chunkSize
// changes and chunkBytes on the wire (one bigger change alone), so that
// even an agent with gRPC's default 4 MiB limit takes it.
func (s *Server) snapshot(tx *state.Tx, node, reason string) []*sdnv1.WatchEvent {
	rev := tx.Meta().Revision
	changes := hostState(tx, node).Changes()
	var out []*sdnv1.WatchEvent
	chunk := func(cs []*sdnv1.ObjectChange) *sdnv1.WatchEvent {
		out = append(out, &sdnv1.WatchEvent{Type: sdnv1.WatchEventType_WATCH_EVENT_TYPE_SNAPSHOT, Revision: rev, Changes: cs, Reason: reason})
		return out[len(out)-1]
	}
	start, size := 0, 0
	for i, c := range changes {
		n := fieldSize(c)
		if i > start && (i-start == s.chunkSize || size+n > s.chunkBytes) {
			chunk(changes[start:i])
			start, size = i, 0
		}
		size += n
	}
	chunk(changes[start:]).SnapshotDone = true
	return out
}

// hostState is the part of the stored state that node's agent needs:
// everything but other hosts' workloads, and the address groups whose
// nodes include it (those its policies refer to).
func hostState(tx *state.Tx, node string) *model.State {
	st := &model.State{Cluster: tx.Cluster(), Networks: tx.Networks(), Nodes: tx.Nodes(), Policies: tx.Policies(),
		Services: tx.Services(""), ServiceEndpoints: tx.AllServiceEndpoints("")}
	for _, w := range tx.Workloads("") {
		if w.Node == node {
			st.Workloads = append(st.Workloads, w)
		}
	}
	for _, g := range tx.AddressGroups() {
		if slices.Contains(g.Nodes, node) {
			st.AddressGroups = append(st.AddressGroups, g)
		}
	}
	return st
}

// filterEvent trims a revision's changes to what node needs. A host's
// flows refer to its own workloads and to other hosts' blocks, never to
// other hosts' workloads, so those are not sent: a change to a workload on
// another host becomes a bare delete of its key (a no-op for a host that
// never had it, and right for one it just moved away from). Address groups
// the same way: a group goes to the hosts in its nodes (whose policies
// refer to it), and is a bare delete for the others, so a host that left
// its nodes drops it. Policies go to every host.
func filterEvent(ev *sdnv1.WatchEvent, node string) *sdnv1.WatchEvent {
	out := &sdnv1.WatchEvent{Type: ev.Type, Revision: ev.Revision}
	for _, c := range ev.Changes {
		if c.Workload != nil && c.Workload.Node != node || c.AddressGroup != nil && !slices.Contains(c.AddressGroup.Nodes, node) {
			c = &sdnv1.ObjectChange{Op: sdnv1.ChangeOp_CHANGE_OP_DELETE, Kind: c.Kind, Name: c.Name}
		}
		out.Changes = append(out.Changes, c)
	}
	return out
}
