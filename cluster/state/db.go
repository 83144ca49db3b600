package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the layout this code reads and writes. Bump it together
// with a migration in migrations.
const SchemaVersion = 1

var (
	bucketMeta      = []byte("meta")
	bucketSettings  = []byte("settings")
	bucketNetworks  = []byte("networks")
	bucketNodes     = []byte("nodes")
	bucketWorkloads = []byte("workloads")
	bucketChanges   = []byte("changes")

	keySchema    = []byte("schema")
	keyApplied   = []byte("applied_index")
	keyRevision  = []byte("revision")
	keyCompacted = []byte("compacted")
	keyClusterID = []byte("cluster_id")
	keyCluster   = []byte("cluster")
	keyCursorPfx = "cursor/"
	// revoked certificates live in the meta bucket too, by serial: no
	// schema change, and they travel with snapshots.
	keyRevokedPfx = "revoked/"
)

var allBuckets = [][]byte{bucketMeta, bucketSettings, bucketNetworks, bucketNodes, bucketWorkloads, bucketChanges}

// migration upgrades a store from version from to from+1 inside tx.
type migration func(tx *bolt.Tx) error

// migrations[v] upgrades schema v to v+1. Version 0 is a new, empty file.
var migrations = map[uint32]migration{
	0: func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
}

// DB is an open state file. Replace swaps the file underneath while reads
// go on: they run on whichever file is current when they start.
type DB struct {
	b    atomic.Pointer[bolt.DB]
	path string
}

// Options tune how the file is opened.
type Options struct {
	// NoSync skips fsync on commit; safe only when the raft log can replay
	// every entry after the stored applied index.
	NoSync bool
}

// Open opens or creates the state file at path and migrates it to
// SchemaVersion. A file written by a newer schema is refused.
func Open(path string, opts Options) (*DB, error) {
	b, err := openBolt(path, opts)
	if err != nil {
		return nil, err
	}
	db := &DB{path: path}
	db.b.Store(b)
	if err := db.migrate(); err != nil {
		b.Close()
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	return db, nil
}

func openBolt(path string, opts Options) (*bolt.DB, error) {
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, NoSync: opts.NoSync})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open state %s: locked by another process (is another sdnd using this data dir?)", path)
		}
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	return b, nil
}

func (db *DB) migrate() error {
	return db.b.Load().Update(func(tx *bolt.Tx) error {
		v := uint32(0)
		if m := tx.Bucket(bucketMeta); m != nil {
			if raw := m.Get(keySchema); len(raw) == 4 {
				v = binary.BigEndian.Uint32(raw)
			}
		}
		if v > SchemaVersion {
			return fmt.Errorf("written by a newer sdnd (schema %d, this one reads up to %d); run the newer sdnd or restore a snapshot", v, SchemaVersion)
		}
		for ; v < SchemaVersion; v++ {
			m, ok := migrations[v]
			if !ok {
				return fmt.Errorf("no migration from schema %d", v)
			}
			if err := m(tx); err != nil {
				return fmt.Errorf("migrate schema %d to %d: %w", v, v+1, err)
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, SchemaVersion))
	})
}

// Path is the file's location.
func (db *DB) Path() string { return db.path }

// Close closes the file.
func (db *DB) Close() error { return db.b.Load().Close() }

// Sync flushes every committed transaction to disk (fdatasync): with
// NoSync, commits reach the page cache only.
func (db *DB) Sync() error { return db.current(func(b *bolt.DB) error { return b.Sync() }) }

// current runs fn on the current bbolt file. A transaction that could not
// begin because Replace closed that file meanwhile runs on the new one.
func (db *DB) current(fn func(*bolt.DB) error) error {
	for {
		b := db.b.Load()
		err := fn(b)
		if errors.Is(err, bolt.ErrDatabaseNotOpen) && db.b.Load() != b {
			continue
		}
		return err
	}
}

// View runs fn in a read-only transaction.
func (db *DB) View(fn func(*Tx) error) error {
	return db.current(func(b *bolt.DB) error {
		return b.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
	})
}

// Update runs fn in a read-write transaction, committed when fn returns nil.
func (db *DB) Update(fn func(*Tx) error) error {
	return db.current(func(b *bolt.DB) error {
		return b.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
	})
}

// WriteTo writes a consistent copy of the whole file (a bbolt image: raft
// snapshots).
func (db *DB) WriteTo(w io.Writer) (int64, error) { return db.WriteImage(w, nil) }

// WriteImage writes a consistent copy of the whole file to w (a bbolt
// image), after fn (when not nil) has read the very state the copy holds.
func (db *DB) WriteImage(w io.Writer, fn func(*Tx) error) (int64, error) {
	var n int64
	err := db.current(func(b *bolt.DB) error {
		return b.View(func(tx *bolt.Tx) error {
			if fn != nil {
				if err := fn(&Tx{tx: tx}); err != nil {
					return err
				}
			}
			var err error
			n, err = tx.WriteTo(w)
			return err
		})
	})
	return n, err
}

// Replace swaps the file for the bbolt image read from r (a raft snapshot)
// atomically: the image is written beside the file, synced and checked to be
// a store this code can read (older schemas are migrated), then renamed over
// the file. Reads in progress finish on the old file; later ones see the new
// one. A crash at any point leaves either the old file or the new one.
func (db *DB) Replace(r io.Reader, opts Options) error {
	tmp := db.path + ".restore"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("restore state: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("restore state: copy snapshot: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("restore state: %w", err)
	}
	f.Close()
	check, err := Open(tmp, opts)
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restore state: snapshot is not a readable store: %w", err)
	}
	if err := check.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restore state: %w", err)
	}
	// The old file stays open (its readers finish on it) while the new one
	// takes its name; its lock is on the old inode, so the new file opens.
	if err := os.Rename(tmp, db.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restore state: %w", err)
	}
	if err := syncDir(filepath.Dir(db.path)); err != nil {
		return fmt.Errorf("restore state: %w", err)
	}
	nb, err := openBolt(db.path, opts)
	if err != nil {
		return fmt.Errorf("restore state: reopen: %w", err)
	}
	old := db.b.Swap(nb)
	if err := old.Close(); err != nil {
		return fmt.Errorf("restore state: close the replaced file: %w", err)
	}
	return nil
}

// Check verifies the file's structure (bbolt's consistency check: every
// page reachable once, free pages not in use).
func (db *DB) Check() error {
	return db.current(func(b *bolt.DB) error {
		return b.View(func(tx *bolt.Tx) error {
			var errs []error
			for err := range tx.Check() {
				errs = append(errs, err)
			}
			return errors.Join(errs...)
		})
	})
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ForceSchema overwrites the stored schema version. Tests use it to stand in
// for a file written by another release.
func (db *DB) ForceSchema(v uint32) error {
	return db.b.Load().Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, v))
	})
}
