package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// fill gives a store networks (one labelled owner=i4242), nodes, enough
// workloads for their bucket to span pages, history and a compaction.
func fill(t *testing.T, db *DB) {
	t.Helper()
	err := db.Update(func(tx *Tx) error {
		for _, n := range []*sdnv1.Network{{Name: "web", Labels: map[string]string{"owner": "i4242"}, Vnid: 1}, {Name: "db", Vnid: 2}} {
			if err := tx.PutNetwork(n); err != nil {
				return err
			}
		}
		if err := tx.PutNode(&sdnv1.Node{Name: "h1", UnderlayIp: "198.18.0.1", UnderlayMtu: 1500}); err != nil {
			return err
		}
		for i := range 200 {
			w := &sdnv1.Workload{Name: "w" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Network: "web", Node: "h1", Labels: map[string]string{"idx": strings.Repeat("x", 10)}}
			if err := tx.PutWorkload(w); err != nil {
				return err
			}
			if _, err := tx.Commit([]*sdnv1.ObjectChange{{Workload: w}}); err != nil {
				return err
			}
		}
		if _, err := tx.Compact(50); err != nil {
			return err
		}
		if err := tx.PutRevoked(&sdnv1.RevokedCertificate{Serial: "5eed"}); err != nil {
			return err
		}
		if err := tx.SetCursor("vnids", 2); err != nil {
			return err
		}
		return tx.SetAppliedIndex(300)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func newFilled(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, db)
	return db, path
}

// replaceInFile replaces every occurrence of old by new (same length) in
// the file at path, as a hex editor would, and returns how many there were.
func replaceInFile(t *testing.T, path, old, new string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := bytes.Count(b, []byte(old))
	if n == 0 {
		t.Fatalf("%s does not hold %q", path, old)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(old))
		if j < 0 {
			return n
		}
		if _, err := f.WriteAt([]byte(new), int64(i+j)); err != nil {
			t.Fatal(err)
		}
		i += j + 1
	}
}

// TestChangedRecordIsRefusedAtOpen: one label byte changed in the file
// (the hostile tester's i4242 -> j4242) makes Open fail, naming the file,
// the bucket and the key, where it used to serve the changed label.
func TestChangedRecordIsRefusedAtOpen(t *testing.T) {
	db, path := newFilled(t)
	db.Close()
	replaceInFile(t, path, "i4242", "j4242")
	db, err := Open(path, Options{})
	if err == nil {
		var owner string
		db.View(func(tx *Tx) error { n, _ := tx.Network("web"); owner = n.GetLabels()["owner"]; return nil })
		db.Close()
		t.Fatalf("a state file with a changed record opened, serving owner=%s", owner)
	}
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Bucket != "networks" || ce.Key != "web" || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "fails its checksum") {
		t.Fatalf("opening a changed record: %v", err)
	}
	t.Log(err)
}

// TestDamageFoundWhileOpen: a record changed under an open store is
// refused on its first read; from then on every read and write is refused
// (nothing is served from the file, nothing written to it), and OnDamage
// hears of it once. An image of the file is refused too.
func TestDamageFoundWhileOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	var heard atomic.Int32
	db, err := Open(path, Options{OnDamage: func(*CorruptError) { heard.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fill(t, db)
	if _, err := db.WriteImage(io.Discard, nil); err != nil {
		t.Fatalf("image of a sound file: %v", err)
	}
	replaceInFile(t, path, "i4242", "j4242")

	var served *sdnv1.Network
	err = db.View(func(tx *Tx) error { served, _ = tx.Network("web"); return nil })
	var de *DamagedError
	if !errors.As(err, &de) || de.Bucket != "networks" || de.Key != "web" || !strings.Contains(err.Error(), "restart sdnd") {
		t.Fatalf("reading a changed record: %v (served %v)", err, served)
	}
	t.Log(err)
	if err := db.View(func(tx *Tx) error { tx.Nodes(); return nil }); !errors.As(err, &de) {
		t.Fatalf("a read after damage was found: %v", err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.SetAppliedIndex(301) }); !errors.As(err, &de) {
		t.Fatalf("a write after damage was found: %v", err)
	}
	if _, err := db.WriteImage(io.Discard, nil); !errors.As(err, &de) {
		t.Fatalf("an image after damage was found: %v", err)
	}
	if n := heard.Load(); n != 1 {
		t.Fatalf("OnDamage called %d times, want once", n)
	}
	if db.Damaged() == nil {
		t.Fatal("Damaged() is nil")
	}
}

// TestImageOfDamagedFileRefused: a snapshot (an image of the file) is not
// written from a file with a damaged record, even one no read touched yet.
func TestImageOfDamagedFileRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fill(t, db)
	replaceInFile(t, path, "198.18.0.1", "198.18.0.9")
	var buf bytes.Buffer
	if _, err := db.WriteImage(&buf, nil); err == nil || !strings.Contains(err.Error(), `record "h1" of bucket nodes`) {
		t.Fatalf("image of a damaged file: %v", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("%d bytes of a damaged file's image written", buf.Len())
	}
}

// TestMissingRecordFailsTheSeal: a record gone from the file (every other
// one sound) is found by its bucket's seal.
func TestMissingRecordFailsTheSeal(t *testing.T) {
	db, path := newFilled(t)
	db.Close()
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketWorkloads).Delete([]byte(model.WorkloadKey("web", "wkc")))
	})
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{})
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Bucket != "workloads" || !strings.Contains(err.Error(), "199 records") || !strings.Contains(err.Error(), "its seal says 200 records") {
		t.Fatalf("a file missing a record: %v", err)
	}
	t.Log(err)
}

