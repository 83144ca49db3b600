package state

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Tx is a read or read-write view of the state. Every record it reads is
// checked against its checksum first (record.go): one that fails ends the
// transaction, and DB.View or DB.Update returns the damage.
type Tx struct {
	tx *bolt.Tx
	db *DB
	// seals are the changes to the buckets' seals this transaction made,
	// written before it commits (flushSeals).
	seals map[string]*seal
}

// Meta is the bookkeeping that covers the whole state.
type Meta struct {
	Schema       uint32
	AppliedIndex uint64 // the raft index the state covers
	Revision     uint64 // bumped once per command that changed something
	Compacted    uint64 // history up to and including this revision is gone
}

// u64 decodes a history key (a big-endian revision).
func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// getU64 reads a number record of the meta bucket (0 when absent).
func (t *Tx) getU64(key []byte) uint64 {
	p := t.getRecord(bucketMeta, key)
	if p == nil {
		return 0
	}
	if len(p) != 8 {
		t.corrupt(bucketMeta, key, fmt.Sprintf("holds %d bytes, not a number's 8", len(p)))
	}
	return binary.BigEndian.Uint64(p)
}

// putU64 stores a number record in the meta bucket.
func (t *Tx) putU64(key []byte, v uint64) error {
	return t.putRecord(bucketMeta, key, binary.BigEndian.AppendUint64(nil, v))
}

// Meta reads the bookkeeping.
func (t *Tx) Meta() Meta {
	var schema uint32
	if p := t.getRecord(bucketMeta, keySchema); len(p) == 4 {
		schema = binary.BigEndian.Uint32(p)
	}
	return Meta{Schema: schema, AppliedIndex: t.getU64(keyApplied), Revision: t.getU64(keyRevision), Compacted: t.getU64(keyCompacted)}
}

// ClusterID returns the cluster's id, empty until the first leader set one
// (InitCluster). It travels with the state: a snapshot restored elsewhere
// brings it along, so the hosts of the cluster it saved keep following it.
func (t *Tx) ClusterID() string {
	return string(t.getRecord(bucketMeta, keyClusterID))
}

// SetClusterID stores the cluster's id.
func (t *Tx) SetClusterID(id string) error {
	return t.putRecord(bucketMeta, keyClusterID, []byte(id))
}

// Revoked returns the revocation of the certificate with serial (lower-case
// hex), if any.
func (t *Tx) Revoked(serial string) (*sdnv1.RevokedCertificate, bool) {
	return get(t, bucketMeta, keyRevokedPfx+serial, &sdnv1.RevokedCertificate{})
}

// PutRevoked records a revoked certificate.
func (t *Tx) PutRevoked(c *sdnv1.RevokedCertificate) error {
	return put(t, bucketMeta, keyRevokedPfx+c.Serial, c)
}

// RevokedCertificates lists the revoked certificates by serial.
func (t *Tx) RevokedCertificates() []*sdnv1.RevokedCertificate {
	return list(t, bucketMeta, keyRevokedPfx, func() *sdnv1.RevokedCertificate { return &sdnv1.RevokedCertificate{} })
}

// RevokedCount is how many certificates are revoked.
func (t *Tx) RevokedCount() int {
	n := 0
	c := t.bucket(bucketMeta).Cursor()
	for k, _ := c.Seek([]byte(keyRevokedPfx)); k != nil && strings.HasPrefix(string(k), keyRevokedPfx); k, _ = c.Next() {
		n++
	}
	return n
}

// SetAppliedIndex records the raft index this transaction brings the state to.
func (t *Tx) SetAppliedIndex(i uint64) error {
	return t.putU64(keyApplied, i)
}

// Cursor reads an allocator's persisted cursor (e.g. "subnets", "vnids").
func (t *Tx) Cursor(name string) uint64 {
	return t.getU64([]byte(keyCursorPfx + name))
}

// SetCursor persists an allocator's cursor.
func (t *Tx) SetCursor(name string, c uint64) error {
	return t.putU64([]byte(keyCursorPfx+name), c)
}

func get[T proto.Message](t *Tx, bucket []byte, key string, msg T) (T, bool) {
	p := t.getRecord(bucket, []byte(key))
	if p == nil {
		var zero T
		return zero, false
	}
	t.decode(bucket, []byte(key), p, msg)
	return msg, true
}

