package fsm

import (
	"context"
	"fmt"

	"github.com/sdn-dev/sdn/cluster/state"
)

// Servers compare their states by hashing them at the same raft index
// (state.Tx.Hash; cluster/api runs the comparison): servers that applied
// the same prefix of the log hold the same records. Not at the same
// revision: a few commands change records without bumping it (the
// cluster id, a revocation). An index is a point every server passes
// through, but it may pass it inside a batch of entries and never hold it
// between two: StateHash hashes at an index exactly by opening its read
// transaction while no batch can commit, the moment the state reaches
// it, or says it was passed.

// IndexPassedError is a hash asked for at a raft index the state has
// already gone past (or went past within one batch of entries).
type IndexPassedError struct{ Want, At uint64 }

func (e *IndexPassedError) Error() string {
	return fmt.Sprintf("the state has applied raft index %d, past %d", e.At, e.Want)
}

// pin is a hash waiting for the state to reach a raft index.
type pin struct {
	index uint64
	ch    chan pinResult // buffered: the FSM never blocks on it
}

type pinResult struct {
	h   state.Hash
	err error
}

// StateHash hashes the state when it has applied raft index index: now
// when index is 0; otherwise when the state reaches it (waiting for it
// until ctx ends), an *IndexPassedError if it is or goes past it. The
// hashing runs on a read transaction and does not hold applies up.
func (f *FSM) StateHash(ctx context.Context, index uint64) (state.Hash, error) {
	if index == 0 {
		var h state.Hash
		err := f.db.View(func(tx *state.Tx) error { h = tx.Hash(); return nil })
		return h, err
	}
	p := &pin{index: index, ch: make(chan pinResult, 1)}
	f.mu.Lock()
	switch cur := f.appliedIndex(); {
	case cur == index:
		f.hashNow(p)
	case cur > index:
		p.ch <- pinResult{err: &IndexPassedError{Want: index, At: cur}}
	default:
		f.pins = append(f.pins, p)
	}
	f.mu.Unlock()
	select {
	case r := <-p.ch:
		return r.h, r.err
	case <-ctx.Done():
	}
	f.mu.Lock()
	for i, q := range f.pins {
		if q == p {
			f.pins = append(f.pins[:i], f.pins[i+1:]...)
			break
		}
	}
	cur := f.appliedIndex()
	f.mu.Unlock()
	select {
	case r := <-p.ch:
		return r.h, r.err
	default:
		return state.Hash{}, fmt.Errorf("the state did not reach raft index %d (it has applied %d): %w", index, cur, ctx.Err())
	}
}

// appliedIndex is the raft index the state has applied now.
func (f *FSM) appliedIndex() uint64 {
	var i uint64
	_ = f.db.View(func(tx *state.Tx) error { i = tx.Meta().AppliedIndex; return nil })
	return i
}

// hashNow hashes the state as it is for p: the read transaction opens
// before hashNow returns (called with f.mu held, so no batch commits in
// between), the hashing goes on after.
func (f *FSM) hashNow(p *pin) {
	opened := make(chan struct{})
	go func() {
		var h state.Hash
		err := f.db.View(func(tx *state.Tx) error {
			close(opened)
			h = tx.Hash()
			return nil
		})
		select {
		case <-opened:
		default:
			close(opened) // the transaction did not open
		}
		p.ch <- pinResult{h, err}
	}()
	<-opened
}

// published tells the Publisher of a revision the state reached, and
// serves the hashes waiting for the raft index it applied (f.mu held, or
// the FSM not yet shared).
func (f *FSM) published(rev uint64) {
	f.pub.Publish(rev)
	if len(f.pins) == 0 {
		return
	}
	at := f.appliedIndex()
	kept := f.pins[:0]
	for _, p := range f.pins {
		switch {
		case p.index == at:
			f.hashNow(p)
		case p.index < at:
			p.ch <- pinResult{err: &IndexPassedError{Want: p.index, At: at}}
		default:
			kept = append(kept, p)
		}
	}
	f.pins = kept
}
