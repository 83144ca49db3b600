package fsm

import (
	"context"
	"fmt"

	"github.com/sdn-dev/sdn/cluster/state"
)

// Servers compare their states by hashing them at the same revision
// (state.Tx.Hash; cluster/api runs the comparison). A revision is a point
// every server passes through, but a server may pass it inside a batch of
// entries and never hold it between two: StateHash hashes at a revision
// exactly by opening its read transaction while no batch can commit, the
// moment the state reaches it, or says it was passed.

// RevisionPassedError is a hash asked for at a revision the state has
// already gone past (or went past within one batch of entries).
type RevisionPassedError struct{ Want, At uint64 }

func (e *RevisionPassedError) Error() string {
	return fmt.Sprintf("the state is at revision %d, past revision %d", e.At, e.Want)
}

// pin is a hash waiting for the state to reach a revision.
type pin struct {
	rev uint64
	ch  chan pinResult // buffered: the FSM never blocks on it
}

type pinResult struct {
	h   state.Hash
	err error
}

// StateHash hashes the state at revision rev: now when rev is 0;
// otherwise when the state reaches rev (waiting for it until ctx ends), a
// *RevisionPassedError if it is or goes past it. The hashing runs on a
// read transaction and does not hold applies up.
func (f *FSM) StateHash(ctx context.Context, rev uint64) (state.Hash, error) {
	if rev == 0 {
		var h state.Hash
		err := f.db.View(func(tx *state.Tx) error { h = tx.Hash(); return nil })
		return h, err
	}
	p := &pin{rev: rev, ch: make(chan pinResult, 1)}
	f.mu.Lock()
	switch cur := f.revision(); {
	case cur == rev:
		f.hashNow(p)
	case cur > rev:
		p.ch <- pinResult{err: &RevisionPassedError{Want: rev, At: cur}}
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
	cur := f.revision()
	f.mu.Unlock()
	select {
	case r := <-p.ch:
		return r.h, r.err
	default:
		return state.Hash{}, fmt.Errorf("the state did not reach revision %d (it is at %d): %w", rev, cur, ctx.Err())
	}
}

// revision is the state's revision now.
func (f *FSM) revision() uint64 {
	var rev uint64
	_ = f.db.View(func(tx *state.Tx) error { rev = tx.Meta().Revision; return nil })
	return rev
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
// serves the hashes waiting for it (f.mu held, or the FSM not yet
// shared).
func (f *FSM) published(rev uint64) {
	f.pub.Publish(rev)
	kept := f.pins[:0]
	for _, p := range f.pins {
		switch {
		case p.rev == rev:
			f.hashNow(p)
		case p.rev < rev:
			p.ch <- pinResult{err: &RevisionPassedError{Want: p.rev, At: rev}}
		default:
			kept = append(kept, p)
		}
	}
	f.pins = kept
}
