package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/cluster/command"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// networks is an ApplyConfig of n networks m0..m(n-1).
func networks(n int) *sdnv1.ApplyRequest {
	req := &sdnv1.ApplyRequest{}
	for i := range n {
		req.Networks = append(req.Networks, &sdnv1.Network{Name: fmt.Sprintf("m%d", i)})
	}
	return req
}

// TestDamagedEntryStopsTheFSM is the bug a tester found, in the FSM: a
// network's name changed in a logged ApplyConfig (m42 -> M42, same
// length) made the replayed command fail validation, and it was refused
// whole: the server came up with none of its networks and said nothing.
// Now the checksum finds the change and the FSM stops at the entry:
// nothing of its batch is applied, the applied index stays before it,
// nothing after it is applied, the halt handler hears of it once, and no
// snapshot can be taken of the state it stopped in.
func TestDamagedEntryStopsTheFSM(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.RegisterNode, register("h1", "198.18.0.1", 1500))
	before := tf.dump()
	var heard []error
	tf.f.OnHalt(func(err error) { heard = append(heard, err) })

	good, _ := command.Encode(command.RegisterNode, register("h2", "198.18.0.2", 1500))
	data, _ := command.Encode(command.ApplyConfig, networks(100))
	i := bytes.Index(data, []byte("m42"))
	data[i] = 'M'
	out := tf.f.ApplyBatch([]Entry{{Index: 2, Command: true, Data: good}, {Index: 3, Command: true, Data: data}, {Index: 4}})
	var ee *EntryError
	if err, ok := out[1].(error); !ok || !errors.As(err, &ee) || ee.Index != 3 || ee.Unknown || !errors.Is(err, command.ErrChecksum) {
		t.Fatalf("damaged entry: %v, want the FSM stopped at entry 3 with a checksum mismatch", out[1])
	}
	if want := "raft entry 3 is damaged: command envelope"; !strings.HasPrefix(ee.Error(), want) {
		t.Errorf("message %q does not start with %q", ee, want)
	}
	if after := tf.dump(); !slices.Equal(before, after) || tf.f.AppliedIndex() != 1 {
		t.Fatalf("a batch with a damaged entry changed the state (applied index %d):\n%v\n%v", tf.f.AppliedIndex(), before, after)
	}
	again, _ := command.Encode(command.RegisterNode, register("h3", "198.18.0.3", 1500))
	if out := tf.f.ApplyBatch([]Entry{{Index: 5, Command: true, Data: again}}); out[0] != error(ee) {
		t.Fatalf("an entry after the damaged one: %v, want the same stop", out[0])
	}
	if after := tf.dump(); !slices.Equal(before, after) || tf.f.AppliedIndex() != 1 {
		t.Fatal("an entry after the damaged one was applied")
	}
	if len(heard) != 1 || heard[0] != error(ee) || tf.f.Halted() != error(ee) {
		t.Fatalf("halt handler heard %v, Halted = %v", heard, tf.f.Halted())
	}
	if _, err := tf.f.Snapshot(); err == nil {
		t.Fatal("a stopped FSM took a snapshot")
	}
}

// TestDamagedBatchCommand damages a command inside a Batch entry of
// format 1 envelopes (no checksums, what an older leader writes): the
// payload still decodes, but is not what any server encodes, so it stops
// the FSM too, naming the command.
func TestDamagedBatchCommand(t *testing.T) {
	a, _ := command.Format1.Encode(command.RegisterNode, register("h1", "198.18.0.1", 1500))
	b, _ := command.Format1.Encode(command.ApplyConfig, networks(3))
	ok := command.Format1.EncodeBatch([][]byte{a, b})
	if err := VerifyEntry(7, ok); err != nil {
		t.Fatalf("a whole format 1 batch: %v", err)
	}
	for _, c := range []struct {
		name string
		edit func([]byte) []byte
		want string
	}{
		// A string's length byte shortened: the rest reads as another
		// field, which a server never writes after the names.
		{"inner payload", func(d []byte) []byte { d[bytes.Index(d, []byte("m1"))-1]--; return d }, "command 1 of its batch, is damaged"},
		{"inner type", func(d []byte) []byte { d[bytes.Index(d, b)+2] = 99; return d }, "command 1 of its batch, holds command type 99"},
		{"outer framing", func(d []byte) []byte { return append(d, 0x10, 0x01) }, "raft entry 7 is damaged: its Batch command has a format 1 envelope"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := VerifyEntry(7, c.edit(slices.Clone(ok)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

// TestFormatOneEntriesApply: entries of older logs (format 1) apply as
// before, in a log that goes on in format 2; a format 2 entry whose
// version byte was damaged into a 1 is refused.
func TestFormatOneEntriesApply(t *testing.T) {
	tf := newTestFSM(t)
	old, _ := command.Format1.Encode(command.ApplyConfig, networks(3))
	if r := tf.f.Apply(Entry{Index: 1, Command: true, Data: old}).(*Result); r.Err != nil || r.Revision != 1 {
		t.Fatalf("format 1 entry: %+v", r)
	}
	tf.index = 1
	tf.mustApply(command.RegisterNode, register("h1", "198.18.0.1", 1500))
	for n := 1; n < 200; n += 7 {
		data, _ := command.Encode(command.ApplyConfig, networks(n))
		data[0] = byte(command.Format1)
		if err := VerifyEntry(9, data); err == nil {
			t.Fatalf("a format 2 entry of %d networks read as format 1 verified", n)
		}
	}
}
