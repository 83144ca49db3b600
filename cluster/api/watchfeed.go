package api

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/cluster/feed"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// progressEvery is how often a filtered watch tells a host how far it has
// gone when nothing concerned the host (a variable for tests).
var progressEvery = 10 * time.Second

// maxEventBytes bounds a filtered watch's DELTA message (one revision
// larger than it goes alone).
const maxEventBytes = 1 << 20

// snapshotSlots bounds the full snapshots a server sends at once: after a
// restart thousands of agents may ask at the same moment, and each waits
// its turn rather than all sharing the CPU and the memory.
const snapshotSlots = 32

// watchFiltered serves a filtered watch (WatchRequest.filtered) from the
// server's feed: only the revisions that concern the host, several to a
// message when the host is behind, each encoded once for every watcher;
// PROGRESS when nothing concerned it for progressEvery (and once it has
// caught up), so it knows how far it is.
func (s *Server) watchFiltered(req *sdnv1.WatchRequest, stream grpc.ServerStreamingServer[sdnv1.WatchEvent]) error {
	ctx := stream.Context()
	w := s.feed.Subscribe(req.Node)
	defer w.Close()
	ws := &filteredWatch{s: s, w: w, stream: stream, pos: req.AfterRevision, told: req.AfterRevision,
		catchUp: time.Now().Add(catchUpWait)}
	if ws.pos == 0 {
		ws.reason = "full state requested"
	}
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	// tell: send a PROGRESS once the feed has been read: at the first
	// catch-up, and at each tick (a host nothing concerns is not woken by
	// revisions, so its position moves only when the stream reads).
	caughtUp, tell := false, false
	for {
		if err := s.behind(); err != nil {
			return err
		}
		more, wait, err := ws.step(ctx)
		if err != nil {
			return err
		}
		if more {
			continue
		}
		if wait == nil && (!caughtUp || tell) {
			caughtUp, tell = true, false
			if err := ws.progress(); err != nil {
				return err
			}
		}
		if s.cluster.Hub().Closed() {
			return status.Error(codes.Unavailable, "server shutting down")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.Wake():
		case <-wait:
		case <-tick.C:
			tell = true
		}
	}
}

// followerStaleAfter is how long a follower may go without hearing from a
// raft leader before it stops serving watches (a variable for tests).
var followerStaleAfter = 10 * time.Second

// behind refuses to go on serving a watch from a follower that has not
// heard from a leader for followerStaleAfter: its state may be behind the
// cluster's, and the agent had better watch another server.
func (s *Server) behind() error {
	if s.cluster.IsLeader() {
		return nil
	}
	last := s.cluster.LastContact()
	if last.IsZero() || last.Before(s.started) {
		last = s.started
	}
	if d := time.Since(last); d > followerStaleAfter {
		return status.Errorf(codes.Unavailable, "%s %s has not heard from a raft leader for %s; what it would send may be old: watch another server",
			model.ServerBehind, s.cluster.ID(), d.Round(time.Second))
	}
	return nil
}

// filteredWatch is one filtered watch stream's progress.
type filteredWatch struct {
	s       *Server
	w       *feed.Watcher
	stream  grpc.ServerStreamingServer[sdnv1.WatchEvent]
	pos     uint64 // the host has everything up to here that concerns it
	told    uint64 // the revision of the last message sent
	reason  string // non-empty: send a full snapshot, for this reason
	catchUp time.Time
	held    bool
}

// step sends what the feed has for the host: a snapshot when one is due,
// otherwise the events after pos. more: call again (there is more to
// read); wait: not nil while this server is behind the host (a timer to
// wait on besides the feed).
func (ws *filteredWatch) step(ctx context.Context) (more bool, wait <-chan time.Time, err error) {
	if ws.reason != "" {
		return true, nil, ws.snapshot(ctx)
	}
	rd := ws.w.Read(ws.pos, maxEventBytes)
	switch rd.Outcome {
	case feed.Resync:
		ws.reason = rd.Reason
		return true, nil, nil
	case feed.HoldEmpty:
		if !ws.held {
			ws.held = true
			ws.s.log.Warn("holding the watch of a host ahead of this server's empty state until a snapshot is restored or something is declared; it keeps what it runs", "node", ws.w.Host(), "after_revision", ws.pos)
		}
		return false, make(chan time.Time), nil
	case feed.Behind:
		if time.Now().After(ws.catchUp) {
			ws.reason = fmt.Sprintf("revision %d is ahead of this server's %d (state restored from a snapshot?)", ws.pos, rd.Head)
			return true, nil, nil
		}
		return false, time.After(time.Until(ws.catchUp)), nil
	}
	for _, m := range rd.Messages {
		if err := ws.stream.SendMsg(m); err != nil {
			return false, nil, err
		}
		ws.told = m.Revision
	}
	ws.pos = rd.Position
	return rd.More, nil, nil
}

// snapshot sends the host its whole state, when a slot is free.
func (ws *filteredWatch) snapshot(ctx context.Context) error {
	select {
	case ws.s.snapshotSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-ws.s.snapshotSlots }()
	msgs, rev := ws.w.Snapshot(ws.reason, ws.s.chunkSize, ws.s.chunkBytes)
	for _, m := range msgs {
		if err := ws.stream.SendMsg(m); err != nil {
			return err
		}
	}
	ws.pos, ws.told, ws.reason = rev, rev, ""
	return nil
}

// progress tells the host how far it is, if it does not know.
func (ws *filteredWatch) progress() error {
	if ws.pos <= ws.told {
		return nil
	}
	if err := ws.stream.SendMsg(ws.w.Progress(ws.pos)); err != nil {
		return err
	}
	ws.told = ws.pos
	return nil
}
