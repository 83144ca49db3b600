// Package command defines the raft log's command format: a small binary
// envelope (format version, numbered type, an "ignore if unknown" flag) around
// a protobuf payload.
//
// The numbering is append-only: a number, once released, keeps its meaning
// forever. A command type marked ignorable may be skipped by an older server
// that does not know it, which is what makes rolling upgrades possible (the
// scheme Nomad uses); one that is not ignorable stops an older server rather
// than let it silently diverge.
package command

import (
	"encoding/binary"
	"fmt"

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

// formatVersion is the envelope's own version byte.
const formatVersion = 1

const headerLen = 3

// Encode wraps a payload in the envelope.
func Encode(t Type, payload proto.Message) ([]byte, error) {
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s command: %w", t, err)
	}
	return EncodeRaw(t, body), nil
}

// EncodeRaw wraps already-encoded payload bytes in the envelope.
func EncodeRaw(t Type, body []byte) []byte {
	b := make([]byte, headerLen+len(body))
	b[0] = formatVersion
	binary.BigEndian.PutUint16(b[1:3], uint16(t))
	copy(b[headerLen:], body)
	return b
}

// Decode splits an envelope into its type (flag included) and payload.
func Decode(b []byte) (Type, []byte, error) {
	if len(b) < headerLen {
		return 0, nil, fmt.Errorf("command of %d bytes is shorter than its %d-byte header", len(b), headerLen)
	}
	if b[0] != formatVersion {
		return 0, nil, fmt.Errorf("command envelope version %d is not supported (this server knows %d); upgrade sdnd", b[0], formatVersion)
	}
	return Type(binary.BigEndian.Uint16(b[1:3])), b[headerLen:], nil
}
