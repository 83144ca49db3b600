package state

import (
	"encoding/binary"
	"fmt"
)

// SchemaVersion is the layout this code reads and writes. Bump it together
// with a migration in migrations.
//
//   - 1: the buckets, records stored as they are.
//   - 2: every record with a checksum, every bucket with a seal (record.go).
//   - 3: the policies and address groups buckets (label policy).
//   - 4: the services and service endpoints buckets.
//
// Later schemas keep the schema record bare and the meta bucket's seal as
// schema 2 writes them, so that a file claiming a newer schema whose meta
// records fail their checks is known to be damaged rather than newer.
const SchemaVersion = 4

// migration upgrades a store from version v to v+1 inside t.
type migration func(t *Tx) error

// migrations[v] upgrades schema v to v+1. Version 0 is a new, empty file.
var migrations = map[uint32]migration{
	0: func(t *Tx) error {
		for _, b := range allBuckets {
			if _, err := t.tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
	1: addChecksums,
	2: addPolicyBuckets,
	3: addServiceBuckets,
}

// addPolicyBuckets (schema 2 to 3) creates the empty policies and address
// groups buckets, with their (zero) seals.
func addPolicyBuckets(t *Tx) error { return addBuckets(t, bucketPolicies, bucketGroups) }

// addServiceBuckets (schema 3 to 4) creates the empty services and service
// endpoints buckets, with their (zero) seals.
func addServiceBuckets(t *Tx) error { return addBuckets(t, bucketServices, bucketEndpoints) }

// addBuckets creates empty buckets with their (zero) seals.
func addBuckets(t *Tx, names ...[]byte) error {
	for _, b := range names {
		if _, err := t.tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
		if err := t.writeSeal(b, seal{}); err != nil {
			return err
		}
	}
	return nil
}

// addChecksums (schema 1 to 2) rewrites every record with its trailer and
// writes every bucket's seal. What a schema 1 file holds cannot be checked:
// it is taken as it is.
func addChecksums(t *Tx) error {
	for _, name := range schema2Buckets {
		b := t.bucket(name)
		type kv struct{ k, v []byte }
		var recs []kv
		err := b.ForEach(func(k, v []byte) error {
			if v == nil {
				return t.corruptErr(name, k, "is a nested bucket where a record belongs")
			}
			recs = append(recs, kv{append([]byte(nil), k...), append([]byte(nil), v...)})
			return nil
		})
		if err != nil {
			return err
		}
		var s seal
		for _, r := range recs {
			s.add(recordSum(name, r.k, r.v), 1)
			if bare(name, r.k) {
				continue
			}
			if err := b.Put(r.k, encodeRecord(name, r.k, r.v)); err != nil {
				return err
			}
		}
		if err := t.writeSeal(name, s); err != nil {
			return err
		}
	}
	return nil
}

// schema reads the stored schema version: 0 for a new file (no buckets at
// all). A file that has buckets but no readable schema is damaged.
func (t *Tx) schema() uint32 {
	if k, _ := t.tx.Cursor().First(); k == nil {
		return 0
	}
	raw := t.bucket(bucketMeta).Get(keySchema)
	if len(raw) != 4 {
		t.corrupt(bucketMeta, keySchema, fmt.Sprintf("is %d bytes, not a schema version's 4", len(raw)))
	}
	v := binary.BigEndian.Uint32(raw)
	if v == 0 {
		t.corrupt(bucketMeta, keySchema, "holds schema version 0, which no sdnd writes")
	}
	return v
}

// putSchema stores the schema version (bare: record.go).
func (t *Tx) putSchema(v uint32) error {
	return t.putRecord(bucketMeta, keySchema, binary.BigEndian.AppendUint32(nil, v))
}

// migrate brings the file to SchemaVersion, or refuses a newer one. A file
// of schema 2 or later has its meta records checked first: a damaged
// schema record must not pass for another schema.
func (db *DB) migrate() error {
	var v uint32
	err := db.view(func(t *Tx) error {
		v = t.schema()
		if v >= 2 {
			if err := t.verifyBucket(bucketMeta); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if v > SchemaVersion {
		return fmt.Errorf("written by a newer sdnd (schema %d, this one reads up to %d); run the newer sdnd or restore a snapshot", v, SchemaVersion)
	}
	if v == SchemaVersion {
		return nil
	}
	return db.update(func(t *Tx) error {
		for v := t.schema(); v < SchemaVersion; v++ {
			m, ok := migrations[v]
			if !ok {
				return fmt.Errorf("no migration from schema %d", v)
			}
			if err := m(t); err != nil {
				return fmt.Errorf("migrate schema %d to %d: %w", v, v+1, err)
			}
		}
		return t.putSchema(SchemaVersion)
	})
}
