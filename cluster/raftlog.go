package cluster

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/fsm"
)

// The raft log (raft/raft.db: the log and raft's stable store) is the
// record every server replays; a damaged one must stop the server with a
// message, never be replayed into another state (docs/design.md,
// "Integrity of the raft log"). Three guards:
//
//   - openRaftLog turns what bbolt does with a damaged file (an error, or
//     a panic on a truncated file or a bad page) into an error naming the
//     file and what to do.
//   - checksummedLogs stores every entry with a checksum of its index,
//     term, type and data.
//   - checkRaftLog reads every entry before raft starts: each must decode,
//     match its checksum, sit at its own index, have a term no lower than the one before and
//     no higher than the stored current term, and be of a type whose data
//     fits it: a command entry must pass fsm.VerifyEntry (the envelope's
//     checksum), raft's own no-op and barrier entries carry no data, a
//     configuration must decode. A byte changed in an entry's framing (its
//     index, term or type) is found here; raft would otherwise skip a
//     command whose type became a no-op without a word.
//   - The FSM checks every entry again before it applies it (package fsm,
//     decode.go), which covers entries that arrive while the server runs;
//     it stops at a damaged one and the server stops with it (Failed).

// checksummedLogs is raft's log store with a checksum on every entry it
// stores: raft-boltdb keeps a raft.Log as a msgpack map whose fields (the
// index, the term, the type) no checksum covers, and a changed type or
// term would be read as another, valid entry (a command turned into a
// no-op is skipped without a word). The checksum (entryChecksum) goes in
// the entry's Extensions, raft's field for what layers around it add,
// stored with the entry and ignored by raft; checkRaftLog verifies it.
// Entries stored before it existed have none, and are checked by their
// shape only. Extensions travel to followers with the entries, which
// store their own checksum of what they receive.
type checksummedLogs struct{ raft.LogStore }

// StoreLog stores one entry with its checksum.
func (c checksummedLogs) StoreLog(l *raft.Log) error { return c.StoreLogs([]*raft.Log{l}) }

// StoreLogs stores entries with their checksums (copies: raft's own
// entries are left as they are).
func (c checksummedLogs) StoreLogs(logs []*raft.Log) error {
	out := make([]*raft.Log, len(logs))
	for i, l := range logs {
		cp := *l
		cp.Extensions = entryChecksum(&cp)
		out[i] = &cp
	}
	return c.LogStore.StoreLogs(out)
}

// entryChecksumMagic starts an entry's checksum in its Extensions.
const entryChecksumMagic = "sdn-crc1"

// entryChecksum is the Extensions of a stored entry: the magic, then the
// CRC-32C of its index, term, type and data.
func entryChecksum(l *raft.Log) []byte {
	var h [17]byte
	binary.BigEndian.PutUint64(h[0:8], l.Index)
	binary.BigEndian.PutUint64(h[8:16], l.Term)
	h[16] = byte(l.Type)
	tab := crc32.MakeTable(crc32.Castagnoli)
	sum := crc32.Update(crc32.Checksum(h[:], tab), tab, l.Data)
	return binary.BigEndian.AppendUint32([]byte(entryChecksumMagic), sum)
}

// checkChecksum verifies an entry's checksum, if it has one.
func checkChecksum(l *raft.Log) error {
	if !bytes.HasPrefix(l.Extensions, []byte(entryChecksumMagic)) {
		return nil // stored before entries had checksums
	}
	if want := entryChecksum(l); !bytes.Equal(l.Extensions, want) {
		return fmt.Errorf("its checksum does not match its index, term, type and data (stored %x, computed %x)",
			l.Extensions[len(entryChecksumMagic):], want[len(entryChecksumMagic):])
	}
	return nil
}

// raftLogFile is the raft log's file under the data directory.
func raftLogFile(dataDir string) string { return filepath.Join(dataDir, "raft", "raft.db") }

// damagedLogError is a raft log this server cannot trust: the error names
// the file, and, for an entry, its index, and says what to do.
type damagedLogError struct {
	path  string
	index uint64 // 0: the file itself (or the stable store)
	err   error
	todo  string
}

func (e *damagedLogError) Error() string {
	what := fmt.Sprintf("raft log %s is damaged: %v", e.path, e.err)
	if e.index > 0 {
		what = fmt.Sprintf("raft log %s: entry %d is damaged: %v", e.path, e.index, e.err)
	}
	return what + "; this server stopped rather than serve a state that may be wrong. " + e.todo
}

func (e *damagedLogError) Unwrap() error { return e.err }

