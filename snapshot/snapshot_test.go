package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"google.golang.org/protobuf/proto"
)

func build(t *testing.T, payload []byte) []byte {
	t.Helper()
	f, err := Create(t.TempDir(), &sdnv1.SnapshotHeader{PayloadKind: PayloadState, SchemaVersion: 1, RaftIndex: 42, Revision: 7}, func(w io.Writer) error {
		_, err := w.Write(payload)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b bytes.Buffer
	n, err := f.WriteTo(&b)
	if err != nil {
		t.Fatal(err)
	}
	if n != f.Size() || int64(b.Len()) != f.Size() {
		t.Fatalf("wrote %d bytes, buffer %d, Size %d", n, b.Len(), f.Size())
	}
	return b.Bytes()
}

func TestRoundTrip(t *testing.T) {
	payload := bytes.Repeat([]byte("state "), 100000)
	file := build(t, payload)
	if !bytes.HasPrefix(file, []byte(Magic)) {
		t.Fatalf("file starts %q", file[:8])
	}
	h, err := Verify(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if h.FormatVersion != FormatVersion || h.RaftIndex != 42 || h.Revision != 7 || h.PayloadSize != uint64(len(payload)) || len(Checksum(h)) != 64 {
		t.Fatalf("header %v", h)
	}
	dir := t.TempDir()
	h2, path, err := Read(bytes.NewReader(file), dir)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(h, h2) {
		t.Fatalf("Read header %v, Verify %v", h2, h)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("payload of %d bytes comes back as %d", len(payload), len(got))
	}
}

// TestDamagedFilesAreRefused: every way a file can be damaged is refused
// with an *Error that says what is wrong, and Read leaves no file behind.
func TestDamagedFilesAreRefused(t *testing.T) {
	payload := bytes.Repeat([]byte{1, 2, 3, 4, 5}, 20000)
	file := build(t, payload)
	hl := int(binary.BigEndian.Uint32(file[8:12]))
	payloadAt := 16 + hl
	with := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), file...)) }
	flip := func(i int) []byte { return with(func(b []byte) []byte { b[i] ^= 0x40; return b }) }
	reheader := func(edit func(h *sdnv1.SnapshotHeader)) []byte {
		h := &sdnv1.SnapshotHeader{}
		if err := proto.Unmarshal(file[12:12+hl], h); err != nil {
			t.Fatal(err)
		}
		edit(h)
		hb, _ := proto.Marshal(h)
		b := append([]byte(Magic), binary.BigEndian.AppendUint32(nil, uint32(len(hb)))...)
		b = append(b, hb...)
		b = binary.BigEndian.AppendUint32(b, crc32.Checksum(hb, castagnoli))
		return append(b, file[payloadAt:]...)
	}
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"not a snapshot", []byte("hello, this is some other file entirely"), "not an sdn snapshot"},
		{"a bbolt file", append(make([]byte, 16), payload...), "not an sdn snapshot"},
		{"cut in the magic", file[:5], "truncated"},
		{"cut in the header", file[:14], "truncated"},
		{"cut in the payload", file[:payloadAt+1000], "truncated: the payload has 1000 of its 100000 bytes"},
		{"cut one byte short", file[:len(file)-1], "truncated"},
		{"payload bit flipped", flip(payloadAt + 5000), "checksum mismatch"},
		{"last byte flipped", flip(len(file) - 1), "checksum mismatch"},
		{"header bit flipped", flip(14), "CRC-32C"},
		{"header length huge", with(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 1<<30); return b }), "header length"},
		{"trailing bytes", append(append([]byte(nil), file...), 0), "bytes follow"},
		{"newer format", reheader(func(h *sdnv1.SnapshotHeader) { h.FormatVersion = 2 }), "newer than this release"},
		{"other payload kind", reheader(func(h *sdnv1.SnapshotHeader) { h.PayloadKind = "sql" }), "unknown payload kind"},
		{"size too large", reheader(func(h *sdnv1.SnapshotHeader) { h.PayloadSize++ }), "truncated"},
		{"size too small", reheader(func(h *sdnv1.SnapshotHeader) { h.PayloadSize-- }), "bytes follow"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Verify(bytes.NewReader(c.file))
			var se *Error
			if !errors.As(err, &se) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Verify: %v; want an *Error containing %q", err, c.want)
			}
			dir := t.TempDir()
			if _, _, err := Read(bytes.NewReader(c.file), dir); !errors.As(err, &se) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Read: %v; want an *Error containing %q", err, c.want)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
				t.Fatalf("Read left %v behind", left)
			}
		})
	}
}

type failing struct{ r io.Reader }

func (f failing) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errors.New("connection reset")
	}
	return n, err
}

// A stream that breaks is an I/O error, not a damaged file.
func TestReadErrorsAreNotCorruption(t *testing.T) {
	file := build(t, bytes.Repeat([]byte{9}, 5000))
	_, err := Verify(failing{bytes.NewReader(file[:3000])})
	var se *Error
	if err == nil || errors.As(err, &se) || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("Verify over a broken stream: %v", err)
	}
}
