package feed

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Message is a WatchEvent already encoded, in pieces: its header fields
// and the shared encodings of its changes, which gRPC writes one after the
// other (protobuf fields may come in any order, and repeated ones are
// simply concatenated). Send it with the stream's SendMsg on a server that
// uses Codec.
type Message struct {
	parts [][]byte
	size  int
	// Type and Revision, as encoded (for logs and tests).
	Type     sdnv1.WatchEventType
	Revision uint64
	// Changes is how many changes it carries.
	Changes int
}

func (m *Message) add(p []byte) {
	m.parts = append(m.parts, p)
	m.size += len(p)
}

// header encodes a WatchEvent's fields other than its changes.
type header struct {
	typ       sdnv1.WatchEventType
	rev       uint64
	done      bool
	reason    string
	clusterID string
}

func (h header) encode() []byte {
	b := make([]byte, 0, 24+len(h.reason)+len(h.clusterID))
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(h.typ))
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, h.rev)
	if h.done {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	if h.reason != "" {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendString(b, h.reason)
	}
	if h.clusterID != "" {
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendString(b, h.clusterID)
	}
	return b
}

// newMessage starts a message with its header.
func newMessage(h header) *Message {
	m := &Message{Type: h.typ, Revision: h.rev}
	m.add(h.encode())
	return m
}

// Codec is the server's gRPC codec: protobuf, except that a *Message is
// written as the bytes it already holds, without a copy (mem.SliceBuffer's
// Free does nothing, so the shared bytes are never recycled).
type Codec struct{}

// Name is the content subtype: the codec speaks protobuf.
func (Codec) Name() string { return "proto" }

// Marshal encodes v.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*Message); ok {
		out := make(mem.BufferSlice, len(m.parts))
		for i, p := range m.parts {
			out[i] = mem.SliceBuffer(p)
		}
		return out, nil
	}
	return protoCodec().Marshal(v)
}

// Unmarshal decodes data into v.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	return protoCodec().Unmarshal(data, v)
}

func protoCodec() encoding.CodecV2 { return encoding.GetCodecV2("proto") }
