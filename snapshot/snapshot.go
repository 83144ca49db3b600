// Package snapshot reads and writes sdn snapshot files: the whole desired
// state of a cluster, saved by `sdnctl snapshot save` and restored by
// `sdnctl snapshot restore`. The server and the CLI share it; it depends on
// nothing but the API's messages.
//
// # File format (version 1)
//
// All integers are big-endian.
//
//	offset   size  content
//	0        8     magic "SDNSNAP\n"
//	8        4     H, the header's length (at most 64 KiB)
//	12       H     the header: an sdn.v1.SnapshotHeader, protobuf-encoded
//	12+H     4     CRC-32C (Castagnoli) of the H header bytes
//	16+H     N     the payload: N = header.payload_size bytes whose SHA-256
//	               is header.payload_sha256
//	16+H+N         end of file: nothing may follow
//
// The header says what the payload is (payload_kind "bbolt-state": the
// servers' state file, a bbolt database, at header.schema_version), where it
// comes from (raft index and term, revision, server, creation time, sdn
// version, cluster id when clusters have one) and how many objects it
// holds. format_version is 1; a reader refuses a newer one. New header
// fields may be added (protobuf skips unknown ones); anything that changes
// how the payload is read bumps format_version.
//
// A file is valid only when all of it is: the magic, a header that decodes
// with its CRC, a payload of exactly the announced length and SHA-256, and
// nothing after it. Read and Verify check all of that before they return
// the header; Read hands the payload over only then.
package snapshot

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"runtime/debug"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"google.golang.org/protobuf/proto"
)

const (
	// Magic starts every snapshot file.
	Magic = "SDNSNAP\n"
	// FormatVersion is the file format this package writes and reads.
	FormatVersion = 1
	// PayloadState is the payload kind of a state file image.
	PayloadState = "bbolt-state"
	// maxHeader bounds the header's length.
	maxHeader = 64 << 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Error is a snapshot file that cannot be used; nothing was changed
// because of it.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

func corrupt(format string, args ...any) error {
	return &Error{msg: fmt.Sprintf(format, args...)}
}

// Version is the running binary's module version ("dev" when built from a
// checkout), recorded in the headers it writes.
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// File is a snapshot being written: the payload sits in a temporary file
// until the whole snapshot file is streamed out with WriteTo.
type File struct {
	Header *sdnv1.SnapshotHeader
	prefix []byte // magic, header length, header, CRC
	f      *os.File
}

// Create builds a snapshot file from h and the payload that write
// produces. The payload goes to a temporary file in dir (the header needs
// its length and checksum before it can be written); h gets format version,
// payload size and SHA-256 filled in. Close removes the temporary file.
func Create(dir string, h *sdnv1.SnapshotHeader, write func(io.Writer) error) (*File, error) {
	f, err := os.CreateTemp(dir, "snapshot-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("snapshot: temporary file: %w", err)
	}
	fail := func(err error) (*File, error) {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	sum := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, sum)}
	bw := bufio.NewWriterSize(cw, 256<<10)
	if err := write(bw); err != nil {
		return fail(fmt.Errorf("snapshot: write payload: %w", err))
	}
	if err := bw.Flush(); err != nil {
		return fail(fmt.Errorf("snapshot: write payload: %w", err))
	}
	h = proto.Clone(h).(*sdnv1.SnapshotHeader)
	h.FormatVersion = FormatVersion
	h.PayloadSize = uint64(cw.n)
	h.PayloadSha256 = sum.Sum(nil)
	prefix, err := encodePrefix(h)
	if err != nil {
		return fail(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	return &File{Header: h, prefix: prefix, f: f}, nil
}

// Size is the whole file's length in bytes.
func (f *File) Size() int64 { return int64(len(f.prefix)) + int64(f.Header.PayloadSize) }

// WriteTo writes the whole snapshot file to w, once.
func (f *File) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(f.prefix)
	if err != nil {
		return int64(n), err
	}
	m, err := io.Copy(w, f.f)
	return int64(n) + m, err
}

// Close removes the temporary payload.
func (f *File) Close() error {
	err := f.f.Close()
	os.Remove(f.f.Name())
	return err
}

func encodePrefix(h *sdnv1.SnapshotHeader) ([]byte, error) {
	hb, err := proto.MarshalOptions{Deterministic: true}.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("snapshot: encode header: %w", err)
	}
	if len(hb) > maxHeader {
		return nil, fmt.Errorf("snapshot: header of %d bytes is over the %d limit", len(hb), maxHeader)
	}
	b := make([]byte, 0, len(Magic)+8+len(hb))
	b = append(b, Magic...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(hb)))
	b = append(b, hb...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(hb, castagnoli)), nil
}

