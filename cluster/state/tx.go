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

// Tx is a read or read-write view of the state.
type Tx struct {
	tx *bolt.Tx
}

// Meta is the bookkeeping that covers the whole state.
type Meta struct {
	Schema       uint32
	AppliedIndex uint64 // the raft index the state covers
	Revision     uint64 // bumped once per command that changed something
	Compacted    uint64 // history up to and including this revision is gone
}

func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func putU64(b *bolt.Bucket, k []byte, v uint64) error {
	return b.Put(k, binary.BigEndian.AppendUint64(nil, v))
}

// Meta reads the bookkeeping.
func (t *Tx) Meta() Meta {
	m := t.tx.Bucket(bucketMeta)
	s := m.Get(keySchema)
	var schema uint32
	if len(s) == 4 {
		schema = binary.BigEndian.Uint32(s)
	}
	return Meta{Schema: schema, AppliedIndex: u64(m.Get(keyApplied)), Revision: u64(m.Get(keyRevision)), Compacted: u64(m.Get(keyCompacted))}
}

// ClusterID returns the cluster's id, empty until the first leader set one
// (InitCluster). It travels with the state: a snapshot restored elsewhere
// brings it along, so the hosts of the cluster it saved keep following it.
func (t *Tx) ClusterID() string {
	return string(t.tx.Bucket(bucketMeta).Get(keyClusterID))
}

// SetClusterID stores the cluster's id.
func (t *Tx) SetClusterID(id string) error {
	return t.tx.Bucket(bucketMeta).Put(keyClusterID, []byte(id))
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
	c := t.tx.Bucket(bucketMeta).Cursor()
	for k, _ := c.Seek([]byte(keyRevokedPfx)); k != nil && strings.HasPrefix(string(k), keyRevokedPfx); k, _ = c.Next() {
		n++
	}
	return n
}

// SetAppliedIndex records the raft index this transaction brings the state to.
func (t *Tx) SetAppliedIndex(i uint64) error {
	return putU64(t.tx.Bucket(bucketMeta), keyApplied, i)
}

// Cursor reads an allocator's persisted cursor (e.g. "subnets", "vnids").
func (t *Tx) Cursor(name string) uint64 {
	return u64(t.tx.Bucket(bucketMeta).Get([]byte(keyCursorPfx + name)))
}

// SetCursor persists an allocator's cursor.
func (t *Tx) SetCursor(name string, c uint64) error {
	return putU64(t.tx.Bucket(bucketMeta), []byte(keyCursorPfx+name), c)
}

func get[T proto.Message](t *Tx, bucket []byte, key string, msg T) (T, bool) {
	raw := t.tx.Bucket(bucket).Get([]byte(key))
	if raw == nil {
		var zero T
		return zero, false
	}
	if err := proto.Unmarshal(raw, msg); err != nil {
		// The store is written only by this package; a record that does
		// not decode is corruption, which no caller can handle.
		panic(fmt.Sprintf("state: corrupt %s record %q: %v", bucket, key, err))
	}
	return msg, true
}

func put(t *Tx, bucket []byte, key string, msg proto.Message) error {
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bucket).Put([]byte(key), raw)
}

func list[T proto.Message](t *Tx, bucket []byte, prefix string, newMsg func() T) []T {
	var out []T
	c := t.tx.Bucket(bucket).Cursor()
	for k, v := c.Seek([]byte(prefix)); k != nil && strings.HasPrefix(string(k), prefix); k, v = c.Next() {
		m := newMsg()
		if err := proto.Unmarshal(v, m); err != nil {
			panic(fmt.Sprintf("state: corrupt %s record %q: %v", bucket, k, err))
		}
		out = append(out, m)
	}
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
	return t.tx.Bucket(bucketNetworks).Delete([]byte(name))
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
func (t *Tx) DeleteNode(name string) error { return t.tx.Bucket(bucketNodes).Delete([]byte(name)) }

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
	return t.tx.Bucket(bucketWorkloads).Delete([]byte(model.WorkloadKey(network, name)))
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
	if err := t.tx.Bucket(bucketChanges).Put(binary.BigEndian.AppendUint64(nil, rev), raw); err != nil {
		return 0, err
	}
	return rev, putU64(t.tx.Bucket(bucketMeta), keyRevision, rev)
}

// NextRevision is the revision the next Commit will produce.
func (t *Tx) NextRevision() uint64 { return t.Meta().Revision + 1 }

// ChangesAfter calls fn for each recorded revision after rev, in order,
// until fn returns false. The caller checks rev against Meta().Compacted.
func (t *Tx) ChangesAfter(rev uint64, fn func(ev *sdnv1.WatchEvent) bool) {
	c := t.tx.Bucket(bucketChanges).Cursor()
	for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, rev+1)); k != nil; k, v = c.Next() {
		ev := &sdnv1.WatchEvent{}
		if err := proto.Unmarshal(v, ev); err != nil {
			panic(fmt.Sprintf("state: corrupt change record %d: %v", u64(k), err))
		}
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
	b := t.tx.Bucket(bucketChanges)
	c := b.Cursor()
	var keys [][]byte
	for k, _ := c.First(); k != nil && u64(k) <= rev; k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return rev, putU64(t.tx.Bucket(bucketMeta), keyCompacted, rev)
}

// Empty reports whether the state holds no networks and no workloads:
// nothing but hosts that registered themselves (and the settings the
// first of them set).
func (t *Tx) Empty() bool {
	for _, b := range [][]byte{bucketNetworks, bucketWorkloads} {
		if k, _ := t.tx.Bucket(b).Cursor().First(); k != nil {
			return false
		}
	}
	return true
}

// Counts returns how many objects of each kind are stored.
func (t *Tx) Counts() map[string]int {
	return map[string]int{
		"networks":  t.tx.Bucket(bucketNetworks).Stats().KeyN,
		"nodes":     t.tx.Bucket(bucketNodes).Stats().KeyN,
		"workloads": t.tx.Bucket(bucketWorkloads).Stats().KeyN,
	}
}

// Dump renders the whole state (without history) as sorted text lines, for
// tests and debugging that compare stores.
func (t *Tx) Dump() []string {
	var lines []string
	for _, b := range [][]byte{bucketSettings, bucketNetworks, bucketNodes, bucketWorkloads} {
		t.tx.Bucket(b).ForEach(func(k, v []byte) error {
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
	if err := putU64(t.tx.Bucket(bucketMeta), keyRevision, revision); err != nil {
		return err
	}
	if err := t.tx.DeleteBucket(bucketChanges); err != nil {
		return err
	}
	if _, err := t.tx.CreateBucket(bucketChanges); err != nil {
		return err
	}
	if err := putU64(t.tx.Bucket(bucketMeta), keyCompacted, revision); err != nil {
		return err
	}
	return t.SetAppliedIndex(index)
}