// decode decodes a record's payload. One that passed its checksum but does
// not decode was written damaged (or by a bug): damage all the same.
func (t *Tx) decode(bucket, key, payload []byte, msg proto.Message) {
	if err := proto.Unmarshal(payload, msg); err != nil {
		t.corrupt(bucket, key, fmt.Sprintf("does not decode: %v", err))
	}
}

func put(t *Tx, bucket []byte, key string, msg proto.Message) error {
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return err
	}
	return t.putRecord(bucket, []byte(key), raw)
}

func list[T proto.Message](t *Tx, bucket []byte, prefix string, newMsg func() T) []T {
	var out []T
	t.forEach(bucket, prefix, func(k, p []byte) bool {
		m := newMsg()
		t.decode(bucket, k, p, m)
		out = append(out, m)
		return true
	})
	return out
}

// Cluster returns the stored cluster settings, or nil when none were set.
func (t *Tx) Cluster() *sdnv1.ClusterSettings {
	c, ok := get(t, bucketSettings, string(keyCluster), &sdnv1.ClusterSettings{})
	if !ok {
		return nil
	}
	return c
}

// PutCluster stores the cluster settings.
func (t *Tx) PutCluster(c *sdnv1.ClusterSettings) error {
	return put(t, bucketSettings, string(keyCluster), c)
}

// Network returns the named network.
func (t *Tx) Network(name string) (*sdnv1.Network, bool) {
	return get(t, bucketNetworks, name, &sdnv1.Network{})
}

// Networks lists networks by name.
func (t *Tx) Networks() []*sdnv1.Network {
	return list(t, bucketNetworks, "", func() *sdnv1.Network { return &sdnv1.Network{} })
}

// PutNetwork stores a network.
func (t *Tx) PutNetwork(n *sdnv1.Network) error { return put(t, bucketNetworks, n.Name, n) }

// DeleteNetwork removes a network.
func (t *Tx) DeleteNetwork(name string) error {
	return t.deleteRecord(bucketNetworks, []byte(name))
}

// Node returns the named node.
func (t *Tx) Node(name string) (*sdnv1.Node, bool) {
	return get(t, bucketNodes, name, &sdnv1.Node{})
}

// Nodes lists nodes by name.
func (t *Tx) Nodes() []*sdnv1.Node {
	return list(t, bucketNodes, "", func() *sdnv1.Node { return &sdnv1.Node{} })
}

// PutNode stores a node.
func (t *Tx) PutNode(n *sdnv1.Node) error { return put(t, bucketNodes, n.Name, n) }

// DeleteNode removes a node.
func (t *Tx) DeleteNode(name string) error { return t.deleteRecord(bucketNodes, []byte(name)) }

// Workload returns a workload by network and name.
func (t *Tx) Workload(network, name string) (*sdnv1.Workload, bool) {
	return get(t, bucketWorkloads, model.WorkloadKey(network, name), &sdnv1.Workload{})
}

// Workloads lists workloads ordered by network then name; network "" lists all.
func (t *Tx) Workloads(network string) []*sdnv1.Workload {
	prefix := ""
	if network != "" {
		prefix = network + "/"
	}
	return list(t, bucketWorkloads, prefix, func() *sdnv1.Workload { return &sdnv1.Workload{} })
}

// PutWorkload stores a workload.
func (t *Tx) PutWorkload(w *sdnv1.Workload) error {
	return put(t, bucketWorkloads, model.WorkloadKey(w.Network, w.Name), w)
}

// DeleteWorkload removes a workload.
func (t *Tx) DeleteWorkload(network, name string) error {
	return t.deleteRecord(bucketWorkloads, []byte(model.WorkloadKey(network, name)))
}

// Commit records changes made at a new revision: it bumps the revision,
// appends the changes to the history and returns the new revision. The
// caller has already put the objects with that revision stamped on them
// (see NextRevision).
func (t *Tx) Commit(changes []*sdnv1.ObjectChange) (uint64, error) {
	m := t.Meta()
	rev := m.Revision + 1
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(&sdnv1.WatchEvent{Type: sdnv1.WatchEventType_WATCH_EVENT_TYPE_DELTA, Revision: rev, Changes: changes})
	if err != nil {
		return 0, err
	}
	if err := t.putRecord(bucketChanges, binary.BigEndian.AppendUint64(nil, rev), raw); err != nil {
		return 0, err
	}
	return rev, t.putU64(keyRevision, rev)
}

