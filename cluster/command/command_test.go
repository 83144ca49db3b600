package command

import (
	"errors"
	"testing"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"google.golang.org/protobuf/proto"
)

func TestRoundTrip(t *testing.T) {
	in := &sdnv1.RegisterNodeRequest{Name: "host1", UnderlayIp: "198.18.0.1", UnderlayMtu: 1500}
	b, err := Encode(RegisterNode|IgnoreUnknownFlag, in)
	if err != nil {
		t.Fatal(err)
	}
	typ, body, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if typ.Base() != RegisterNode || !typ.Ignorable() {
		t.Fatalf("type = %v ignorable=%v", typ, typ.Ignorable())
	}
	out := &sdnv1.RegisterNodeRequest{}
	if err := proto.Unmarshal(body, out); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, out) {
		t.Fatalf("got %v, want %v", out, in)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, b := range [][]byte{nil, {1}, {9, 0, 1}} {
		if _, _, err := Decode(b); err == nil {
			t.Errorf("Decode(%v) = nil error", b)
		}
	}
}

// TestNumbersAreStable pins the wire numbers: changing one breaks every
// stored raft log.
func TestNumbersAreStable(t *testing.T) {
	want := map[Type]uint16{ApplyConfig: 1, Delete: 2, RegisterNode: 3, RemoveNode: 4, AttachWorkload: 5, DetachWorkload: 6, Compact: 7, Batch: 8,
		SetNodeLiveness: 9, DrainNode: 10, ReleaseNode: 11, InitCluster: 12, RevokeCertificate: 13, LabelWorkload: 14}
	for typ, n := range want {
		if uint16(typ) != n {
			t.Errorf("%s = %d, want %d", typ, typ, n)
		}
	}
}

func TestBatchRoundTrip(t *testing.T) {
	a, _ := Encode(RegisterNode, &sdnv1.RegisterNodeRequest{Name: "h1"})
	b, _ := Encode(Compact, &sdnv1.CompactRequest{Revision: 9})
	typ, payload, err := Decode(EncodeBatch([][]byte{a, b}))
	if err != nil || typ != Batch {
		t.Fatalf("decode: %v %v", typ, err)
	}
	cmds, err := DecodeBatch(payload)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 2 || string(cmds[0]) != string(a) || string(cmds[1]) != string(b) {
		t.Fatalf("got %q", cmds)
	}
	if _, err := DecodeBatch([]byte{0x0a, 0x05, 1}); err == nil {
		t.Fatal("truncated batch decoded")
	}
}

// TestFormatsArePinned pins both envelope formats byte for byte: format 1
// is what older logs hold (and what a leader writes while an older server
// is a member), format 2 what this code writes.
func TestFormatsArePinned(t *testing.T) {
	body := []byte{0x0a, 0x02, 'h', '1'} // RegisterNodeRequest{Name: "h1"}
	for _, c := range []struct {
		f    Format
		want []byte
	}{
		{Format1, []byte{1, 0x80, 3, 0x0a, 0x02, 'h', '1'}},
		{Format2, []byte{2, 0x80, 3, 0xda, 0x5d, 0x45, 0xce, 0x0a, 0x02, 'h', '1'}},
	} {
		got := c.f.EncodeRaw(RegisterNode|IgnoreUnknownFlag, body)
		if string(got) != string(c.want) {
			t.Errorf("format %d: % x, want % x", c.f, got, c.want)
		}
		typ, payload, err := Decode(c.want)
		if err != nil || typ != RegisterNode|IgnoreUnknownFlag || string(payload) != string(body) || FormatOf(c.want) != c.f {
			t.Errorf("format %d: Decode = %v %q %v", c.f, typ, payload, err)
		}
	}
	if string(EncodeRaw(Compact, body)) != string(Format2.EncodeRaw(Compact, body)) {
		t.Error("EncodeRaw does not write the latest format")
	}
}

// TestChecksumCatchesEveryByte changes each byte of a format 2 command and
// of a Batch of them, one at a time and to every other value: none may
// decode as a command (the batch's inner commands are checked by the outer
// checksum and their own), but for the version byte turned to 1, which
// reads as a format 1 envelope without a checksum: cluster/fsm refuses
// that one, since its payload (the checksum's bytes, then the payload) is
// not the canonical encoding of any command.
func TestChecksumCatchesEveryByte(t *testing.T) {
	a, _ := Encode(ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "m4242"}, {Name: "m4243"}}})
	b, _ := Encode(Compact, &sdnv1.CompactRequest{Revision: 9})
	for _, enc := range [][]byte{a, EncodeBatch([][]byte{a, b})} {
		for i := range enc {
			for x := 1; x < 256; x++ {
				bad := append([]byte(nil), enc...)
				bad[i] ^= byte(x)
				if i == 0 && bad[0] == byte(Format1) {
					continue
				}
				if _, _, err := Decode(bad); err == nil {
					t.Fatalf("byte %d of % x changed by %#x decoded", i, enc, x)
				}
			}
		}
	}
	a[len(a)-1] ^= 0x20 // "m4243" -> "m424\x13"
	if _, _, err := Decode(a); !errors.Is(err, ErrChecksum) {
		t.Fatalf("damaged payload: %v, want ErrChecksum", err)
	}
}

func TestFormatOneBatchStillDecodes(t *testing.T) {
	a := Format1.EncodeRaw(Compact, []byte{0x08, 0x09})
	typ, payload, err := Decode(Format1.EncodeBatch([][]byte{a}))
	if err != nil || typ != Batch {
		t.Fatalf("decode: %v %v", typ, err)
	}
	cmds, err := DecodeBatch(payload)
	if err != nil || len(cmds) != 1 || string(cmds[0]) != string(a) {
		t.Fatalf("got %q %v", cmds, err)
	}
}