// TestBrokenPageIsDamageNotACrash: a page bbolt panics on (its header's
// flags overwritten) makes Open fail with a CorruptError naming the file.
// damageRootPage fills a file, closes it and writes b into the page
// header of the workloads bucket's root page at offset off: id (8 bytes),
// flags (2), count (2), overflow (4).
func damageRootPage(t *testing.T, off int64, b []byte) string {
	t.Helper()
	db, path := newFilled(t)
	var root int64
	db.View(func(tx *Tx) error { root = int64(tx.tx.Bucket(bucketWorkloads).Root()); return nil })
	ps := int64(os.Getpagesize())
	db.Close()
	if root == 0 {
		t.Fatal("the workloads bucket is inline")
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, root*ps+off); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBrokenPageIsDamageNotACrash(t *testing.T) {
	path := damageRootPage(t, 8, []byte{0xff, 0xff}) // the flags
	_, err := Open(path, Options{})
	var ce *CorruptError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), path) {
		t.Fatalf("a file with a broken page: %v", err)
	}
	t.Log(err)
}

// TestHugeOverflowIsDamageNotAHang: a page header whose overflow count
// was damaged into the billions is reported at once. bbolt's structure
// check marked each of those pages reachable, one map entry each: sdnd
// neither served nor stopped (TestStateFileCorruption, case in-use-063).
func TestHugeOverflowIsDamageNotAHang(t *testing.T) {
	path := damageRootPage(t, 12, []byte{0x00, 0x00, 0x00, 0x72}) // the overflow count
	var err error
	done := make(chan error, 1)
	go func() {
		_, err := Open(path, Options{})
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("opening a file with a huge overflow count did not end in 30 s")
	}
	var ce *CorruptError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "overflow pages") {
		t.Fatalf("a file with a huge overflow count: %v", err)
	}
	t.Log(err)
}

// TestDamagedSchemaIsNotANewerOne: a schema record changed on disk (its
// meta seal no longer adds up) is damage, not a file of a newer sdnd; one
// written by a newer sdnd (seal intact) is refused as newer.
func TestDamagedSchemaIsNotANewerOne(t *testing.T) {
	db, path := newFilled(t)
	db.Close()
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, SchemaVersion+1))
	})
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{})
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Bucket != "meta" {
		t.Fatalf("a changed schema record: %v", err)
	}
	db2, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db2.ForceSchema(SchemaVersion + 1); err != nil {
		t.Fatal(err)
	}
	db2.Close()
	if _, err := Open(db2.Path(), Options{}); err == nil || errors.As(err, &ce) || !strings.Contains(err.Error(), "newer sdnd") {
		t.Fatalf("a newer schema: %v", err)
	}
}

// TestSchema1Migrates: a file of schema 1 (records without checksums)
// opens, serves what it held, and is a sound schema 2 file afterwards.
func TestSchema1Migrates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	web := &sdnv1.Network{Name: "web", Vnid: 7, Labels: map[string]string{"owner": "i4242"}, CreateRevision: 1, ModRevision: 1}
	ev := &sdnv1.WatchEvent{Type: sdnv1.WatchEventType_WATCH_EVENT_TYPE_DELTA, Revision: 1, Changes: []*sdnv1.ObjectChange{{Network: web}}}
	err = b.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		m := tx.Bucket(bucketMeta)
		for k, v := range map[string][]byte{
			"schema": binary.BigEndian.AppendUint32(nil, 1), "applied_index": binary.BigEndian.AppendUint64(nil, 9),
			"revision": binary.BigEndian.AppendUint64(nil, 1), "cluster_id": []byte("c-1"), "cursor/vnids": binary.BigEndian.AppendUint64(nil, 7),
		} {
			if err := m.Put([]byte(k), v); err != nil {
				return err
			}
		}
		raw, _ := proto.Marshal(web)
		if err := tx.Bucket(bucketNetworks).Put([]byte("web"), raw); err != nil {
			return err
		}
		raw, _ = proto.Marshal(ev)
		return tx.Bucket(bucketChanges).Put(binary.BigEndian.AppendUint64(nil, 1), raw)
	})
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // migrated, then opened as it is
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		db.View(func(tx *Tx) error {
			m := tx.Meta()
			n, _ := tx.Network("web")
			var evs []*sdnv1.WatchEvent
			tx.ChangesAfter(0, func(e *sdnv1.WatchEvent) bool { evs = append(evs, e); return true })
			if m.Schema != SchemaVersion || m.AppliedIndex != 9 || m.Revision != 1 || tx.ClusterID() != "c-1" || tx.Cursor("vnids") != 7 ||
				!proto.Equal(n, web) || len(evs) != 1 || !proto.Equal(evs[0], ev) {
				t.Fatalf("after migration: meta %+v, cluster %q, network %v, history %v", m, tx.ClusterID(), n, evs)
			}
			if p := tx.CheckContent(); len(p) != 0 {
				t.Fatalf("content: %v", p)
			}
			return nil
		})
		if err := db.Check(); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
}

