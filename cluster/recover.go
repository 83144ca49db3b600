package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/sdn-dev/sdn/cluster/fsm"
	"github.com/sdn-dev/sdn/cluster/state"
)

// The state file (state.db) is written without fsync: the raft log, fsynced
// once per batch of entries, is the record, and the state file a cache of
// it that replays from its stored applied index. docs/design.md ("Durability
// of the state file") has the whole argument; in short:
//
//   - A process that dies (SIGKILL, panic, OOM) loses nothing: the kernel's
//     page cache holds every committed bbolt transaction, and the raft log
//     holds every entry after the newest raft snapshot, so whatever the file
//     lacks is replayed.
//   - A machine that loses power may leave the file torn in ways bbolt
//     cannot detect (a new meta page over stale data pages). So before the
//     first unsynced write, stateMarker is written and fsynced holding the
//     kernel's boot id, and removed after a clean close's fsync. A marker
//     from another boot means writes may have been lost: the file is set
//     aside and rebuilt from the newest raft snapshot and the log.
//   - raft starts applying after its newest snapshot, so a state file
//     behind that snapshot (rebuilt, deleted, unreadable) is restored from
//     it when raft starts (Server.start).
//   - FSM.Snapshot fsyncs the file before raft may compact the log: the file
//     on disk is never behind the log's first entry.
const (
	stateFile   = "state.db"
	stateMarker = "state.db.unsynced"
	// stateAside is where an untrusted state file is moved before it is
	// rebuilt (one kept, for a post-mortem).
	stateAside = "state.db.untrusted"
)

// bootID returns an id of the running kernel's boot. Tests replace it to
// stand in for a reboot.
var bootID = func() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", errors.New("empty boot id")
	}
	return id, nil
}

// openState opens the FSM of a server whose data is in dir, publishing its
// revisions to hub: without fsync on apply unless syncEvery is set (or the
// boot id cannot be read), and set aside (to be rebuilt) when it cannot be
// trusted. It reports whether the file is written without fsync. onDamage
// hears of damage found in the file once it is open (stateDamaged).
func openState(dir string, syncEvery bool, hub *Hub, log *slog.Logger, onDamage func(*state.CorruptError)) (*fsm.FSM, bool, error) {
	path := filepath.Join(dir, stateFile)
	marker := filepath.Join(dir, stateMarker)
	boot, err := bootID()
	noSync := !syncEvery && err == nil
	if err != nil && !syncEvery {
		log.Warn("cannot read the kernel's boot id; the state file is fsynced on every apply instead", "error", err)
	}
	prev, err := os.ReadFile(marker)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, false, fmt.Errorf("read %s: %w", marker, err)
	case strings.TrimSpace(string(prev)) != boot:
		reason := fmt.Sprintf("the machine restarted (boot %s, now %s) while the file had writes not yet synced to disk", strings.TrimSpace(string(prev)), boot)
		if err := setStateAside(dir, reason, log); err != nil {
			return nil, false, err
		}
	}
	if noSync {
		if err := writeSynced(marker, boot+"\n"); err != nil && !noSpace(err) {
			return nil, false, fmt.Errorf("write %s: %w", marker, err)
		} else if err != nil {
			// A full disk (diskalarm.go): without its marker the file
			// is fsynced on every apply instead, and what it holds is
			// synced below, as when an earlier process wrote without.
			log.Warn("no space for the state file's marker; the state file is fsynced on every apply instead", "file", marker, "error", err)
			noSync = false
		}
	}
	opts := state.Options{NoSync: noSync, OnDamage: onDamage}
	f, err := tryOpenFSM(path, opts, hub, log)
	if err != nil && damaged(err) {
		if err := setStateAside(dir, err.Error(), log); err != nil {
			return nil, false, err
		}
		f, err = fsm.OpenFSM(path, opts, hub, log)
	}
	if err != nil {
		return nil, false, err
	}
	if !noSync {
		// An earlier process wrote without fsync; this one syncs, so the
		// file is whole on disk from now on.
		if _, err := os.Stat(marker); err == nil {
			if err := f.Sync(); err != nil {
				f.Close()
				return nil, false, fmt.Errorf("sync state: %w", err)
			}
			if err := removeSynced(marker); err != nil {
				f.Close()
				return nil, false, err
			}
		}
	}
	return f, noSync, nil
}

