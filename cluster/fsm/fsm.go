package fsm

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// historyRetain is how many revisions of change history the FSM keeps for
// watches to resume from; older ones are compacted as new ones arrive. A
// constant, so every replica compacts identically.
const historyRetain = 10000

// Result is what applying one command produced.
type Result struct {
	Revision  uint64
	Changes   []*sdnv1.Change
	Node      *sdnv1.Node
	Cluster   *sdnv1.ClusterSettings
	Workload  *sdnv1.Workload
	Removed   bool
	Compacted uint64
	// Err is set when the command was refused; nothing changed then.
	Err *Error
}

// handler executes one command type: newMsg makes its payload's message,
// which the entry is decoded into before anything is applied (decode.go),
// and run executes it.
type handler struct {
	newMsg func() proto.Message
	run    func(e *exec, m proto.Message) (*Result, *Error)
}

// decodeInto makes the handler of a typed function.
func decodeInto[T proto.Message](newMsg func() T, fn func(*exec, T) (*Result, *Error)) handler {
	return handler{
		newMsg: func() proto.Message { return newMsg() },
		run:    func(e *exec, m proto.Message) (*Result, *Error) { return fn(e, m.(T)) },
	}
}

// handlers has exactly one handler per command type (Consul's habit).
var handlers = map[command.Type]handler{
	command.ApplyConfig:  decodeInto(func() *sdnv1.ApplyRequest { return &sdnv1.ApplyRequest{} }, applyConfig),
	command.Delete:       decodeInto(func() *sdnv1.DeleteRequest { return &sdnv1.DeleteRequest{} }, deleteObject),
	command.RegisterNode: decodeInto(func() *sdnv1.RegisterNodeRequest { return &sdnv1.RegisterNodeRequest{} }, registerNode),
	command.RemoveNode: decodeInto(func() *sdnv1.RemoveNodeRequest { return &sdnv1.RemoveNodeRequest{} }, func(e *exec, r *sdnv1.RemoveNodeRequest) (*Result, *Error) {
		return removeNode(e, r.Name)
	}),
	command.AttachWorkload: decodeInto(func() *sdnv1.AttachWorkloadRequest { return &sdnv1.AttachWorkloadRequest{} }, attachWorkload),
	command.DetachWorkload: decodeInto(func() *sdnv1.DetachWorkloadRequest { return &sdnv1.DetachWorkloadRequest{} }, detachWorkload),
	command.Compact:        decodeInto(func() *sdnv1.CompactRequest { return &sdnv1.CompactRequest{} }, compact),

	command.SetNodeLiveness: decodeInto(func() *sdnv1.SetNodeLivenessRequest { return &sdnv1.SetNodeLivenessRequest{} }, setNodeLiveness),
	command.DrainNode:       decodeInto(func() *sdnv1.DrainNodeRequest { return &sdnv1.DrainNodeRequest{} }, drainNode),
	command.ReleaseNode:     decodeInto(func() *sdnv1.ReleaseNodeRequest { return &sdnv1.ReleaseNodeRequest{} }, releaseNode),
	command.InitCluster:     decodeInto(func() *sdnv1.InitClusterRequest { return &sdnv1.InitClusterRequest{} }, initCluster),

	command.RevokeCertificate: decodeInto(func() *sdnv1.RevokedCertificate { return &sdnv1.RevokedCertificate{} }, revokeCertificate),
	command.LabelWorkload:     decodeInto(func() *sdnv1.LabelWorkloadRequest { return &sdnv1.LabelWorkloadRequest{} }, labelWorkload),
}

func compact(e *exec, r *sdnv1.CompactRequest) (*Result, *Error) {
	if !e.write {
		return &Result{Revision: e.tx.Meta().Revision, Compacted: e.tx.Meta().Compacted}, nil
	}
	c, err := e.tx.Compact(r.Revision)
	if err != nil {
		return nil, ioError(err)
	}
	return &Result{Revision: e.tx.Meta().Revision, Compacted: c}, nil
}