// ReadHeader reads and checks a file's magic and header from r, leaving r
// at the payload's first byte. The payload is not checked.
func ReadHeader(r io.Reader) (*sdnv1.SnapshotHeader, error) {
	var fixed [len(Magic) + 4]byte
	n, err := io.ReadFull(r, fixed[:])
	switch {
	case err != nil && !short(err):
		return nil, fmt.Errorf("snapshot: read header: %w", err)
	case n == 0:
		return nil, corrupt("the file is empty; it is not an sdn snapshot")
	case !bytes.HasPrefix(fixed[:n], []byte(Magic)) && !bytes.HasPrefix([]byte(Magic), fixed[:n]):
		return nil, corrupt("not an sdn snapshot file (it does not start with %q); give a file written by `sdnctl snapshot save`", Magic[:7])
	case err != nil:
		return nil, corrupt("truncated: the file ends after %d bytes, inside its header; it is not a whole sdn snapshot", n)
	}
	hl := binary.BigEndian.Uint32(fixed[len(Magic):])
	if hl == 0 || hl > maxHeader {
		return nil, corrupt("corrupted: the header length %d is out of range (1 to %d)", hl, maxHeader)
	}
	hb := make([]byte, hl+4)
	if n, err := io.ReadFull(r, hb); err != nil {
		if !short(err) {
			return nil, fmt.Errorf("snapshot: read header: %w", err)
		}
		return nil, corrupt("truncated: the file ends inside its header (%d of %d bytes)", n, len(hb))
	}
	if want, got := binary.BigEndian.Uint32(hb[hl:]), crc32.Checksum(hb[:hl], castagnoli); want != got {
		return nil, corrupt("corrupted: the header's CRC-32C is %08x, the file says %08x", got, want)
	}
	h := &sdnv1.SnapshotHeader{}
	if err := proto.Unmarshal(hb[:hl], h); err != nil {
		return nil, corrupt("corrupted: the header does not decode: %v", err)
	}
	switch {
	case h.FormatVersion == 0:
		return nil, corrupt("corrupted: the header has no format version")
	case h.FormatVersion > FormatVersion:
		return nil, corrupt("snapshot format %d is newer than this release reads (%d); use the sdn release that wrote it or a newer one", h.FormatVersion, FormatVersion)
	case h.PayloadKind != PayloadState:
		return nil, corrupt("unknown payload kind %q (want %q)", h.PayloadKind, PayloadState)
	case len(h.PayloadSha256) != sha256.Size:
		return nil, corrupt("corrupted: the header's payload SHA-256 has %d bytes, want %d", len(h.PayloadSha256), sha256.Size)
	}
	return h, nil
}

// Verify checks a whole snapshot file read from r (header, payload length
// and SHA-256, nothing after the payload) and returns its header. The
// payload is read and discarded.
func Verify(r io.Reader) (*sdnv1.SnapshotHeader, error) {
	h, err := ReadHeader(r)
	if err != nil {
		return nil, err
	}
	return h, copyPayload(io.Discard, r, h)
}

// Read checks a whole snapshot file read from r and copies its payload to
// a temporary file in dir. Only a file that is valid throughout is
// accepted: then it returns the header and the payload's path, which the
// caller removes. On any error nothing is left behind.
func Read(r io.Reader, dir string) (*sdnv1.SnapshotHeader, string, error) {
	h, err := ReadHeader(r)
	if err != nil {
		return nil, "", err
	}
	f, err := os.CreateTemp(dir, "restore-*.tmp")
	if err != nil {
		return nil, "", fmt.Errorf("snapshot: temporary file: %w", err)
	}
	if err := copyPayload(f, r, h); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return nil, "", fmt.Errorf("snapshot: %w", err)
	}
	return h, f.Name(), nil
}

// copyPayload copies exactly the payload the header announces from r to w,
// checking its SHA-256 and that nothing follows it.
func copyPayload(w io.Writer, r io.Reader, h *sdnv1.SnapshotHeader) error {
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, sum), io.LimitReader(r, int64(h.PayloadSize)))
	if err != nil {
		return fmt.Errorf("snapshot: read payload: %w", err)
	}
	if uint64(n) < h.PayloadSize {
		return corrupt("truncated: the payload has %d of its %d bytes (the file was cut short; use a complete copy)", n, h.PayloadSize)
	}
	var extra [1]byte
	if m, err := io.ReadFull(r, extra[:]); m > 0 {
		return corrupt("corrupted: bytes follow the %d-byte payload; the file is not one snapshot", h.PayloadSize)
	} else if err != nil && !short(err) {
		return fmt.Errorf("snapshot: read payload: %w", err)
	}
	if got := sum.Sum(nil); !bytes.Equal(got, h.PayloadSha256) {
		return corrupt("checksum mismatch: the payload's SHA-256 is %s, the header says %s; the file is corrupted (use another copy)", hex.EncodeToString(got)[:16]+"…", hex.EncodeToString(h.PayloadSha256)[:16]+"…")
	}
	return nil
}

// short reports whether a read error means the input ended.
func short(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// Checksum renders a header's payload SHA-256 in hex.
func Checksum(h *sdnv1.SnapshotHeader) string { return hex.EncodeToString(h.GetPayloadSha256()) }

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
