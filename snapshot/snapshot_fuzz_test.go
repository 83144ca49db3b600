package snapshot

// FuzzRead reads arbitrary bytes as a snapshot file. `make fuzz` runs it
// for long, `make test` briefly; the corpus is under testdata/fuzz/FuzzRead.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"testing/iotest"

	"google.golang.org/protobuf/proto"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// realSnapshot is a file `sdnctl snapshot save` wrote from a server that
// had examples/ applied.
const realSnapshot = "testdata/real.snap"

// FuzzRead checks, for any bytes: ReadHeader, Verify and Read never panic
// and agree, whether the file arrives whole or a byte at a time; a refused
// file is refused with an *Error (the input is in memory, so nothing else
// can fail) and leaves no file behind. A file that is accepted has exactly
// the layout of the package comment, its payload is handed over
// byte for byte, and changing any byte of its header, a spread of its
// payload's bytes, cutting it short or adding a byte makes it refused.
//
// With fixCRC set, the header's CRC is computed over whatever header the
// input holds before it is read, so the fuzzer reaches the checks behind
// the CRC (header decoding, version, kind, sizes).
func FuzzRead(f *testing.F) {
	real, err := os.ReadFile(realSnapshot)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(real, false)
	for _, payload := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("state "), 300)} {
		file := create(f, &sdnv1.SnapshotHeader{PayloadKind: PayloadState, SchemaVersion: 1, RaftIndex: 42, Revision: 7, ClusterId: "C1"}, payload)
		f.Add(file, false)
		f.Add(file[:len(file)-1], true)
	}
	f.Add([]byte(Magic+"\x00\x00\x00\x02\x08\x02\x00\x00\x00\x00"), true) // format 2
	f.Add([]byte{}, false)
	f.Add([]byte("SDNSNAP"), false)
	dir := f.TempDir() // inputs run one at a time in each process
	f.Fuzz(func(t *testing.T, data []byte, fixCRC bool) {
		if fixCRC {
			data = withHeaderCRC(data)
		}
		h, herr := ReadHeader(bytes.NewReader(data))
		vh, verr := Verify(bytes.NewReader(data))
		oh, oerr := Verify(iotest.OneByteReader(bytes.NewReader(data)))
		rh, path, rerr := Read(bytes.NewReader(data), dir)
		if errText(verr) != errText(rerr) || errText(verr) != errText(oerr) {
			t.Fatalf("Verify: %v\nVerify byte by byte: %v\nRead: %v", verr, oerr, rerr)
		}
		if herr != nil && verr == nil {
			t.Fatalf("ReadHeader refused (%v) what Verify accepted", herr)
		}
		if verr != nil {
			var se *Error
			if !errors.As(verr, &se) || se.Error() == "" {
				t.Fatalf("refused in memory with %T %v, want an *Error", verr, verr)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
				t.Fatalf("a refused Read left %v behind", left)
			}
			return
		}
		if !proto.Equal(h, vh) || !proto.Equal(vh, rh) || !proto.Equal(vh, oh) {
			t.Fatalf("headers differ: %v / %v / %v / %v", h, vh, oh, rh)
		}
		payload := checkLayout(t, data, vh)
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("Read handed over %d bytes, the file's payload is %d", len(got), len(payload))
		}
		checkDamageRefused(t, data)
	})
}

func create(t testing.TB, h *sdnv1.SnapshotHeader, payload []byte) []byte {
	t.Helper()
	file, err := Create(t.TempDir(), h, func(w io.Writer) error {
		_, err := w.Write(payload)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var b bytes.Buffer
	if _, err := file.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withHeaderCRC returns data with the CRC after its header set to the
// header's, when data is long enough to hold one.
func withHeaderCRC(data []byte) []byte {
	if len(data) < len(Magic)+4 {
		return data
	}
	hl := int(binary.BigEndian.Uint32(data[len(Magic):]))
	at := len(Magic) + 4 + hl
	if hl > maxHeader || len(data) < at+4 {
		return data
	}
	out := bytes.Clone(data)
	binary.BigEndian.PutUint32(out[at:], crc32.Checksum(out[len(Magic)+4:at], castagnoli))
	return out
}

// checkLayout checks an accepted file against the package comment's layout
// and returns its payload.
func checkLayout(t *testing.T, data []byte, h *sdnv1.SnapshotHeader) []byte {
	t.Helper()
	if !bytes.HasPrefix(data, []byte(Magic)) {
		t.Fatalf("accepted a file that starts %q", data[:min(len(data), 8)])
	}
	hl := uint64(binary.BigEndian.Uint32(data[8:12]))
	if hl == 0 || hl > maxHeader || uint64(len(data)) != 16+hl+h.PayloadSize {
		t.Fatalf("accepted %d bytes with a %d-byte header and a %d-byte payload", len(data), hl, h.PayloadSize)
	}
	hb := data[12 : 12+hl]
	if crc32.Checksum(hb, castagnoli) != binary.BigEndian.Uint32(data[12+hl:]) {
		t.Fatal("accepted a header whose CRC-32C does not match")
	}
	if h.FormatVersion != FormatVersion || h.PayloadKind != PayloadState {
		t.Fatalf("accepted format %d, payload kind %q", h.FormatVersion, h.PayloadKind)
	}
	payload := data[16+hl:]
	if sum := sha256.Sum256(payload); !bytes.Equal(sum[:], h.PayloadSha256) {
		t.Fatal("accepted a payload whose SHA-256 does not match the header's")
	}
	return payload
}

// checkDamageRefused damages an accepted file in ways a disk or a copy
// does and checks that Verify refuses each.
func checkDamageRefused(t *testing.T, data []byte) {
	t.Helper()
	hl := int(binary.BigEndian.Uint32(data[8:12]))
	payloadAt := 16 + hl
	refused := func(what string, damaged []byte) {
		t.Helper()
		var se *Error
		if _, err := Verify(bytes.NewReader(damaged)); !errors.As(err, &se) {
			t.Fatalf("%s: Verify gave %v, want the file refused", what, err)
		}
	}
	positions := make([]int, 0, payloadAt+64)
	for i := range payloadAt {
		positions = append(positions, i)
	}
	if n := len(data) - payloadAt; n > 0 {
		for k := range min(n, 64) {
			positions = append(positions, payloadAt+k*n/min(n, 64))
		}
		positions = append(positions, len(data)-1)
	}
	for _, i := range positions {
		for _, mask := range []byte{0x01, 0x80} {
			d := bytes.Clone(data)
			d[i] ^= mask
			refused("byte "+strconv.Itoa(i)+" changed", d)
		}
	}
	for _, cut := range []int{0, 1, len(Magic), 12, payloadAt - 1, payloadAt, len(data) - 1} {
		if cut >= 0 && cut < len(data) {
			refused("cut at "+strconv.Itoa(cut), data[:cut])
		}
	}
	refused("a byte appended", append(bytes.Clone(data), 0))
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