// closeState fsyncs and closes the state file, then removes the marker: a
// file closed this way is whole on disk and trusted after any restart.
func closeState(f *fsm.FSM, dir string, noSync bool) error {
	if !noSync {
		return f.Close()
	}
	if err := f.Sync(); err != nil {
		return errors.Join(fmt.Errorf("sync state: %w", err), f.Close())
	}
	if err := f.Close(); err != nil {
		return err
	}
	return removeSynced(filepath.Join(dir, stateMarker))
}

// damagedError is a panic while opening the state file.
type damagedError struct{ v any }

func (e damagedError) Error() string { return fmt.Sprintf("reading the state file panicked: %v", e.v) }

// tryOpenFSM is OpenFSM with a panic (bbolt on a corrupt page, a record
// that does not decode) turned into a damagedError.
func tryOpenFSM(path string, opts state.Options, hub *Hub, log *slog.Logger) (f *fsm.FSM, err error) {
	defer func() {
		if v := recover(); v != nil {
			f, err = nil, damagedError{v}
		}
	}()
	return fsm.OpenFSM(path, opts, hub, log)
}

// damaged reports whether err from opening the state file means the file
// itself is unreadable or damaged (rather than locked, of a newer schema, or
// not permitted), so rebuilding it from the raft snapshot and log is the
// cure. A record that fails its checksum, a bucket short of its seal, a
// bbolt structure that does not hold together (state.CorruptError) is
// damage: nothing of such a file is served, it is rebuilt.
func damaged(err error) bool {
	var d damagedError
	var c *state.CorruptError
	return errors.As(err, &d) || errors.As(err, &c) || errors.Is(err, bolt.ErrInvalid) || errors.Is(err, bolt.ErrChecksum) ||
		errors.Is(err, bolt.ErrVersionMismatch) || strings.Contains(err.Error(), "file size too small")
}

// stateDamaged is what a server does when its open state file turns out to
// be damaged (a record failing its checksum on a read, an image that would
// copy damage): the file already refuses every read and write
// (state.DamagedError), so nothing of it is served; the server says so and
// asks its process to stop (Server.StateDamaged). Started again, it finds
// the damage when it opens the file, sets the file aside and rebuilds it
// from the raft snapshot and log (openState). docs/design.md, "Durability
// of the state file", says why it stops rather than rebuild while running.
func stateDamaged(ch chan<- error, log *slog.Logger) func(*state.CorruptError) {
	return func(ce *state.CorruptError) {
		log.Error("the state file is damaged: this server serves nothing from it and stops; start sdnd again: it sets the file aside ("+stateAside+
			") and rebuilds it from the raft snapshot and log", "err", ce.Error())
		select {
		case ch <- &state.DamagedError{CorruptError: ce}:
		default:
		}
	}
}

// setStateAside moves an untrusted state file out of the way (replacing an
// earlier one set aside), so a new one is rebuilt from raft.
func setStateAside(dir, reason string, log *slog.Logger) error {
	path, aside := filepath.Join(dir, stateFile), filepath.Join(dir, stateAside)
	err := os.Rename(path, aside)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("set aside the untrusted state file %s (%s): %w", path, reason, err)
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	log.Warn("state file not trusted: set aside; rebuilding it from the raft snapshot and log", "reason", reason, "moved_to", aside)
	return nil
}

// writeSynced writes a small file and makes it and its name durable.
func writeSynced(path, content string) error {
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := fh.WriteString(content); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Close(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// removeSynced removes a file, durably.
func removeSynced(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
