package fsm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/cluster/command"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// entriesOf encodes ApplyConfig commands of one network each, n0..n(k-1),
// as raft entries from index 1.
func entriesOf(k int) []Entry {
	var out []Entry
	for i := range k {
		data, _ := command.Encode(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "n" + string(rune('a'+i))}}})
		out = append(out, Entry{Index: uint64(i + 1), Command: true, Data: data})
	}
	return out
}

// TestStateHashAtAnIndex: a server asked for its hash at a raft index it
// has not reached waits for it and hashes exactly there, whatever the
// batches it applies; the hash is another server's at that index (it
// applied the same entries in other batches); a batch that goes past the
// index says so; a caller that gives up is told where the state is.
func TestStateHashAtAnIndex(t *testing.T) {
	entries := entriesOf(6)
	a, b := newTestFSM(t), newTestFSM(t)
	a.f.ApplyBatch(entries[:3])
	want, err := a.f.StateHash(context.Background(), 0)
	if err != nil || want.Revision != 3 {
		t.Fatalf("hash now: %+v %v", want, err)
	}

	got := make(chan error, 1)
	var h struct{ sum [32]byte }
	go func() {
		hh, err := b.f.StateHash(context.Background(), 3)
		h.sum = hh.Sum
		got <- err
	}()
	time.Sleep(20 * time.Millisecond) // the hash waits for revision 3
	b.f.ApplyBatch(entries[:1])
	b.f.ApplyBatch(entries[1:3]) // reaches 3: hashed there
	b.f.ApplyBatch(entries[3:4]) // and moves on at once
	if err := <-got; err != nil || h.sum != want.Sum {
		t.Fatalf("hash at 3: %v, equal to the other server's: %v", err, h.sum == want.Sum)
	}

	go func() {
		_, err := b.f.StateHash(context.Background(), 5)
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	b.f.ApplyBatch(entries[4:6]) // 4 to 6 in one batch: 5 is never between two
	var passed *IndexPassedError
	if err := <-got; !errors.As(err, &passed) || passed.Want != 5 || passed.At != 6 {
		t.Fatalf("a batch past the revision: %v", err)
	}
	if _, err := b.f.StateHash(context.Background(), 2); !errors.As(err, &passed) {
		t.Fatalf("a revision already passed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := b.f.StateHash(ctx, 9); err == nil || !strings.Contains(err.Error(), "did not reach raft index 9 (it has applied 6)") {
		t.Fatalf("a revision not reached: %v", err)
	}
	if len(b.f.pins) != 0 {
		t.Fatalf("%d hashes left waiting", len(b.f.pins))
	}
}