// FSM is the raft state machine: commands in, state in bbolt out. It is
// deterministic: no clock, no randomness, no map-order dependence.
type FSM struct {
	mu    sync.Mutex // serializes applies, dry runs and restores
	db    *state.DB
	opts  state.Options
	pools *pools
	pub   Publisher
	log   *slog.Logger

	// entries and commands count what this process applied: raft command
	// entries, and the commands in them (a Batch entry holds several).
	entries, commands atomic.Uint64

	// watch hears of failed writes (WatchWrites); gaveUp is set once it
	// said to give up a batch: no later batch is written either.
	watch  WriteWatcher
	gaveUp bool
	// halted is the entry the FSM stopped at (decode.go), onHalt hears of it.
	halted atomic.Pointer[EntryError]
	onHalt func(error)
	// pins are the hashes waiting for a revision (hash.go), under mu.
	pins []*pin
}

// WriteWatcher decides what the FSM does when it cannot write a batch of
// entries to the state file (a full disk): a committed entry cannot be
// skipped, or this replica would diverge from the others, so the FSM keeps
// the batch and tries it again for as long as the watcher says so. The
// raft server's disk alarm is one (package cluster).
type WriteWatcher interface {
	// WriteFailed is told that a batch could not be written to the file
	// at path; it returns when the batch should be tried again (true),
	// or false to give up: the server is stopping, and the entries are
	// applied when it starts again.
	WriteFailed(path string, err error) (retry bool)
	// Written is told that the file was written again after failures.
	Written(path string)
}

// ErrHalted is the result of raft entries the FSM gave up on (its
// WriteWatcher said so, the server stopping while the state file could
// not be written). They are applied when the server starts again.
var ErrHalted = errors.New("the state machine stopped before it could write these entries to its state file; they are applied when the server starts again")

// WatchWrites makes the FSM retry batches it cannot write, as w says,
// instead of panicking. Call it before any entry is applied.
func (f *FSM) WatchWrites(w WriteWatcher) { f.watch = w }

// Counts returns how many raft command entries this FSM applied since it
// opened, and how many commands they held: commands/entries is the
// batching factor.
func (f *FSM) Counts() (entries, commands uint64) {
	return f.entries.Load(), f.commands.Load()
}

// Publisher hears of the revisions the state reaches: at open, after each
// batch of entries and after a restore. The raft server's Hub (package
// cluster) is one, and wakes the watchers with it. Close is called when the
// FSM closes.
type Publisher interface {
	Publish(rev uint64)
	Close()
}

// noPublisher is the Publisher of an FSM nobody watches.
type noPublisher struct{}

func (noPublisher) Publish(uint64) {}
func (noPublisher) Close()         {}

// OpenFSM opens the state file and rebuilds the allocators from it. pub
// (nil: nobody) hears of every revision the state reaches.
func OpenFSM(path string, opts state.Options, pub Publisher, log *slog.Logger) (*FSM, error) {
	db, err := state.Open(path, opts)
	if err != nil {
		return nil, err
	}
	if pub == nil {
		pub = noPublisher{}
	}
	f := &FSM{db: db, opts: opts, pub: pub, log: log}
	if err := f.reload(); err != nil {
		db.Close()
		return nil, err
	}
	return f, nil
}

func (f *FSM) reload() error {
	var p *pools
	var rev uint64
	err := f.db.View(func(tx *state.Tx) error {
		var err error
		p, err = loadPools(tx)
		rev = tx.Meta().Revision
		return err
	})
	if err != nil {
		return fmt.Errorf("load state %s: %w", f.db.Path(), err)
	}
	f.pools = p
	f.published(rev)
	return nil
}

// Close closes the state file.
func (f *FSM) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pub.Close()
	return f.db.Close()
}

// View runs fn on a consistent read of the state.
func (f *FSM) View(fn func(*state.Tx) error) error { return f.db.View(fn) }

// AppliedIndex is the raft index the state covers.
func (f *FSM) AppliedIndex() uint64 {
	var i uint64
	_ = f.db.View(func(tx *state.Tx) error { i = tx.Meta().AppliedIndex; return nil })
	return i
}