// rebuildAdvice is what to do about a server whose raft log is damaged.
func rebuildAdvice(id, dataDir, addr string) string {
	return fmt.Sprintf("To rebuild this server from the others (while the rest of the cluster has a quorum): keep it stopped, "+
		"move its data directory %s aside, run `sdnctl cluster remove %s` against a healthy server, start sdnd again with an empty "+
		"data directory (without --peers, --bootstrap or --bootstrap-expect) and run `sdnctl cluster join %s`. If no healthy server is left, start a new cluster and restore the latest "+
		"backup with `sdnctl snapshot restore FILE` (docs/design.md, \"Disaster recovery\")", dataDir, id, addr)
}

// openRaftLog opens raft.db, turning a panic of bbolt (a truncated file, a
// damaged page) or an error that means the file is damaged into a
// damagedLogError.
func openRaftLog(path string, opts raftboltdb.Options, todo string) (logs *raftboltdb.BoltStore, err error) {
	if err := checkBoltSize(path); err != nil {
		return nil, &damagedLogError{path: path, err: err, todo: todo}
	}
	if err := walkBolt(path); err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open raft log %s: locked by another process (is another sdnd using this data dir?)", path)
		}
		var de *damagedLogError
		if errors.As(err, &de) {
			de.path, de.todo = path, todo
		}
		return nil, err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			logs, err = nil, &damagedLogError{path: path, err: fmt.Errorf("bbolt failed reading it: %v", v), todo: todo}
		}
	}()
	logs, err = raftboltdb.New(opts)
	switch {
	case err == nil:
		return logs, nil
	case errors.Is(err, bolt.ErrTimeout):
		return nil, fmt.Errorf("open raft log %s: locked by another process (is another sdnd using this data dir?)", path)
	case errors.Is(err, bolt.ErrInvalid) || errors.Is(err, bolt.ErrChecksum) || errors.Is(err, bolt.ErrVersionMismatch) ||
		strings.Contains(err.Error(), "file size too small"):
		return nil, &damagedLogError{path: path, err: fmt.Errorf("bbolt cannot open it: %v", err), todo: todo}
	}
	return nil, fmt.Errorf("open raft log %s: %w", path, err)
}

// logCheck is what checkRaftLog learned: how many entries it read and
// whether any command entry has a checksum (format 2), which means the
// cluster writes format 2 already.
type logCheck struct {
	first, last uint64
	format2     bool
	took        time.Duration
}

// checkRaftLog reads every entry of the log and raft's stable store, and
// fails with a damagedLogError at the first that cannot be right. A panic
// of bbolt on a damaged page is such a failure too. Entries missing at or
// below snapIndex (the newest raft snapshot's) are not: a snapshot restore
// leaves such a hole on purpose, and raft never reads there again.
func checkRaftLog(logs *raftboltdb.BoltStore, path, todo string, snapIndex uint64) (c logCheck, err error) {
	start := time.Now()
	damaged := func(index uint64, format string, args ...any) error {
		return &damagedLogError{path: path, index: index, err: fmt.Errorf(format, args...), todo: todo}
	}
	var at uint64
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			err = damaged(at, "bbolt failed reading it: %v", v)
		}
	}()
	if c.first, err = logs.FirstIndex(); err != nil {
		return c, damaged(0, "read its first index: %v", err)
	}
	if c.last, err = logs.LastIndex(); err != nil {
		return c, damaged(0, "read its last index: %v", err)
	}
	term, err := logs.GetUint64([]byte("CurrentTerm"))
	if err != nil && c.last > 0 {
		return c, damaged(0, "raft's current term is unreadable (%v) while the log holds entries %d to %d", err, c.first, c.last)
	}
	if vote, err := logs.GetUint64([]byte("LastVoteTerm")); err == nil && vote > term {
		return c, damaged(0, "raft's last vote is for term %d, after its current term %d", vote, term)
	}
	var prev uint64
	for at = c.first; at <= c.last && at > 0; at++ {
		var l raft.Log
		err := logs.GetLog(at, &l)
		if errors.Is(err, raft.ErrLogNotFound) && at <= snapIndex {
			continue
		}
		if err != nil {
			return c, damaged(at, "the entry does not read back: %v", err)
		}
		if err := checkEntry(&l, at, prev, term); err != nil {
			var ee *fsm.EntryError
			if errors.As(err, &ee) {
				err = entryDetail(ee)
			}
			return c, &damagedLogError{path: path, index: at, err: err, todo: todo}
		}
		prev = l.Term
		if l.Type == raft.LogCommand && command.FormatOf(l.Data) == command.Format2 {
			c.format2 = true
		}
	}
	c.took = time.Since(start)
	return c, nil
}