// TestSealsFollowEveryWrite: puts, overwrites, deletes, history,
// compaction, rebase and revocations keep every seal right (the file
// checks whole and reopens); and the bare schema record stays readable by
// a schema 1 sdnd (4 bytes, refusing the file as newer).
func TestSealsFollowEveryWrite(t *testing.T) {
	db, path := newFilled(t)
	steps := []func(tx *Tx) error{
		func(tx *Tx) error { return tx.PutNetwork(&sdnv1.Network{Name: "web", Vnid: 1}) },
		func(tx *Tx) error { return tx.DeleteNetwork("db") },
		func(tx *Tx) error { return tx.DeleteNetwork("none") },
		func(tx *Tx) error { return tx.DeleteWorkload("web", "wkc") },
		func(tx *Tx) error { _, err := tx.Compact(120); return err },
		func(tx *Tx) error { return tx.PutCluster(&sdnv1.ClusterSettings{Cidr: "10.0.0.0/16"}) },
		func(tx *Tx) error { return tx.SetClusterID("c-2") },
		func(tx *Tx) error { return tx.DeleteNode("h1") },
		func(tx *Tx) error { return tx.Rebase(5000, 400) },
		func(tx *Tx) error { _, err := tx.Commit(nil); return err },
	}
	for i, step := range steps {
		if err := db.Update(step); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if err := db.Check(); err != nil {
			t.Fatalf("after step %d: %v", i, err)
		}
	}
	var before []string
	db.View(func(tx *Tx) error { before = tx.Dump(); return nil })
	db.Close()
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *Tx) error {
		if after := tx.Dump(); !slices.Equal(before, after) {
			t.Fatalf("reopened: %v, want %v", after, before)
		}
		if raw := tx.tx.Bucket(bucketMeta).Get(keySchema); len(raw) != 4 || binary.BigEndian.Uint32(raw) != SchemaVersion {
			t.Fatalf("the schema record is %x", raw)
		}
		return nil
	})
}

// TestContentChecks: a record under another key than its content names,
// and history from a revision the state has not reached, are reported.
func TestContentChecks(t *testing.T) {
	db, _ := newFilled(t)
	defer db.Close()
	err := db.Update(func(tx *Tx) error {
		if err := put(tx, bucketNetworks, "other", &sdnv1.Network{Name: "web"}); err != nil {
			return err
		}
		return put(tx, bucketChanges, string(binary.BigEndian.AppendUint64(nil, 9999)), &sdnv1.WatchEvent{Revision: 9999})
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		got := strings.Join(tx.CheckContent(), "\n")
		for _, want := range []string{`networks: the record under "other" names "web"`, "a record of revision 9999, outside the history's 51-200"} {
			if !strings.Contains(got, want) {
				t.Errorf("content problems lack %q:\n%s", want, got)
			}
		}
		return nil
	})
}

// TestCallersPanicIsNotDamage: a panic in the caller's function (a bug,
// not the file) goes on up, and the file stays in service.
func TestCallersPanicIsNotDamage(t *testing.T) {
	db, _ := newFilled(t)
	defer db.Close()
	func() {
		defer func() {
			if v := recover(); v != "a caller's bug" {
				t.Fatalf("recovered %v, want the caller's panic", v)
			}
		}()
		db.View(func(tx *Tx) error {
			tx.Networks()
			panic("a caller's bug")
		})
	}()
	if db.Damaged() != nil {
		t.Fatalf("a caller's panic marked the file damaged: %v", db.Damaged())
	}
	if err := db.View(func(tx *Tx) error { tx.Networks(); return nil }); err != nil {
		t.Fatal(err)
	}
}