// Entry is one raft log entry as the FSM sees it (the raft server converts
// raft's).
type Entry struct {
	Index uint64
	// Command is set for an entry holding a command (raft's LogCommand);
	// others (a configuration change) only move the applied index.
	Command bool
	Data    []byte
}

// Apply applies a single entry (raft.FSM's Apply).
func (f *FSM) Apply(l Entry) interface{} {
	return f.ApplyBatch([]Entry{l})[0]
}

// ApplyBatch applies raft entries (raft.BatchingFSM's ApplyBatch): every
// entry of a batch is applied in one bbolt transaction together with the
// new applied index, so a batch costs one fsync and the index never
// disagrees with the data. Entries at or below the stored applied index are
// skipped: they are replays after a restart, already in the state. Every
// command entry is decoded and checked first (decode.go): a damaged one
// stops the FSM before anything of the batch is applied.
//
// A batch that cannot be written (a full disk) is not dropped: continuing
// would let this replica diverge from the log. The allocators are rebuilt
// from the state as it is on disk and the batch is tried again, as the
// WriteWatcher says, blocking raft's FSM goroutine meanwhile; without a
// watcher the FSM panics, and a restart replays.
func (f *FSM) ApplyBatch(logs []Entry) []interface{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	decoded, herr := f.decodeBatch(logs)
	if herr != nil {
		return f.halt(herr, logs, make([]interface{}, len(logs)))
	}
	for failures := 0; ; failures++ {
		if f.gaveUp {
			return halted(len(logs))
		}
		entries, commands := f.entries.Load(), f.commands.Load()
		out, rev, err := f.applyBatch(logs, decoded)
		if err == nil {
			if failures > 0 {
				f.watch.Written(f.db.Path())
			}
			f.published(rev)
			return out
		}
		if f.watch == nil {
			// The state file cannot be written: continuing would let
			// this replica diverge from the log. Stop; a restart replays.
			panic(fmt.Sprintf("cluster: apply raft entries: %v", err))
		}
		// Nothing of the batch is in the state: undo what applying it
		// did in memory, then try again when the watcher says.
		f.entries.Store(entries)
		f.commands.Store(commands)
		if rerr := f.reloadPools(); rerr != nil {
			err = errors.Join(err, rerr)
		}
		if !f.watch.WriteFailed(f.db.Path(), err) {
			f.gaveUp = true
		}
	}
}

// halted is the result of n entries given up on.
func halted(n int) []interface{} {
	out := make([]interface{}, n)
	for i := range out {
		out[i] = ErrHalted
	}
	return out
}

// applyBatch applies a batch in one transaction and returns its results
// and the revision the state reached.
func (f *FSM) applyBatch(logs []Entry, decoded []*decodedEntry) ([]interface{}, uint64, error) {
	out := make([]interface{}, len(logs))
	var rev uint64
	err := f.db.Update(func(tx *state.Tx) error {
		applied := tx.Meta().AppliedIndex
		last := applied
		for i, l := range logs {
			if l.Index <= applied {
				continue
			}
			last = l.Index
			if !l.Command {
				continue
			}
			out[i] = f.applyOne(tx, l.Index, decoded[i])
		}
		if m := tx.Meta(); m.Revision > m.Compacted+historyRetain {
			if _, err := tx.Compact(m.Revision - historyRetain); err != nil {
				return err
			}
		}
		rev = tx.Meta().Revision
		if last > applied {
			return tx.SetAppliedIndex(last)
		}
		return nil
	})
	return out, rev, err
}

// reloadPools rebuilds the allocators from the state file, dropping what
// a batch that was not written allocated.
func (f *FSM) reloadPools() error {
	return f.db.View(func(tx *state.Tx) error {
		p, err := loadPools(tx)
		if err != nil {
			return fmt.Errorf("load state %s: %w", f.db.Path(), err)
		}
		f.pools = p
		return nil
	})
}

