package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Every record of the file carries a checksum and every bucket a seal over
// its records, so that a file changed underneath bbolt (a byte flipped on
// disk or by hand, a page gone missing or stale) is never read as state
// (docs/design.md, "Durability of the state file").
//
// A record's value is its payload followed by a 4-byte trailer, the
// CRC-32C (Castagnoli) of the bucket's name, the key and the payload, the
// names length-prefixed: a value moved to another key or bucket fails too.
// The schema version alone is stored bare (4 bytes), as schema 1 stored
// it, so that an older sdnd refuses a newer file instead of misreading it;
// the meta bucket's seal covers it.
//
// A bucket's seal, in the meta bucket under "seal/" and the bucket's name,
// is the number of its records and the XOR of their checksums: a record
// that vanished (a page's count changed, a branch pointing at a stale
// page) leaves its bucket short of its seal. The meta bucket's seal covers
// the meta records but not the seals. Seals change with every put and
// delete, in the same transaction (Tx.flushSeals).

const (
	trailerLen = 4
	// sealPfx prefixes the seals' keys in the meta bucket.
	sealPfx = "seal/"
	sealLen = 12 // records (8 bytes) and the XOR of their checksums (4)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordSum is the checksum of a record: bucket, key and payload.
func recordSum(bucket, key, payload []byte) uint32 {
	var n [binary.MaxVarintLen64]byte
	c := crc32.Update(0, castagnoli, n[:binary.PutUvarint(n[:], uint64(len(bucket)))])
	c = crc32.Update(c, castagnoli, bucket)
	c = crc32.Update(c, castagnoli, n[:binary.PutUvarint(n[:], uint64(len(key)))])
	c = crc32.Update(c, castagnoli, key)
	return crc32.Update(c, castagnoli, payload)
}

// encodeRecord is the stored value of a record: payload and trailer.
func encodeRecord(bucket, key, payload []byte) []byte {
	out := make([]byte, len(payload)+trailerLen)
	copy(out, payload)
	binary.BigEndian.PutUint32(out[len(payload):], recordSum(bucket, key, payload))
	return out
}

// bare reports whether a record is stored without a trailer (the schema).
func bare(bucket, key []byte) bool {
	return bytes.Equal(bucket, bucketMeta) && bytes.Equal(key, keySchema)
}

// sealed reports whether a record counts in its bucket's seal (all but
// the seals themselves).
func sealed(bucket, key []byte) bool {
	return !bytes.Equal(bucket, bucketMeta) || !bytes.HasPrefix(key, []byte(sealPfx))
}

// checkRecord checks a stored value and returns its payload and checksum,
// or why it is damaged.
func checkRecord(bucket, key, raw []byte) ([]byte, uint32, string) {
	if raw == nil {
		return nil, 0, "is a nested bucket where a record belongs"
	}
	if bare(bucket, key) {
		return raw, recordSum(bucket, key, raw), ""
	}
	if len(raw) < trailerLen {
		return nil, 0, fmt.Sprintf("is %d bytes, too short to hold its checksum", len(raw))
	}
	payload := raw[:len(raw)-trailerLen]
	stored, sum := binary.BigEndian.Uint32(raw[len(payload):]), recordSum(bucket, key, payload)
	if stored != sum {
		return nil, 0, fmt.Sprintf("fails its checksum (stored %08x, computed %08x)", stored, sum)
	}
	return payload, sum, ""
}

// seal is a bucket's record count and the XOR of their checksums.
type seal struct {
	n uint64
	x uint32
}

func (s seal) String() string { return fmt.Sprintf("%d records, checksum %08x", s.n, s.x) }

// add counts a record in (or, with sign -1, out of) the seal.
func (s *seal) add(sum uint32, sign int) {
	s.n += uint64(sign)
	s.x ^= sum
}

// payload reads a stored value: its payload and checksum. A damaged one
// ends the transaction (DB.View and DB.Update return a *CorruptError).
func (t *Tx) payload(bucket, key, raw []byte) ([]byte, uint32) {
	p, sum, bad := checkRecord(bucket, key, raw)
	if bad != "" {
		t.corrupt(bucket, key, bad)
	}
	return p, sum
}

// getRecord returns the payload stored under key, nil when there is none.
func (t *Tx) getRecord(bucket, key []byte) []byte {
	raw := t.bucket(bucket).Get(key)
	if raw == nil {
		return nil
	}
	p, _ := t.payload(bucket, key, raw)
	return p
}

// putRecord stores payload under key with its trailer, counting the
// change in the bucket's seal.
func (t *Tx) putRecord(bucket, key, payload []byte) error {
	b := t.bucket(bucket)
	if old := b.Get(key); old != nil {
		_, sum := t.payload(bucket, key, old)
		t.count(bucket, key, sum, -1)
	}
	raw := payload
	if !bare(bucket, key) {
		raw = encodeRecord(bucket, key, payload)
	}
	if err := b.Put(key, raw); err != nil {
		return err
	}
	t.count(bucket, key, recordSum(bucket, key, payload), 1)
	return nil
}

// deleteRecord removes key, counting it out of the bucket's seal.
func (t *Tx) deleteRecord(bucket, key []byte) error {
	b := t.bucket(bucket)
	old := b.Get(key)
	if old == nil {
		return b.Delete(key)
	}
	_, sum := t.payload(bucket, key, old)
	if err := b.Delete(key); err != nil {
		return err
	}
	t.count(bucket, key, sum, -1)
	return nil
}

// count notes a record put (sign 1) or removed (-1) for its bucket's seal.
func (t *Tx) count(bucket, key []byte, sum uint32, sign int) {
	if !sealed(bucket, key) {
		return
	}
	if t.seals == nil {
		t.seals = map[string]*seal{}
	}
	d := t.seals[string(bucket)]
	if d == nil {
		d = &seal{}
		t.seals[string(bucket)] = d
	}
	d.add(sum, sign)
}

// storedSeal reads a bucket's seal (zero when none was written: an empty
// bucket).
func (t *Tx) storedSeal(bucket []byte) seal {
	key := []byte(sealPfx + string(bucket))
	p := t.getRecord(bucketMeta, key)
	if p == nil {
		return seal{}
	}
	if len(p) != sealLen {
		t.corrupt(bucketMeta, key, fmt.Sprintf("holds %d bytes, not a seal's %d", len(p), sealLen))
	}
	return seal{n: binary.BigEndian.Uint64(p), x: binary.BigEndian.Uint32(p[8:])}
}

// writeSeal stores a bucket's seal.
func (t *Tx) writeSeal(bucket []byte, s seal) error {
	key := []byte(sealPfx + string(bucket))
	p := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, s.n), s.x)
	return t.bucket(bucketMeta).Put(key, encodeRecord(bucketMeta, key, p))
}

