package fsm

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/cluster/command"
)

// EntryError is a raft entry the FSM will not apply: damaged (its checksum
// does not match, it does not decode, or, in a format 1 envelope that
// carries no checksum, it is not the encoding any server writes), or
// holding a command type this server does not know and may not skip. The
// FSM stops at the first one (FSM.Halted) and applies nothing from then
// on: applying the entries after a damaged one, or dropping it, would
// leave this server's state silently different from the others'.
type EntryError struct {
	Index uint64
	// Command is the offending command's position in a Batch entry, -1
	// when it is the entry itself.
	Command int
	// Unknown is set when the entry is whole but holds a command type this
	// server does not know and may not skip (a newer server wrote it).
	Unknown bool
	Err     error
}

func (e *EntryError) Error() string {
	where := fmt.Sprintf("raft entry %d", e.Index)
	if e.Command >= 0 {
		where += fmt.Sprintf(", command %d of its batch,", e.Command)
	}
	if e.Unknown {
		return where + " " + e.Err.Error()
	}
	return where + " is damaged: " + e.Err.Error()
}

func (e *EntryError) Unwrap() error { return e.Err }

// decodedEntry is a raft command entry decoded and checked before it is
// applied: its command, or a Batch's commands in order.
type decodedEntry struct {
	batch bool
	cmds  []decodedCmd
	// format is the entry's envelope format, which also says which rules
	// its commands are checked by (exec.strict).
	format command.Format
}

// decodedCmd is one command with its payload decoded. h is nil for a type
// this server does not know that is marked skippable, and for a Batch
// inside a Batch (nested), which is refused when applied.
type decodedCmd struct {
	typ    command.Type
	h      *handler
	msg    proto.Message
	nested bool
}

// VerifyEntry checks a raft command entry's bytes the way the FSM does
// before it applies them, without applying anything: the raft server
// checks its whole log with it when it starts. The error is an
// *EntryError.
func VerifyEntry(index uint64, data []byte) error {
	if _, err := decodeEntry(index, data); err != nil {
		return err
	}
	return nil
}

// decodeEntry decodes a command entry: the envelope (its checksum), a
// Batch's commands (each envelope and checksum) and every payload.
func decodeEntry(index uint64, data []byte) (*decodedEntry, *EntryError) {
	typ, payload, err := command.Decode(data)
	if err != nil {
		return nil, &EntryError{Index: index, Command: -1, Err: err}
	}
	legacy := command.FormatOf(data) == command.Format1
	if typ.Base() != command.Batch {
		c, err := decodeCommand(typ, payload, legacy)
		if err != nil {
			err.Index, err.Command = index, -1
			return nil, err
		}
		return &decodedEntry{cmds: []decodedCmd{c}, format: command.FormatOf(data)}, nil
	}
	raw, err := command.DecodeBatch(payload)
	if err != nil {
		return nil, &EntryError{Index: index, Command: -1, Err: err}
	}
	if legacy && !bytes.Equal(command.Format1.EncodeBatch(raw), data) {
		return nil, &EntryError{Index: index, Command: -1, Err: errNotCanonical(command.Batch)}
	}
	d := &decodedEntry{batch: true, cmds: make([]decodedCmd, len(raw)), format: command.FormatOf(data)}
	for i, c := range raw {
		typ, payload, err := command.Decode(c)
		if err != nil {
			return nil, &EntryError{Index: index, Command: i, Err: err}
		}
		if typ.Base() == command.Batch {
			d.cmds[i] = decodedCmd{typ: typ, nested: true}
			continue
		}
		dc, eerr := decodeCommand(typ, payload, command.FormatOf(c) == command.Format1)
		if eerr != nil {
			eerr.Index, eerr.Command = index, i
			return nil, eerr
		}
		d.cmds[i] = dc
	}
	return d, nil
}

// decodeCommand decodes one command's payload. A format 1 payload carries
// no checksum, so it must at least be exactly what Encode writes for the
// message it decodes to: a damaged one (or a format 2 envelope whose
// version byte was damaged into a 1, whose payload then starts with the
// checksum's bytes) almost never is.
func decodeCommand(typ command.Type, payload []byte, legacy bool) (decodedCmd, *EntryError) {
	h, ok := handlers[typ.Base()]
	if !ok {
		if typ.Ignorable() {
			return decodedCmd{typ: typ}, nil
		}
		return decodedCmd{}, &EntryError{Unknown: true, Err: fmt.Errorf("holds command type %d, unknown to this server and not marked skippable; upgrade sdnd to the release of the servers that wrote it", uint16(typ.Base()))}
	}
	m := h.newMsg()
	if err := proto.Unmarshal(payload, m); err != nil {
		return decodedCmd{}, &EntryError{Err: fmt.Errorf("its %s payload does not decode: %v", typ, err)}
	}
	if legacy {
		again, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil || !bytes.Equal(again, payload) {
			return decodedCmd{}, &EntryError{Err: errNotCanonical(typ)}
		}
	}
	return decodedCmd{typ: typ, h: &h, msg: m}, nil
}

func errNotCanonical(typ command.Type) error {
	return fmt.Errorf("its %s command has a format 1 envelope (no checksum) whose payload is not the encoding any server writes", typ)
}

// decodeBatch decodes the command entries of a batch before any is
// applied; entries that are not commands decode to nil. It fails with
// the entry the FSM stopped at once it has stopped.
func (f *FSM) decodeBatch(logs []Entry) ([]*decodedEntry, *EntryError) {
	if h := f.halted.Load(); h != nil {
		return nil, h
	}
	out := make([]*decodedEntry, len(logs))
	for i, l := range logs {
		if !l.Command {
			continue
		}
		d, err := decodeEntry(l.Index, l.Data)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

// OnHalt sets fn to hear, once, of the entry the FSM stopped at (the raft
// server stops then). Call it before any entry is applied.
func (f *FSM) OnHalt(fn func(error)) { f.onHalt = fn }

// Halted is the entry the FSM stopped at (an *EntryError), nil while it
// applies entries.
func (f *FSM) Halted() error {
	if h := f.halted.Load(); h != nil {
		return h
	}
	return nil
}

// halt stops the FSM at err: nothing of this batch is applied (the state
// and its applied index stay before it, so a restart meets the entry
// again) and nothing after it will be. Each command entry's result is err,
// which the proposer reports as an outcome it cannot know.
func (f *FSM) halt(err *EntryError, logs []Entry, out []interface{}) []interface{} {
	if f.halted.CompareAndSwap(nil, err) {
		if f.onHalt != nil {
			f.onHalt(err)
		} else {
			f.log.Error("stopped applying the raft log", "error", err.Error())
		}
	}
	for i, l := range logs {
		if l.Command {
			out[i] = f.halted.Load()
		}
	}
	return out
}
