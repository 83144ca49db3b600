package scalesim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// received is one message of a watch stream with its receive time, or
// the error that ended the stream.
type received struct {
	ev   *sdnv1.WatchEvent
	at   time.Time
	size int // the event's protobuf size
	err  error
}

// stream is one watch stream's progress.
type stream struct {
	next  *model.Desired // a snapshot being received
	dirty bool           // the state changed since the last report
	got   bool           // an event arrived on this stream
}

// follow runs one watch stream from the revision held, as the agent's
// follow does: events are applied as they arrive, and the host reports
// (realizes) once per burst, when nothing more has arrived. got says
// whether any event arrived before the stream ended.
func (h *Host) follow(ctx context.Context) (got bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer h.watching.Store(false)
	req := &sdnv1.WatchRequest{Node: h.Name, AfterRevision: h.Revision(), Filtered: !h.sim.cfg.Unfiltered}
	ws, err := h.client().Watch(ctx, req, grpc.MaxCallRecvMsgSize(model.MaxResponseBytes))
	if err != nil {
		return false, err
	}
	if last := h.lastReport.Load(); last != nil {
		h.report(ctx, last)
	}
	events := h.receive(ctx, ws)
	st := &stream{}
	for {
		var r received
		select {
		case r = <-events:
		default:
			h.flush(ctx, st)
			select {
			case r = <-events:
			case <-ctx.Done():
				return st.got, ctx.Err()
			}
		}
		if r.err != nil {
			h.flush(ctx, st)
			if r.err == io.EOF {
				return st.got, errors.New("server closed the watch")
			}
			return st.got, r.err
		}
		if err := h.accept(st, r); err != nil {
			return st.got, err
		}
	}
}

// receiveQueue is how many decoded events wait for a host to apply them,
// as many as the agent lets wait: how many revisions a host takes in
// before it reports depends on it. Their nodes are interned before they
// wait (a snapshot chunk holds a few hundred: 5,000 hosts half way
// through their snapshots held 6.7 GB of fresh node objects otherwise).
const receiveQueue = 64

// receive relays a watch stream's messages, stamped with their receive
// time, sized, and their nodes interned, until the stream or ctx ends.
func (h *Host) receive(ctx context.Context, ws grpc.ServerStreamingClient[sdnv1.WatchEvent]) <-chan received {
	events := make(chan received, receiveQueue)
	go func() {
		for {
			ev, err := ws.Recv()
			r := received{ev: ev, at: time.Now(), err: err}
			if ev != nil {
				r.size = proto.Size(ev)
				h.sim.intern.changes(ev.Changes)
			}
			select {
			case events <- r:
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

// flush "realizes" (a no-op) and reports the state held, if it changed
// and no snapshot is half received.
func (h *Host) flush(ctx context.Context, st *stream) {
	if !st.dirty || st.next != nil || ctx.Err() != nil {
		return
	}
	rep := &sdnv1.ReportRealizedRequest{Node: h.Name, Revision: h.Revision()}
	h.lastReport.Store(rep)
	h.report(ctx, rep)
	st.dirty = false
}

// accept takes one event: counts it, applies it to the desired state, and
// shows it to the observer.
func (h *Host) accept(st *stream, r received) error {
	ev, at := r.ev, r.at
	h.c.bytes.Add(int64(r.size))
	h.c.changes.Add(int64(len(ev.Changes)))
	var err error
	switch ev.Type {
	case sdnv1.WatchEventType_WATCH_EVENT_TYPE_SNAPSHOT:
		h.c.snapshotChunks.Add(1)
		h.acceptSnapshot(st, ev, at)
	case sdnv1.WatchEventType_WATCH_EVENT_TYPE_DELTA:
		h.c.deltas.Add(1)
		err = h.acceptDelta(st, ev)
	case sdnv1.WatchEventType_WATCH_EVENT_TYPE_PROGRESS:
		h.c.progress.Add(1)
		err = h.acceptProgress(st, ev)
	default:
		h.c.unknownEvents.Add(1)
		err = fmt.Errorf("unknown watch event type %v", ev.Type)
	}
	if err != nil {
		return err
	}
	st.got = true
	if o := h.sim.observer(); o != nil {
		o.Event(h, ev, at)
	}
	return nil
}

// acceptSnapshot adds a chunk to the snapshot being received, and swaps the
// whole of it in at the last chunk.
func (h *Host) acceptSnapshot(st *stream, ev *sdnv1.WatchEvent, at time.Time) {
	if st.next == nil {
		st.next = model.NewDesired()
		h.View(func(d *model.Desired) { st.next.ClusterID = d.ClusterID })
	}
	if ev.ClusterId != "" {
		st.next.ClusterID = ev.ClusterId
	}
	st.next.Apply(ev.Changes, ev.Revision)
	if !ev.SnapshotDone {
		return
	}
	h.c.snapshots.Add(1)
	h.firstSnapshot.CompareAndSwap(0, at.UnixNano())
	h.mu.Lock()
	h.desired = st.next
	h.mu.Unlock()
	h.revision.Store(ev.Revision)
	st.next, st.dirty = nil, true
	h.watching.Store(true)
}

// acceptDelta applies one delta (a revision's changes; on a filtered watch
// maybe several revisions', ending at ev.Revision). One at or below the
// revision held changes nothing.
func (h *Host) acceptDelta(st *stream, ev *sdnv1.WatchEvent) error {
	if st.next != nil {
		return errors.New("server sent a delta inside a snapshot")
	}
	h.watching.Store(true)
	if ev.Revision <= h.Revision() {
		return nil
	}
	h.mu.Lock()
	h.desired.Apply(ev.Changes, ev.Revision)
	if ev.ClusterId != "" {
		h.desired.ClusterID = ev.ClusterId
	}
	h.mu.Unlock()
	h.revision.Store(ev.Revision)
	st.dirty = true
	return nil
}

// acceptProgress moves the revision held: nothing concerning the host
// changed up to ev.Revision. It is not reported on its own (the servers
// know the host needed nothing from it), but when nothing else waits to
// be reported it becomes the latest report, which the next heartbeat and
// resync carry.
func (h *Host) acceptProgress(st *stream, ev *sdnv1.WatchEvent) error {
	if st.next != nil {
		return errors.New("server sent a progress event inside a snapshot")
	}
	h.watching.Store(true)
	if len(ev.Changes) > 0 {
		return fmt.Errorf("progress event at revision %d carries %d changes", ev.Revision, len(ev.Changes))
	}
	if ev.Revision <= h.Revision() {
		return nil
	}
	h.mu.Lock()
	h.desired.Revision = ev.Revision
	h.mu.Unlock()
	h.revision.Store(ev.Revision)
	if !st.dirty {
		h.lastReport.Store(&sdnv1.ReportRealizedRequest{Node: h.Name, Revision: ev.Revision})
	}
	return nil
}
