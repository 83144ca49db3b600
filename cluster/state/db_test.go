package state

import (
	"bytes"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func openWith(t *testing.T, networks ...string) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	err = db.Update(func(tx *Tx) error {
		for _, n := range networks {
			if err := tx.PutNetwork(&sdnv1.Network{Name: n}); err != nil {
				return err
			}
			if _, err := tx.Commit(nil); err != nil {
				return err
			}
		}
		return tx.SetAppliedIndex(uint64(10 * len(networks)))
	})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestReplaceUnderReads swaps the file while readers run: none fails, each
// sees the old state or the new one whole, and afterwards only the new.
func TestReplaceUnderReads(t *testing.T) {
	db := openWith(t, "a", "b")
	img := openWith(t, "x", "y", "z")
	var buf bytes.Buffer
	if _, err := img.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				err := db.View(func(tx *Tx) error {
					var names string
					for _, n := range tx.Networks() {
						names += n.Name
					}
					if names != "ab" && names != "xyz" {
						t.Errorf("a read saw networks %q", names)
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := 0; i < 5; i++ {
		if err := db.Replace(bytes.NewReader(buf.Bytes()), Options{}); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a read during Replace failed: %v", err)
	}
	db.View(func(tx *Tx) error {
		if m := tx.Meta(); m.Revision != 3 || m.AppliedIndex != 30 || len(tx.Networks()) != 3 {
			t.Fatalf("after Replace: %+v, %d networks", m, len(tx.Networks()))
		}
		return nil
	})
	if err := db.Replace(bytes.NewReader([]byte("not a store")), Options{}); err == nil {
		t.Fatal("Replace with junk succeeded")
	}
	if err := db.Check(); err != nil {
		t.Fatalf("the state after a refused Replace: %v", err)
	}
}

// TestRebase: the revision jumps, history goes, compaction is marked, the
// applied index is set, objects stay.
func TestRebase(t *testing.T) {
	db := openWith(t, "a", "b")
	if err := db.Update(func(tx *Tx) error { return tx.Rebase(1, 5) }); err == nil {
		t.Fatal("rebase below the revision succeeded")
	}
	if err := db.Update(func(tx *Tx) error { return tx.Rebase(1000, 7) }); err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		m := tx.Meta()
		if m.Revision != 1000 || m.Compacted != 1000 || m.AppliedIndex != 7 || len(tx.Networks()) != 2 {
			t.Fatalf("after rebase: %+v", m)
		}
		n := 0
		tx.ChangesAfter(0, func(*sdnv1.WatchEvent) bool { n++; return true })
		if n != 0 {
			t.Fatalf("%d history records kept", n)
		}
		if tx.Empty() {
			t.Fatal("a state with networks is Empty")
		}
		return nil
	})
	if rev, err := func() (uint64, error) {
		var r uint64
		err := db.Update(func(tx *Tx) error { var err error; r, err = tx.Commit(nil); return err })
		return r, err
	}(); err != nil || rev != 1001 {
		t.Fatalf("the next commit: %d %v", rev, err)
	}
}
