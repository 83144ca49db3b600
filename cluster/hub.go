package cluster

import "sync"

// Hub tells watchers that the state reached a new revision. Waiters get a
// channel that is closed at the next publish (a broadcast without per-waiter
// bookkeeping).
type Hub struct {
	mu     sync.Mutex
	rev    uint64
	ch     chan struct{}
	closed bool
}

// NewHub returns a hub at revision 0.
func NewHub() *Hub { return &Hub{ch: make(chan struct{})} }

// Publish announces rev (ignored unless it moves forward; a restore may set
// it anew).
func (h *Hub) Publish(rev uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if rev == h.rev || h.closed {
		return
	}
	h.rev = rev
	close(h.ch)
	h.ch = make(chan struct{})
}

// Wait returns the current revision and a channel closed when it changes.
func (h *Hub) Wait() (uint64, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rev, h.ch
}

// Close wakes every waiter for good.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.ch)
	}
}

// Closed reports whether the hub was closed.
func (h *Hub) Closed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}
