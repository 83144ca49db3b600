package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"hash"

	bolt "go.etcd.io/bbolt"
)

// HashVersion numbers how Tx.Hash digests the state; servers compare
// hashes of the same version (and schema) only. Bump it when what is
// hashed changes.
const HashVersion = 1

// Hash is a digest of the whole state as one transaction sees it.
type Hash struct {
	Revision     uint64
	AppliedIndex uint64
	Schema       uint32
	Sum          [sha256.Size]byte
	// Records is how many keys were hashed.
	Records uint64
}

// Hash digests the state: SHA-256 over every bucket's name and every
// record's key and value, in key order (bbolt's), each tagged and
// length-prefixed, leaving out the applied raft index (servers at the same
// revision may have applied different raft entries that changed nothing,
// like a configuration change) and the seals (derived from the records;
// the meta bucket's covers the applied index). Two servers whose FSMs applied the same commands
// hold the same bytes (the FSM is deterministic, package fsm), so their
// hashes at the same revision are equal; a record changed, added or lost
// on one of them makes its hash differ. It reads every record, in this
// transaction: a read that does not block writes.
func (t *Tx) Hash() Hash {
	m := t.Meta()
	out := Hash{Revision: m.Revision, AppliedIndex: m.AppliedIndex, Schema: m.Schema}
	hs := &hasher{h: sha256.New()}
	_ = t.tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		hs.field('b', name, nil)
		hs.bucket(name, b)
		return nil
	})
	hs.h.Sum(out.Sum[:0])
	out.Records = hs.n
	return out
}

// hasher feeds records to the hash through one buffer.
type hasher struct {
	h   hash.Hash
	buf []byte
	n   uint64
}

// bucket hashes one bucket's records (a nested bucket by its name and
// records; the state has none today), then an end mark.
func (hs *hasher) bucket(name []byte, b *bolt.Bucket) {
	_ = b.ForEach(func(k, v []byte) error {
		// Not the applied index (servers apply in batches of their own),
		// nor the seals: they are derived from the records (all hashed
		// here), and the meta bucket's covers the applied index.
		if bytes.Equal(name, bucketMeta) && (bytes.Equal(k, keyApplied) || bytes.HasPrefix(k, []byte(sealPfx))) {
			return nil
		}
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				hs.field('b', k, nil)
				hs.bucket(k, nb)
				return nil
			}
		}
		hs.field('r', k, v)
		hs.n++
		return nil
	})
	hs.h.Write([]byte{'e'})
}

// field writes a tag, then a and b, each length-prefixed.
func (hs *hasher) field(tag byte, a, b []byte) {
	hs.buf = append(hs.buf[:0], tag)
	hs.buf = binary.AppendUvarint(hs.buf, uint64(len(a)))
	hs.buf = append(hs.buf, a...)
	hs.buf = binary.AppendUvarint(hs.buf, uint64(len(b)))
	hs.buf = append(hs.buf, b...)
	hs.h.Write(hs.buf)
}
