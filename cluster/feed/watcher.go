package feed

import (
	"fmt"
	"sort"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Watcher is one watch stream's registration: the feed wakes it when a
// revision concerns its host.
type Watcher struct {
	f     *Feed
	host  string
	ch    chan struct{}
	epoch uint64 // the feed's epoch at its last read
}

// Subscribe registers a watcher for host; Close it when the stream ends.
func (f *Feed) Subscribe(host string) *Watcher {
	w := &Watcher{f: f, host: host, ch: make(chan struct{}, 1)}
	f.mu.Lock()
	defer f.mu.Unlock()
	w.epoch = f.epoch
	ws := f.watchers[host]
	if ws == nil {
		ws = map[*Watcher]struct{}{}
		f.watchers[host] = ws
	}
	ws[w] = struct{}{}
	return w
}

// Close unregisters the watcher.
func (w *Watcher) Close() {
	f := w.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if ws := f.watchers[w.host]; ws != nil {
		delete(ws, w)
		if len(ws) == 0 {
			delete(f.watchers, w.host)
		}
	}
}

// Wake receives when a revision may concern the host (or the feed started
// over, or ended).
func (w *Watcher) Wake() <-chan struct{} { return w.ch }

func (w *Watcher) wake() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

// Outcome is what a Read found.
type Outcome int

const (
	// Events: Messages holds what concerns the host (possibly nothing),
	// and Position how far they go.
	Events Outcome = iota
	// Resync: the host needs a full snapshot; Reason says why.
	Resync
	// Behind: this server has not reached the position asked from yet.
	Behind
	// HoldEmpty: behind, and the server's state is empty (a new cluster
	// waiting for a restore or a first declaration).
	HoldEmpty
)

// Read is what concerns the watcher's host after revision pos, as at most
// a few messages of up to maxBytes each (a revision is never split; one
// larger than maxBytes goes alone).
type Read struct {
	Outcome  Outcome
	Messages []*Message
	Position uint64 // the revision the host is at once it has them
	Head     uint64 // the feed's revision
	Reason   string
	// More: there is more to read after Position.
	More bool
}

// Host is the host the watcher watches for.
func (w *Watcher) Host() string { return w.host }

// Read collects what the host needs after pos.
func (w *Watcher) Read(pos uint64, maxBytes int) Read {
	f := w.f
	f.mu.Lock()
	defer f.mu.Unlock()
	out := Read{Head: f.rev, Position: pos}
	switch {
	case w.epoch != f.epoch && pos <= f.epochRev:
		w.epoch = f.epoch
		out.Outcome, out.Reason = Resync, fmt.Sprintf("this server started over from its whole state at revision %d (a restore?)", f.epochRev)
		return out
	case pos > f.rev && f.empty:
		out.Outcome = HoldEmpty
		return out
	case pos > f.rev:
		out.Outcome = Behind
		return out
	case pos < f.start:
		out.Outcome, out.Reason = Resync, fmt.Sprintf("revision %d is older than this server's history (it starts after %d)", pos, f.start)
		return out
	}
	w.epoch = f.epoch
	i := sort.Search(len(f.history), func(i int) bool { return f.history[i].rev > pos })
	var m *Message
	for ; i < len(f.history); i++ {
		r := f.history[i]
		var wires [][]byte
		size := 0
		for k := range r.entries {
			if e := &r.entries[k]; e.concerns(w.host) {
				wires = append(wires, e.wire)
				size += len(e.wire)
			}
		}
		if len(wires) > 0 {
			if m != nil && m.size+size > maxBytes {
				out.Messages = append(out.Messages, m)
				if len(out.Messages) >= maxMessagesPerRead {
					out.More = true
					break
				}
				m = nil
			}
			if m == nil {
				m = &Message{Type: sdnv1.WatchEventType_WATCH_EVENT_TYPE_DELTA}
			}
			for _, wire := range wires {
				m.add(wire)
			}
			m.Changes += len(wires)
		}
		out.Position = r.rev
		if m != nil {
			m.Revision = r.rev
		}
	}
	if m != nil {
		out.Messages = append(out.Messages, m)
	}
	for _, m := range out.Messages {
		m.prepend(header{typ: m.Type, rev: m.Revision, clusterID: f.clusterID}.encode())
	}
	return out
}

// maxMessagesPerRead bounds what one Read returns (the watcher reads
// again for the rest), so one watcher far behind holds little at a time.
const maxMessagesPerRead = 8

func (m *Message) prepend(p []byte) {
	m.parts = append([][]byte{p}, m.parts...)
	m.size += len(p)
}

// Progress is a PROGRESS event at rev.
func (w *Watcher) Progress(rev uint64) *Message {
	w.f.mu.Lock()
	id := w.f.clusterID
	w.f.mu.Unlock()
	return newMessage(header{typ: sdnv1.WatchEventType_WATCH_EVENT_TYPE_PROGRESS, rev: rev, clusterID: id})
}
