package state

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketMeta      = []byte("meta")
	bucketSettings  = []byte("settings")
	bucketNetworks  = []byte("networks")
	bucketNodes     = []byte("nodes")
	bucketWorkloads = []byte("workloads")
	bucketChanges   = []byte("changes")
	// Schema 3: policies by model.PolicyKey, and the address groups the
	// FSM derives from them, by name.
	bucketPolicies = []byte("policies")
	bucketGroups   = []byte("addressgroups")
	// Schema 4: services by model.ServiceKey, and the endpoints the FSM
	// derives for them, by the same key.
	bucketServices  = []byte("services")
	bucketEndpoints = []byte("serviceendpoints")

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

var allBuckets = append(slices.Clip(schema2Buckets), bucketPolicies, bucketGroups, bucketServices, bucketEndpoints)

// schema2Buckets are the buckets of schema 2 (what addChecksums rewrites).
var schema2Buckets = [][]byte{bucketMeta, bucketSettings, bucketNetworks, bucketNodes, bucketWorkloads, bucketChanges}

// DB is an open state file. Replace swaps the file underneath while reads
// go on: they run on whichever file is current when they start.
type DB struct {
	b    atomic.Pointer[bolt.DB]
	path string
	// damaged is set once a transaction found the file damaged: from then
	// on nothing is read from it or written to it.
	damaged  atomic.Pointer[CorruptError]
	onDamage func(*CorruptError)
}

// Options tune how the file is opened.
type Options struct {
	// NoSync skips fsync on commit; safe only when the raft log can replay
	// every entry after the stored applied index.
	NoSync bool
	// OnDamage, when set, is called (once, from the transaction that found
	// it) when the open file turns out to be damaged.
	OnDamage func(*CorruptError)
}

// Open opens or creates the state file at path and migrates it to
// SchemaVersion, then checks all of it: bbolt's structure, every record's
// checksum, every bucket's seal. A file written by a newer schema is
// refused; a damaged one is refused with a *CorruptError.
func Open(path string, opts Options) (*DB, error) {
	b, err := openBolt(path, opts)
	if err != nil {
		return nil, err
	}
	db := &DB{path: path, onDamage: opts.OnDamage}
	db.b.Store(b)
	err = db.migrate()
	if err == nil {
		err = db.verifyAll()
	}
	if err != nil {
		b.Close()
		var ce *CorruptError
		if errors.As(err, &ce) {
			return nil, ce // it names the file
		}
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	return db, nil
}

// openBolt opens the bbolt file; bbolt panicking on a damaged file (or
// faulting on a page beyond it) is a *CorruptError.
func openBolt(path string, opts Options) (b *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			b, err = nil, &CorruptError{Path: path, Detail: fmt.Sprintf("bbolt panicked opening it: %v", v)}
		}
	}()
	b, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, NoSync: opts.NoSync})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open state %s: locked by another process (is another sdnd using this data dir?)", path)
		}
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	return b, nil
}

// verifyAll checks the whole file: the records and seals first (reading
// every page of the tree on this goroutine, where a fault is a panic),
// then bbolt's own structure check (pages reachable once, free pages
// unreachable, keys in order).
func (db *DB) verifyAll() error {
	return db.view(func(t *Tx) error {
		if err := t.verify(); err != nil {
			return err
		}
		if err := structureErrors(t.tx); err != nil {
			return t.corruptErr(nil, nil, "bbolt's structure check: "+err.Error())
		}
		return nil
	})
}

// Path is the file's location.
func (db *DB) Path() string { return db.path }

// Close closes the file.
func (db *DB) Close() error { return db.b.Load().Close() }

// Sync flushes every committed transaction to disk (fdatasync): with
// NoSync, commits reach the page cache only.
func (db *DB) Sync() error { return db.current(func(b *bolt.DB) error { return b.Sync() }) }

// Damaged returns the damage a transaction found in the open file, nil
// while none was found.
func (db *DB) Damaged() *CorruptError { return db.damaged.Load() }

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

// View runs fn in a read-only transaction. A damaged file (found now or
// before) makes it return a *DamagedError.
func (db *DB) View(fn func(*Tx) error) error { return db.guard(func() error { return db.view(fn) }) }

// Update runs fn in a read-write transaction, committed when fn returns
// nil. A damaged file (found now or before) makes it return a
// *DamagedError, and nothing is written.
func (db *DB) Update(fn func(*Tx) error) error {
	return db.guard(func() error { return db.update(fn) })
}

// guard runs a transaction unless the file was found damaged, and notes
// damage the transaction finds.
func (db *DB) guard(run func() error) error {
	if d := db.damaged.Load(); d != nil {
		return &DamagedError{d}
	}
	err := run()
	var ce *CorruptError
	if errors.As(err, &ce) {
		if db.damaged.CompareAndSwap(nil, ce) && db.onDamage != nil {
			db.onDamage(ce)
		}
		return &DamagedError{ce}
	}
	return err
}

// view and update run a transaction on the current file, returning the
// damage it found as a *CorruptError (a Tx method that found it panics
// with it; bbolt panicking, or faulting on a page beyond the file, is
// damage too).
func (db *DB) view(fn func(*Tx) error) error {
	return db.current(func(b *bolt.DB) error {
		return db.recovered(func() error {
			return b.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx, db: db}) })
		})
	})
}

func (db *DB) update(fn func(*Tx) error) error {
	return db.current(func(b *bolt.DB) error {
		return db.recovered(func() error {
			return b.Update(func(tx *bolt.Tx) error {
				t := &Tx{tx: tx, db: db}
				if err := fn(t); err != nil {
					return err
				}
				return t.flushSeals()
			})
		})
	})
}

func (db *DB) recovered(run func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			ce := damageFrom(db.path, v)
			if ce == nil {
				panic(v)
			}
			err = ce
		}
	}()
	return run()
}

// WriteTo writes a consistent copy of the whole file (a bbolt image: raft
// snapshots).
func (db *DB) WriteTo(w io.Writer) (int64, error) { return db.WriteImage(w, nil) }

// WriteImage writes a consistent copy of the whole file to w (a bbolt
// image), after fn (when not nil) has read the very state the copy holds.
// Every record and seal is checked first, in the same transaction: a
// damaged file is never copied (*DamagedError).
func (db *DB) WriteImage(w io.Writer, fn func(*Tx) error) (int64, error) {
	var n int64
	err := db.View(func(t *Tx) error {
		if err := t.verify(); err != nil {
			return err
		}
		if fn != nil {
			if err := fn(t); err != nil {
				return err
			}
		}
		var err error
		n, err = t.tx.WriteTo(w)
		return err
	})
	return n, err
}

// Replace swaps the file for the bbolt image read from r (a raft snapshot)
// atomically: the image is written beside the file, synced and checked to be
// a store this code can read, whole (Open: older schemas are migrated, every
// record and seal checked), then renamed over the file. Reads in progress finish on the old file; later ones see the new
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
	check, err := Open(tmp, Options{NoSync: opts.NoSync})
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
	// The new file was checked whole: damage found in the old one is gone.
	db.damaged.Store(nil)
	if err := old.Close(); err != nil {
		return fmt.Errorf("restore state: close the replaced file: %w", err)
	}
	return nil
}

// Check checks the whole file as Open does: every record against its
// checksum, every bucket against its seal, then bbolt's structure (every
// page reachable once, free pages not in use). It must not run while
// another transaction writes (bbolt's check reads the freelist).
func (db *DB) Check() error { return db.verifyAll() }

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
	return db.update(func(t *Tx) error { return t.putSchema(v) })
}
