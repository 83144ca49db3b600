package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// The agent's saved desired state is a snapshot file (SaveDesired's
// format: one snapshot watch event) and, beside it (path + ".log"), an
// append log of the revisions received since: each realize appends the
// watch events it applied (deltas as the servers sent them, and the last
// progress) in one write and one fsync, instead of writing the whole state
// again (10–15 ms at 5,000 workloads; an append of one revision is a few
// hundred bytes). When the log outgrows the snapshot (and logCompactAt),
// or a full snapshot arrives from the servers, the state is written whole
// again and the log starts over.
//
// Crash safety: the log starts with a header naming the snapshot it
// follows (a SHA-256 of the snapshot file), so a log left beside a newer
// snapshot (a crash between the two renames of Snapshot) is ignored. Each
// record carries its length and a CRC-32C: replay stops at the first
// record that is short or fails its checksum (a torn write), and the
// state loaded is that of the last whole record, a state the host really
// had, never a mix. The agent then follows the watch from that revision,
// so the servers send what followed, and its next save writes the whole
// state again (dropping the torn tail). LoadDesired logs what it dropped.

// logMagic starts a log file; the snapshot's SHA-256 follows it.
const logMagic = "sdnlog1\n"

// logCompactAt is the log size below which it is never compacted (a
// variable for tests).
var logCompactAt int64 = 1 << 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// store is the saved desired state of one agent.
type store struct {
	path string
	log  *os.File // nil: the next save writes a whole snapshot
	// logSize and snapSize are the files' sizes; rev the revision the
	// files hold.
	logSize, snapSize int64
	rev               uint64
}

func logPath(path string) string { return path + ".log" }

// openStore loads the saved desired state at path and opens its log for
// appending (a missing snapshot is an empty state).
func openStore(path string, log *slog.Logger) (*store, *model.Desired, error) {
	d, snap, err := loadSnapshot(path)
	if err != nil {
		return nil, nil, err
	}
	s := &store{path: path, snapSize: int64(len(snap)), rev: d.Revision}
	if snap == nil {
		return s, d, nil
	}
	good, whole, err := replayLog(logPath(path), snap, d)
	switch {
	case err != nil && !errors.Is(err, os.ErrNotExist):
		log.Warn("the saved desired state's log is unusable; keeping the state before it, and the servers send what followed",
			"log", logPath(path), "revision", d.Revision, "err", err)
	case err == nil && !whole:
		log.Warn("the saved desired state's log ends in a torn or corrupt record (a crash while saving); keeping the state up to it, and the servers send what followed",
			"log", logPath(path), "valid_bytes", good, "revision", d.Revision)
	case err == nil:
		f, err := os.OpenFile(logPath(path), os.O_WRONLY|os.O_APPEND, 0o600)
		if err == nil {
			s.log, s.logSize = f, good
		}
	}
	s.rev = d.Revision
	return s, d, nil
}

// loadSnapshot reads the snapshot file; a missing one is an empty state
// (and nil bytes).
func loadSnapshot(path string) (*model.Desired, []byte, error) {
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return model.NewDesired(), nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load desired state: %w", err)
	}
	ev := &sdnv1.WatchEvent{}
	if err := proto.Unmarshal(raw, ev); err != nil {
		return nil, nil, fmt.Errorf("load desired state %s: %w (remove the file to resync from the servers)", path, err)
	}
	d := model.NewDesired()
	d.Apply(ev.Changes, ev.Revision)
	d.ClusterID = ev.ClusterId
	return d, raw, nil
}