// checkEntry checks one entry read at index: its own index, its term
// against the previous entry's and the current term, that its data fits
// its type, and last its checksum (when it has one), which finds what
// the others cannot (a term still in order, a server's id in a
// configuration).
func checkEntry(l *raft.Log, index, prevTerm, currentTerm uint64) error {
	switch {
	case l.Index != index:
		return fmt.Errorf("the entry stored at index %d says it is entry %d", index, l.Index)
	case l.Term == 0:
		return errors.New("its term is 0 (raft's terms start at 1)")
	case l.Term < prevTerm:
		return fmt.Errorf("its term %d is before the previous entry's (%d)", l.Term, prevTerm)
	case l.Term > currentTerm:
		return fmt.Errorf("its term %d is after raft's current term %d", l.Term, currentTerm)
	}
	switch l.Type {
	case raft.LogCommand:
		if err := fsm.VerifyEntry(index, l.Data); err != nil {
			var ee *fsm.EntryError
			if errors.As(err, &ee) && ee.Unknown {
				return nil // whole, but of a newer release: the FSM says so when it gets there
			}
			return err
		}
	case raft.LogNoop, raft.LogBarrier:
		if len(l.Data) != 0 {
			return fmt.Errorf("a raft %s entry carries %d bytes of data (never written so: a command whose type was damaged?)", l.Type, len(l.Data))
		}
	case raft.LogConfiguration:
		if err := decodeConfiguration(l.Data); err != nil {
			return err
		}
	default:
		return fmt.Errorf("its type %d is not one raft writes", uint8(l.Type))
	}
	return checkChecksum(l)
}

// decodeConfiguration checks a configuration entry: raft's decoder panics
// on one that does not decode.
func decodeConfiguration(data []byte) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("its raft configuration does not decode: %v", v)
		}
	}()
	if c := raft.DecodeConfiguration(data); len(c.Servers) == 0 {
		return errors.New("its raft configuration lists no server")
	}
	return nil
}

// walkBolt reads every page of a bbolt file that its B+tree reaches,
// every key and value, in this goroutine: bbolt panics on a damaged page,
// and when it opens a file whose free pages are not stored (raft.db is
// written so) it walks the tree in a goroutine of its own, where a panic
// cannot be recovered. Read here first, read-only (which walks nothing at
// open), the panic is a damagedLogError. A page the file does not hold
// faults (SIGBUS), which SetPanicOnFault makes a panic too.
func walkBolt(path string) (err error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			err = &damagedLogError{err: fmt.Errorf("bbolt failed reading it: %v", v)}
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return err
		}
		return &damagedLogError{err: fmt.Errorf("bbolt cannot open it: %v", err)}
	}
	defer db.Close()
	var sum uint32 // of every key and value: touches every byte
	return db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				sum = crc32.Update(crc32.Update(sum, crc32.IEEETable, k), crc32.IEEETable, v)
				return nil
			})
		})
	})
}

// checkBoltSize compares a bbolt file's length with the pages its newest
// valid meta page says it holds: a file cut short (a truncated copy, a
// full disk while it grew) fails here with both figures, before bbolt
// reads past its end. A file whose meta pages are both invalid is left to
// bbolt, which says so.
func checkBoltSize(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return nil // bbolt reports it with its own words
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return nil
	}
	var best *boltMeta
	for _, off := range []int64{0, -1} {
		m, ok := readBoltMeta(f, off, best)
		if ok && (best == nil || m.txid > best.txid) {
			best = &m
		}
	}
	if best != nil && int64(best.pgid)*int64(best.pageSize) > fi.Size() {
		return fmt.Errorf("the file is cut short: it is %d bytes long, but its newest meta page (transaction %d) says its pages reach %d bytes",
			fi.Size(), best.txid, int64(best.pgid)*int64(best.pageSize))
	}
	return nil
}

// boltMeta is what checkBoltSize reads of a bbolt meta page (bbolt's
// internal/common.Meta, format version 2, in the machine's byte order).
type boltMeta struct {
	pageSize   uint32
	pgid, txid uint64
}

// readBoltMeta reads the meta page at off (0 for the first; -1 for the
// second, one page size after the first, which the first tells unless it
// is invalid: then the machine's page size is tried), and whether it is
// valid (magic, version, checksum).
func readBoltMeta(f *os.File, off int64, first *boltMeta) (boltMeta, bool) {
	const headerLen, metaLen = 16, 64 // page header; meta through its checksum
	if off < 0 {
		off = int64(os.Getpagesize())
		if first != nil {
			off = int64(first.pageSize)
		}
	}
	buf := make([]byte, headerLen+metaLen)
	if _, err := f.ReadAt(buf, off); err != nil {
		return boltMeta{}, false
	}
	b, bo := buf[headerLen:], binary.NativeEndian
	h := fnv.New64a()
	h.Write(b[:56])
	m := boltMeta{pageSize: bo.Uint32(b[8:12]), pgid: bo.Uint64(b[40:48]), txid: bo.Uint64(b[48:56])}
	valid := bo.Uint32(b[0:4]) == 0xED0CDAED && bo.Uint32(b[4:8]) == 2 && bo.Uint64(b[56:64]) == h.Sum64()
	return m, valid && m.pageSize >= 512
}
