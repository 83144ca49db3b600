package state

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// CorruptError says the state file is damaged: a record that fails its
// checksum, a bucket short of its seal, a bbolt structure that does not
// hold together, or bbolt panicking on it. Nothing read from such a file is
// served: a DB that found it returns it from every later View and Update
// (see DB.Damaged), and a file found so at open is not opened.
type CorruptError struct {
	// Path is the state file.
	Path string
	// Bucket and Key name the record at fault (Key empty: the bucket, or
	// both empty: the file).
	Bucket, Key string
	// Detail is what is wrong.
	Detail string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("state file %s is damaged: %s", e.Path, e.Fault())
}

// Fault says what is damaged, without the file's name: the record or
// bucket at fault and what is wrong with it.
func (e *CorruptError) Fault() string {
	switch {
	case e.Bucket != "" && e.Key != "":
		return fmt.Sprintf("record %s of bucket %s %s", quoteKey(e.Key), e.Bucket, e.Detail)
	case e.Bucket != "":
		return fmt.Sprintf("bucket %s: %s", e.Bucket, e.Detail)
	}
	return e.Detail
}

// quoteKey renders a key: quoted text, or hex when it is not printable
// (the history's keys are big-endian revisions).
func quoteKey(k string) string {
	for _, r := range k {
		if r < 0x20 || r > 0x7e {
			return fmt.Sprintf("%x", k)
		}
	}
	return strconv.Quote(k)
}

// DamagedError is what a DB returns once it found its file damaged while
// open: the damage and what to do about it.
type DamagedError struct{ *CorruptError }

func (e *DamagedError) Error() string {
	return e.CorruptError.Error() + "; this server reads and writes the file no more: restart sdnd, which sets a damaged state file aside (" +
		"state.db.untrusted) and rebuilds it from the raft snapshot and log"
}

func (e *DamagedError) Unwrap() error { return e.CorruptError }

// corruptPanic carries a CorruptError out of a Tx method (whose
// signatures have no error) to DB.View and DB.Update.
type corruptPanic struct{ err *CorruptError }

// corruptErr describes damage found in this transaction.
func (t *Tx) corruptErr(bucket, key []byte, detail string) *CorruptError {
	path := ""
	if t.db != nil {
		path = t.db.path
	}
	return &CorruptError{Path: path, Bucket: string(bucket), Key: string(key), Detail: detail}
}

// corrupt ends the transaction with damage found in it.
func (t *Tx) corrupt(bucket, key []byte, detail string) {
	panic(corruptPanic{t.corruptErr(bucket, key, detail)})
}

// damageFrom turns a value recovered from a panic in a transaction into a
// CorruptError: one a Tx method raised, or a panic (or, with
// debug.SetPanicOnFault, a memory fault) in bbolt, in this package's
// reading of what bbolt returned, or in the libraries it hands that to.
// Any other panic (a bug in a caller's function) is not damage: nil.
// Call it from the deferred function that recovered v.
func damageFrom(path string, v any) *CorruptError {
	if c, ok := v.(corruptPanic); ok {
		c.err.Path = path
		return c.err
	}
	if !panickedInStore() {
		return nil
	}
	return &CorruptError{Path: path, Detail: fmt.Sprintf("reading it panicked: %v", v)}
}

// panickedInStore reports whether the panic being recovered was raised in
// bbolt or this package: the first frame of the panicking stack outside
// the runtime and the libraries this package reads records with.
func panickedInStore() bool {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(1, pcs)])
	inPanic := false
	for {
		f, more := frames.Next()
		fn := f.Function
		switch {
		case !inPanic:
			inPanic = fn == "runtime.gopanic"
		case strings.HasPrefix(fn, "runtime."), strings.HasPrefix(fn, "hash/crc32."), strings.HasPrefix(fn, "encoding/binary."),
			strings.HasPrefix(fn, "google.golang.org/protobuf/"), strings.HasPrefix(fn, "bytes."), strings.HasPrefix(fn, "strings."):
		default:
			return strings.HasPrefix(fn, "go.etcd.io/bbolt") || storeFunc(fn)
		}
		if !more {
			return false
		}
	}
}

const thisPackage = "github.com/sdn-dev/sdn/cluster/state"

// storeFunc reports whether fn is this package's code reading or writing
// the file: a Tx or DB method, or a record helper (not a function of a
// caller, nor a test's).
func storeFunc(fn string) bool {
	name, ok := strings.CutPrefix(fn, thisPackage+".")
	if !ok {
		return false
	}
	for _, p := range []string{"(*Tx).", "(*DB).", "get[", "put", "list[", "checkRecord", "recordSum", "encodeRecord", "addChecksums", "structureErrors"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// structureErrors runs bbolt's consistency check (every page reachable
// once, free pages unreachable, keys in order) and returns its first few
// findings.
func structureErrors(tx *bolt.Tx) error {
	if err := overflowsPastEnd(tx); err != nil {
		return err
	}
	var errs []error
	n := 0
	for err := range tx.Check() {
		n++
		if len(errs) < 3 {
			errs = append(errs, err)
		}
	}
	if n > len(errs) {
		errs = append(errs, fmt.Errorf("and %d more", n-len(errs)))
	}
	return errors.Join(errs...)
}

// overflowsPastEnd finds a page in use whose header claims more overflow
// pages than the file holds after it. bbolt's check marks every page of
// every reachable run, one map entry each: a header whose overflow count
// was damaged into the billions made it run for minutes, growing without
// bound, instead of reporting anything. The walk goes through the page
// ids in order: a free page is one id (the freelist lists every page of a
// freed run), a page in use starts a run of 1 + its overflow ids.
func overflowsPastEnd(tx *bolt.Tx) error {
	for id := 0; ; {
		info, err := tx.Page(id)
		if err != nil || info == nil {
			return nil // the free pages are not known, or past the high-water mark
		}
		if info.Type == "free" {
			id++
			continue
		}
		next := id + 1 + info.OverflowCount
		if end, err := tx.Page(next - 1); err == nil && end == nil {
			return fmt.Errorf("page %d (%s) claims %d overflow pages, past the end of the file's pages", id, info.Type, info.OverflowCount)
		}
		id = next
	}
}
