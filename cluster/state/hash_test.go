package state

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func hashOf(t testing.TB, db *DB) Hash {
	t.Helper()
	var h Hash
	if err := db.View(func(tx *Tx) error { h = tx.Hash(); return nil }); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestHash: two files holding the same records hash the same whatever
// their applied index; one record's byte changed, a record added, or one
// lost, and the hash differs.
func TestHash(t *testing.T) {
	a, b := openWith(t, "n1", "n2", "n3"), openWith(t, "n1", "n2", "n3")
	if err := b.Update(func(tx *Tx) error { return tx.SetAppliedIndex(99) }); err != nil {
		t.Fatal(err)
	}
	ha, hb := hashOf(t, a), hashOf(t, b)
	if ha.Sum != hb.Sum || ha.Revision != 3 || ha.Records == 0 || hb.AppliedIndex != 99 || ha.Schema != SchemaVersion {
		t.Fatalf("same records: %+v and %+v", ha, hb)
	}
	for name, edit := range map[string]func(tx *bolt.Tx) error{
		"a byte of a record": func(tx *bolt.Tx) error {
			v := append([]byte(nil), tx.Bucket(bucketNetworks).Get([]byte("n2"))...)
			v[len(v)-1] ^= 1
			return tx.Bucket(bucketNetworks).Put([]byte("n2"), v)
		},
		"a record added": func(tx *bolt.Tx) error { return tx.Bucket(bucketNodes).Put([]byte("h9"), []byte{}) },
		"a record lost":  func(tx *bolt.Tx) error { return tx.Bucket(bucketChanges).Delete(u64key(2)) },
		"a cursor": func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put([]byte(keyCursorPfx+"vnids"), binary.BigEndian.AppendUint64(nil, 7))
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := openWith(t, "n1", "n2", "n3")
			if err := c.b.Load().Update(edit); err != nil {
				t.Fatal(err)
			}
			if hashOf(t, c).Sum == ha.Sum {
				t.Fatal("the hash did not change")
			}
		})
	}
}

func u64key(v uint64) []byte { return []byte{0, 0, 0, 0, 0, 0, byte(v >> 8), byte(v)} }

// BenchmarkHash100k hashes a state of 100,000 objects (networks and
// workloads, about as large as the API's objects) and 10,000 revisions of
// history, what a server holds at the scale docs/design.md plans for.
func BenchmarkHash100k(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "state.db"), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for k := range 10 {
		err := db.Update(func(tx *Tx) error {
			for i := range 10000 {
				n := k*10000 + i
				if n%2 == 0 {
					if err := tx.PutNetwork(&sdnv1.Network{Name: fmt.Sprintf("net-%06d", n), Vnid: uint32(n), Labels: map[string]string{"team": "t", "env": "prod"}}); err != nil {
						return err
					}
				} else {
					w := &sdnv1.Workload{Name: fmt.Sprintf("pod-%06d", n), Network: fmt.Sprintf("net-%06d", n-1), Node: "host-001", Ip: "10.128.0.1", Mac: "0a:58:0a:80:00:01", Labels: map[string]string{"app": "web"}}
					if err := tx.PutWorkload(w); err != nil {
						return err
					}
				}
				if i%10 == 0 {
					if _, err := tx.Commit([]*sdnv1.ObjectChange{{Op: sdnv1.ChangeOp_CHANGE_OP_CREATE, Kind: "network", Name: "x"}}); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	var h Hash
	for b.Loop() {
		h = hashOf(b, db)
	}
	// CPU time, not wall time: the figure to quote on a shared machine.
	b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/hash")
	b.ReportMetric(float64(h.Records), "records")
}

// cpuTime is the CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
