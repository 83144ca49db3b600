// Package command defines the raft log's command format: a small binary
// envelope (format version, numbered type, an "ignore if unknown" flag and,
// from format 2 on, a checksum) around a protobuf payload.
//
// The numbering is append-only: a number, once released, keeps its meaning
// forever. A command type marked ignorable may be skipped by an older server
// that does not know it, which is what makes rolling upgrades possible (the
// scheme Nomad uses); one that is not ignorable stops an older server rather
// than let it silently diverge.
package command

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"google.golang.org/protobuf/proto"
)

// Type numbers a command. The high bit is IgnoreUnknownFlag.
type Type uint16

// IgnoreUnknownFlag marks a command an older server may skip.
const IgnoreUnknownFlag Type = 0x8000

// Command types. Append only; never renumber or reuse.
const (
	ApplyConfig    Type = 1 // sdnv1.ApplyRequest
	Delete         Type = 2 // sdnv1.DeleteRequest
	RegisterNode   Type = 3 // sdnv1.RegisterNodeRequest
	RemoveNode     Type = 4 // sdnv1.RemoveNodeRequest
	AttachWorkload Type = 5 // sdnv1.AttachWorkloadRequest
	DetachWorkload Type = 6 // sdnv1.DetachWorkloadRequest
	Compact        Type = 7 // sdnv1.CompactRequest
	// Batch carries several commands in one raft entry (group commit):
	// `message Batch { repeated bytes commands = 1; }`, each an envelope of
	// its own, applied in order. Never ignorable: it holds real commands.
	Batch Type = 8
	// Host liveness and drain. SetNodeLiveness and ReleaseNode are proposed
	// by the leader alone (its liveness loop), with the time inside the
	// command, so applying them needs no clock. None is ignorable: each
	// changes objects and the revision, and a server that skipped one
	// would count revisions differently from the others.
	SetNodeLiveness Type = 9  // sdnv1.SetNodeLivenessRequest: mark a host down, or up again
	DrainNode       Type = 10 // sdnv1.DrainNodeRequest
	ReleaseNode     Type = 11 // sdnv1.ReleaseNodeRequest: remove a host down past the grace

	// InitCluster (sdnv1.InitClusterRequest) gives the cluster its id, once;
	// the leader proposes it with IgnoreUnknownFlag. It changes no object
	// and not the revision, so an older server may skip it.
	InitCluster Type = 12
	// RevokeCertificate (sdnv1.RevokedCertificate) records a revoked
	// certificate, proposed with IgnoreUnknownFlag: it changes no object
	// and not the revision (an older server that skips it keeps accepting
	// the certificate until it is upgraded).
	RevokeCertificate Type = 13
	// LabelWorkload (sdnv1.LabelWorkloadRequest) sets and removes labels
	// of an existing workload. Never ignorable: it changes objects and the
	// revision.
	LabelWorkload Type = 14
)

var names = map[Type]string{
	ApplyConfig:    "ApplyConfig",
	Delete:         "Delete",
	RegisterNode:   "RegisterNode",
	RemoveNode:     "RemoveNode",
	AttachWorkload: "AttachWorkload",
	DetachWorkload: "DetachWorkload",
	Compact:        "Compact",
	Batch:          "Batch",

	SetNodeLiveness: "SetNodeLiveness",
	DrainNode:       "DrainNode",
	ReleaseNode:     "ReleaseNode",
	InitCluster:     "InitCluster",

	RevokeCertificate: "RevokeCertificate",
	LabelWorkload:     "LabelWorkload",
}

// Base is the type without the flag.
func (t Type) Base() Type { return t &^ IgnoreUnknownFlag }

// Ignorable reports whether an unknown server may skip the command.
func (t Type) Ignorable() bool { return t&IgnoreUnknownFlag != 0 }

func (t Type) String() string {
	if n, ok := names[t.Base()]; ok {
		return n
	}
	return fmt.Sprintf("Type(%d)", uint16(t.Base()))
}

