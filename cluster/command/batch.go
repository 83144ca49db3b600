package command

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// EncodeBatch packs encoded commands (envelopes from Encode) into one Batch
// command of the latest format. The payload is the protobuf encoding of
// `message Batch { repeated bytes commands = 1; }`, written with protowire
// so no generated type is needed. The Batch's checksum covers its commands
// (each also carries its own when it is of format 2).
func EncodeBatch(cmds [][]byte) []byte { return Latest.EncodeBatch(cmds) }

// EncodeBatch packs encoded commands into one Batch command of format f.
func (f Format) EncodeBatch(cmds [][]byte) []byte {
	n := 0
	for _, c := range cmds {
		n += protowire.SizeTag(1) + protowire.SizeBytes(len(c))
	}
	body := make([]byte, 0, n)
	for _, c := range cmds {
		body = protowire.AppendTag(body, 1, protowire.BytesType)
		body = protowire.AppendBytes(body, c)
	}
	return f.EncodeRaw(Batch, body)
}

// DecodeBatch splits a Batch payload into its commands (each still an
// envelope). Unknown fields are skipped, as protobuf would.
func DecodeBatch(payload []byte) ([][]byte, error) {
	var out [][]byte
	for len(payload) > 0 {
		num, typ, n := protowire.ConsumeTag(payload)
		if n < 0 {
			return nil, fmt.Errorf("batch: %w", protowire.ParseError(n))
		}
		if num > protowire.MaxValidNumber {
			// protowire leaves this check to its callers; protobuf refuses it.
			return nil, fmt.Errorf("batch: field number %d is out of range", num)
		}
		payload = payload[n:]
		if num == 1 && typ == protowire.BytesType {
			b, m := protowire.ConsumeBytes(payload)
			if m < 0 {
				return nil, fmt.Errorf("batch command %d: %w", len(out), protowire.ParseError(m))
			}
			out = append(out, b)
			payload = payload[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, payload)
		if m < 0 {
			return nil, fmt.Errorf("batch: %w", protowire.ParseError(m))
		}
		payload = payload[m:]
	}
	return out, nil
}
