// Package state keeps the cluster's desired state (the raft FSM's data) in a
// bbolt file: cluster settings, networks, nodes, workloads, policies and the
// address groups derived from them, the revision counter, the change
// history that watches resume from, and the raft index the state covers, all written in one bbolt transaction per batch of raft
// entries so the applied index can never disagree with the data.
//
// Objects are stored as deterministic protobuf encodings of the API messages
// with input-only fields cleared: field numbers make them a stable on-disk
// format. The schema version in the meta bucket lets later releases migrate
// a store rather than misread it.
//
// Every record carries a checksum and every bucket a seal over its records
// (record.go), checked on every read, before an image of the file is
// written, and in full when the file opens (with bbolt's own structure
// check): a file changed underneath bbolt is never read as state. Damage
// is a *CorruptError naming the file, the bucket and the key; a DB that
// found it reads and writes the file no more (damage.go).
package state