// applyOne applies one decoded raft entry: a *Result for a command, a
// []*Result for a Batch (one per command, in order; each command is
// checked and applied on its own, so a refused one does not affect the
// others).
func (f *FSM) applyOne(tx *state.Tx, index uint64, d *decodedEntry) interface{} {
	f.entries.Add(1)
	if !d.batch {
		f.commands.Add(1)
		return f.applyCommand(tx, index, d.format, d.cmds[0])
	}
	out := make([]*Result, len(d.cmds))
	for i, c := range d.cmds {
		if c.nested {
			out[i] = &Result{Revision: tx.Meta().Revision, Err: refuse(CodeInvalid, "", "", "", "a batch inside a batch is not allowed")}
			continue
		}
		out[i] = f.applyCommand(tx, index, d.format, c)
	}
	f.commands.Add(uint64(len(d.cmds)))
	return out
}

func (f *FSM) applyCommand(tx *state.Tx, index uint64, format command.Format, c decodedCmd) *Result {
	if c.h == nil {
		f.log.Warn("skipping raft entry of an unknown command type it is safe to skip; a newer server wrote it", "index", index, "type", uint16(c.typ.Base()))
		return &Result{Revision: tx.Meta().Revision}
	}
	e := newExec(tx, f.pools, true)
	e.strict = format >= command.Format2
	res, rerr := c.h.run(e, c.msg)
	if rerr != nil {
		return &Result{Revision: tx.Meta().Revision, Err: rerr}
	}
	return res
}

// DryRun runs a command against the current state without changing it:
// allocations are made and undone, nothing is written.
func (f *FSM) DryRun(typ command.Type, msg proto.Message) (*Result, error) {
	payload, err := proto.Marshal(msg)
	if err != nil {
		return nil, err
	}
	h, ok := handlers[typ]
	if !ok {
		return nil, fmt.Errorf("no handler for %s", typ)
	}
	m := h.newMsg()
	if err := proto.Unmarshal(payload, m); err != nil {
		return nil, fmt.Errorf("plan %s: %w", typ, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var res *Result
	err = f.db.View(func(tx *state.Tx) error {
		// A plan is checked by the newest rules, those of the entries
		// the cluster writes once every server reads format 2.
		e := newExec(tx, f.pools, false)
		e.strict = true
		r, rerr := h.run(e, m)
		if rerr != nil {
			r = &Result{Revision: tx.Meta().Revision, Err: rerr}
		}
		res = r
		return nil
	})
	return res, err
}

// Snapshot is raft.FSM's Snapshot (the raft server wraps it). The bbolt
// file is copied when raft persists the snapshot (Snapshot.WriteTo), in one
// read transaction (a consistent view that does not block applies). That
// copy may include entries applied after Snapshot returned; this is safe
// because the applied index travels inside the copy and a restored FSM
// skips the entries it already holds.
//
// The state file is written without fsync (cluster/recover.go); raft may
// compact its log up to this snapshot once it is persisted, so the file is
// synced first: on disk it is never behind the log's first entry.
func (f *FSM) Snapshot() (*Snapshot, error) {
	if h := f.Halted(); h != nil {
		return nil, fmt.Errorf("no snapshot: the state stopped before %w", h)
	}
	if err := f.db.Sync(); err != nil {
		return nil, fmt.Errorf("sync state before a snapshot: %w", err)
	}
	return &Snapshot{db: f.db}, nil
}

// Sync flushes the state file to disk.
func (f *FSM) Sync() error { return f.db.Sync() }

// Restore is raft.FSM's Restore: the state file is replaced by the
// snapshot.
func (f *FSM) Restore(r io.ReadCloser) error {
	defer r.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	if h := f.Halted(); h != nil {
		return fmt.Errorf("no restore: the state stopped before %w", h)
	}
	if err := f.db.Replace(r, f.opts); err != nil {
		return err
	}
	return f.reload()
}

// Snapshot is a snapshot of the state file, copied when it is written.
type Snapshot struct{ db *state.DB }

// WriteTo copies the state file to w, in one read transaction.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) { return s.db.WriteTo(w) }

// WriteImage copies the state file to w in one read transaction, calling fn
// (when not nil) on that transaction first (state.DB.WriteImage).
func (f *FSM) WriteImage(w io.Writer, fn func(*state.Tx) error) (int64, error) {
	return f.db.WriteImage(w, fn)
}
