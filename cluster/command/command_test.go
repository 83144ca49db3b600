package command

import (
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
		SetNodeLiveness: 9, DrainNode: 10, ReleaseNode: 11, InitCluster: 12, RevokeCertificate: 13}
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