// NextRevision is the revision the next Commit will produce.
func (t *Tx) NextRevision() uint64 { return t.Meta().Revision + 1 }

// ChangesAfter calls fn for each recorded revision after rev, in order,
// until fn returns false. The caller checks rev against Meta().Compacted.
func (t *Tx) ChangesAfter(rev uint64, fn func(ev *sdnv1.WatchEvent) bool) {
	c := t.bucket(bucketChanges).Cursor()
	for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, rev+1)); k != nil; k, v = c.Next() {
		p, _ := t.payload(bucketChanges, k, v)
		ev := &sdnv1.WatchEvent{}
		t.decode(bucketChanges, k, p, ev)
		if !fn(ev) {
			return
		}
	}
}

// Compact drops the history up to and including rev (never past the current
// revision) and returns the new compacted revision.
func (t *Tx) Compact(rev uint64) (uint64, error) {
	m := t.Meta()
	if rev > m.Revision {
		rev = m.Revision
	}
	if rev <= m.Compacted {
		return m.Compacted, nil
	}
	c := t.bucket(bucketChanges).Cursor()
	var keys [][]byte
	for k, _ := c.First(); k != nil && u64(k) <= rev; k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := t.deleteRecord(bucketChanges, k); err != nil {
			return 0, err
		}
	}
	return rev, t.putU64(keyCompacted, rev)
}

// Empty reports whether the state holds no networks and no workloads:
// nothing but hosts that registered themselves (and the settings the
// first of them set).
func (t *Tx) Empty() bool {
	for _, b := range [][]byte{bucketNetworks, bucketWorkloads, bucketPolicies, bucketServices} {
		if k, _ := t.bucket(b).Cursor().First(); k != nil {
			return false
		}
	}
	return true
}

// Counts returns how many objects of each kind are stored.
func (t *Tx) Counts() map[string]int {
	return map[string]int{
		"networks":  t.bucket(bucketNetworks).Stats().KeyN,
		"nodes":     t.bucket(bucketNodes).Stats().KeyN,
		"workloads": t.bucket(bucketWorkloads).Stats().KeyN,
		"policies":  t.bucket(bucketPolicies).Stats().KeyN,
		"services":  t.bucket(bucketServices).Stats().KeyN,
	}
}

// Dump renders the whole state (without history) as sorted text lines, for
// tests and debugging that compare stores.
func (t *Tx) Dump() []string {
	var lines []string
	for _, b := range [][]byte{bucketSettings, bucketNetworks, bucketNodes, bucketWorkloads, bucketPolicies, bucketGroups, bucketServices, bucketEndpoints} {
		t.bucket(b).ForEach(func(k, v []byte) error {
			lines = append(lines, fmt.Sprintf("%s/%s %x", b, k, v))
			return nil
		})
	}
	m := t.Meta()
	lines = append(lines, fmt.Sprintf("meta revision=%d", m.Revision))
	sort.Strings(lines)
	return lines
}

// Rebase prepares a state image for installation as another cluster's (or
// this one's after it moved on) whole state, the way a restore needs it:
// the revision jumps to revision, the change history is dropped and marked
// compacted up to it, so every watcher resumes with a full snapshot, and
// the applied raft index becomes index (the image's own belongs to the log
// it came from): the index it will be installed at in this cluster's log,
// or below it. Objects, their revisions and the allocator cursors are
// kept. revision must not be below the image's own.
func (t *Tx) Rebase(revision, index uint64) error {
	if m := t.Meta(); revision < m.Revision {
		return fmt.Errorf("rebase to revision %d: the state is already at %d", revision, m.Revision)
	}
	if err := t.putU64(keyRevision, revision); err != nil {
		return err
	}
	if err := t.tx.DeleteBucket(bucketChanges); err != nil {
		return err
	}
	if _, err := t.tx.CreateBucket(bucketChanges); err != nil {
		return err
	}
	if err := t.resetSeal(bucketChanges); err != nil {
		return err
	}
	if err := t.putU64(keyCompacted, revision); err != nil {
		return err
	}
	return t.SetAppliedIndex(index)
}