// replayLog applies the log's whole records to d. It returns how many
// bytes were valid and whether the log was whole (no torn or corrupt
// record); an error means the log is not this snapshot's, or unreadable.
func replayLog(path string, snap []byte, d *model.Desired) (good int64, whole bool, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, false, err
	}
	sum := sha256.Sum256(snap)
	head := append([]byte(logMagic), sum[:]...)
	if !bytes.HasPrefix(raw, head) {
		return 0, false, errors.New("its header does not name the snapshot beside it (left by a crash between saves)")
	}
	off := len(head)
	for off < len(raw) {
		if len(raw)-off < 8 {
			return int64(off), false, nil
		}
		n := int(binary.LittleEndian.Uint32(raw[off:]))
		crc := binary.LittleEndian.Uint32(raw[off+4:])
		if n > len(raw)-off-8 || crc32.Checksum(raw[off+8:off+8+n], crcTable) != crc {
			return int64(off), false, nil
		}
		ev := &sdnv1.WatchEvent{}
		if err := proto.Unmarshal(raw[off+8:off+8+n], ev); err != nil {
			return int64(off), false, nil
		}
		applyLogged(d, ev)
		off += 8 + n
	}
	return int64(off), true, nil
}

// applyLogged applies one logged watch event to d.
func applyLogged(d *model.Desired, ev *sdnv1.WatchEvent) {
	if ev.Revision <= d.Revision {
		return
	}
	if ev.Type == sdnv1.WatchEventType_WATCH_EVENT_TYPE_DELTA {
		d.Apply(ev.Changes, ev.Revision)
	} else {
		d.Revision = ev.Revision
	}
	if ev.ClusterId != "" {
		d.ClusterID = ev.ClusterId
	}
}

// save makes the files hold d, whose changes since the last save are
// events: appended to the log when it is usable and they account for d's
// revision, else d written whole (as after a full snapshot from the
// servers, or a failed save).
func (s *store) save(d *model.Desired, events []*sdnv1.WatchEvent, whole bool) error {
	end := s.rev
	for _, ev := range events {
		end = max(end, ev.Revision)
	}
	if whole || s.log == nil || end != d.Revision || s.logSize > max(s.snapSize, logCompactAt) {
		return s.snapshot(d)
	}
	if len(events) == 0 {
		return nil
	}
	if err := s.append(events); err != nil {
		s.closeLog() // the next save rewrites the whole state
		return err
	}
	s.rev = d.Revision
	return nil
}

// append writes events as log records in one write, then fsyncs.
func (s *store) append(events []*sdnv1.WatchEvent) error {
	var buf []byte
	for _, ev := range events {
		raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
		if err != nil {
			return fmt.Errorf("save desired state: %w", err)
		}
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(raw)))
		buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(raw, crcTable))
		buf = append(buf, raw...)
	}
	if _, err := s.log.Write(buf); err != nil {
		return fmt.Errorf("save desired state: append to %s: %w", s.log.Name(), err)
	}
	if err := s.log.Sync(); err != nil {
		return fmt.Errorf("save desired state: sync %s: %w", s.log.Name(), err)
	}
	s.logSize += int64(len(buf))
	return nil
}

// snapshot writes d whole, then starts an empty log that names it.
func (s *store) snapshot(d *model.Desired) error {
	s.closeLog()
	raw, err := marshalSnapshot(d)
	if err != nil {
		return err
	}
	if err := writeAtomic(s.path, raw); err != nil {
		return fmt.Errorf("save desired state: %w", err)
	}
	s.snapSize, s.rev = int64(len(raw)), d.Revision
	sum := sha256.Sum256(raw)
	head := append([]byte(logMagic), sum[:]...)
	if err := writeAtomic(logPath(s.path), head); err != nil {
		return fmt.Errorf("save desired state: start the log: %w", err)
	}
	f, err := os.OpenFile(logPath(s.path), os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("save desired state: open the log: %w", err)
	}
	s.log, s.logSize = f, int64(len(head))
	return nil
}

func (s *store) closeLog() {
	if s.log != nil {
		_ = s.log.Close()
		s.log = nil
	}
}

// marshalSnapshot renders d as one snapshot watch event, the format the
// servers send.
func marshalSnapshot(d *model.Desired) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(&sdnv1.WatchEvent{
		Type: sdnv1.WatchEventType_WATCH_EVENT_TYPE_SNAPSHOT, Revision: d.Revision, Changes: d.Changes(), SnapshotDone: true, ClusterId: d.ClusterID,
	})
}

// writeAtomic writes raw to path through a temporary file (fsync, rename,
// fsync of the directory).
func writeAtomic(path string, raw []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(raw)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