// Format is an envelope format version: the envelope's first byte.
//
//	format 1: version (1) | type (uint16, big-endian) | payload
//	format 2: version (2) | type (uint16, big-endian) | CRC-32C (uint32, big-endian) | payload
//
// Format 2's checksum (Castagnoli) covers the type and the payload, so a
// byte changed anywhere in them, on any server's disk or on the way, is
// found when the entry is decoded (Decode) rather than applied as another
// command. Raft replicates the bytes as they are, so the checksum the
// leader wrote is the one every follower checks. Format 1 entries carry
// none: logs written before format 2 hold them, and they still decode.
type Format uint8

const (
	Format1 Format = 1
	Format2 Format = 2
	// Latest is the newest format this code reads and writes.
	Latest = Format2
)

const (
	header1Len = 3
	header2Len = 7
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrChecksum is a format 2 envelope whose checksum does not match its
// type and payload: the bytes were damaged after they were written.
var ErrChecksum = errors.New("checksum mismatch")

// Encode wraps a payload in the envelope of the latest format.
func Encode(t Type, payload proto.Message) ([]byte, error) { return Latest.Encode(t, payload) }

// EncodeRaw wraps already-encoded payload bytes in the envelope of the
// latest format.
func EncodeRaw(t Type, body []byte) []byte { return Latest.EncodeRaw(t, body) }

// Encode wraps a payload in an envelope of format f.
func (f Format) Encode(t Type, payload proto.Message) ([]byte, error) {
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s command: %w", t, err)
	}
	return f.EncodeRaw(t, body), nil
}

// EncodeRaw wraps already-encoded payload bytes in an envelope of format f
// (format 1 for any f other than 2).
func (f Format) EncodeRaw(t Type, body []byte) []byte {
	if f != Format2 {
		b := make([]byte, header1Len+len(body))
		b[0] = byte(Format1)
		binary.BigEndian.PutUint16(b[1:3], uint16(t))
		copy(b[header1Len:], body)
		return b
	}
	b := make([]byte, header2Len+len(body))
	b[0] = byte(Format2)
	binary.BigEndian.PutUint16(b[1:3], uint16(t))
	copy(b[header2Len:], body)
	binary.BigEndian.PutUint32(b[3:7], checksum(b[1:3], b[header2Len:]))
	return b
}

func checksum(typ, body []byte) uint32 {
	return crc32.Update(crc32.Checksum(typ, castagnoli), castagnoli, body)
}

// FormatOf is the format byte of an encoded command (0 for no bytes).
func FormatOf(b []byte) Format {
	if len(b) == 0 {
		return 0
	}
	return Format(b[0])
}

// Decode splits an envelope into its type (flag included) and payload,
// checking a format 2 envelope's checksum (ErrChecksum when it does not
// match).
func Decode(b []byte) (Type, []byte, error) {
	if len(b) == 0 {
		return 0, nil, fmt.Errorf("command of 0 bytes has no envelope")
	}
	switch Format(b[0]) {
	case Format1:
		if len(b) < header1Len {
			return 0, nil, fmt.Errorf("command of %d bytes is shorter than its %d-byte header", len(b), header1Len)
		}
		return Type(binary.BigEndian.Uint16(b[1:3])), b[header1Len:], nil
	case Format2:
		if len(b) < header2Len {
			return 0, nil, fmt.Errorf("command of %d bytes is shorter than its %d-byte header", len(b), header2Len)
		}
		if got, want := checksum(b[1:3], b[header2Len:]), binary.BigEndian.Uint32(b[3:7]); got != want {
			return 0, nil, fmt.Errorf("command envelope (%d bytes): %w: stored CRC-32C %08x, computed %08x", len(b), ErrChecksum, want, got)
		}
		return Type(binary.BigEndian.Uint16(b[1:3])), b[header2Len:], nil
	}
	return 0, nil, fmt.Errorf("command envelope format %d is not supported (this server knows 1 to %d); upgrade sdnd, or, if no newer sdnd wrote it, the entry is damaged", b[0], Latest)
}