// flushSeals writes the seals of the buckets this transaction changed;
// DB.Update calls it before the commit.
func (t *Tx) flushSeals() error {
	names := make([]string, 0, len(t.seals))
	for name := range t.seals {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		d := t.seals[name]
		s := t.storedSeal([]byte(name))
		s.n += d.n
		s.x ^= d.x
		if err := t.writeSeal([]byte(name), s); err != nil {
			return err
		}
	}
	t.seals = nil
	return nil
}

// resetSeal makes an emptied bucket's seal zero.
func (t *Tx) resetSeal(bucket []byte) error {
	delete(t.seals, string(bucket))
	return t.writeSeal(bucket, seal{})
}

// verifyBucket checks every record of a bucket and its seal.
func (t *Tx) verifyBucket(name []byte) *CorruptError {
	b := t.tx.Bucket(name)
	if b == nil {
		return t.corruptErr(name, nil, "the bucket is missing")
	}
	var got seal
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if !sealed(name, k) {
			continue
		}
		_, sum, bad := checkRecord(name, k, v)
		if bad != "" {
			return t.corruptErr(name, k, bad)
		}
		got.add(sum, 1)
	}
	if want := t.storedSeal(name); got != want {
		return t.corruptErr(name, nil, fmt.Sprintf("it holds %s, its seal says %s: records are missing, stale or added", got, want))
	}
	return nil
}

// verify checks every record of every bucket against its checksum and
// every bucket against its seal.
func (t *Tx) verify() *CorruptError {
	for _, b := range allBuckets {
		if err := t.verifyBucket(b); err != nil {
			return err
		}
	}
	return nil
}

// bucket returns a bucket the schema has; a missing one is damage.
func (t *Tx) bucket(name []byte) *bolt.Bucket {
	b := t.tx.Bucket(name)
	if b == nil {
		t.corrupt(name, nil, "the bucket is missing")
	}
	return b
}

// forEach calls fn with each record's key and payload whose key starts
// with prefix, in key order, until fn returns false.
func (t *Tx) forEach(bucket []byte, prefix string, fn func(k, payload []byte) bool) {
	c := t.bucket(bucket).Cursor()
	for k, v := c.Seek([]byte(prefix)); k != nil && strings.HasPrefix(string(k), prefix); k, v = c.Next() {
		p, _ := t.payload(bucket, k, v)
		if !fn(k, p) {
			return
		}
	}
}
