package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"github.com/sdn-dev/sdn/snapshot"
)

func writeSnapshotFile(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	f, err := snapshot.Create(dir, &sdnv1.SnapshotHeader{PayloadKind: snapshot.PayloadState, SchemaVersion: 1, RaftIndex: 812, RaftTerm: 3,
		Revision: 700, ServerId: "s2", CreatedUnixMs: 1700000000000, SdnVersion: "dev", Networks: 4, Nodes: 3, Workloads: 90},
		func(w io.Writer) error { _, err := w.Write([]byte(strings.Repeat("x", 5000))); return err })
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	path := filepath.Join(dir, "backup.snap")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteTo(out); err != nil {
		t.Fatal(err)
	}
	out.Close()
	return path
}

// TestSnapshotInspect reads a file without a server: its header, the
// checksum verified; a damaged file fails with what is wrong.
func TestSnapshotInspect(t *testing.T) {
	path := writeSnapshotFile(t)
	r := sdnctl(t, "", "snapshot", "inspect", path)
	if r.code != 0 {
		t.Fatalf("inspect: %+v", r)
	}
	for _, want := range []string{"REVISION   700", "index 812, term 3", "4 networks, 3 hosts, 90 workloads", "2023-11-14T22:13:20Z", "s2 (sdn dev)", "(verified)", "4.9 KiB"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := sdnctl(t, "", "snapshot", "inspect", path, "-o", "json"); r.code != 0 || !strings.Contains(r.stdout, `"revision": "700"`) {
		t.Fatalf("inspect -o json: %+v", r)
	}

	b, _ := os.ReadFile(path)
	b[len(b)-10] ^= 1
	os.WriteFile(path, b, 0o600)
	if r := sdnctl(t, "", "snapshot", "inspect", path); r.code != 1 || !strings.Contains(r.stderr, "checksum mismatch") {
		t.Fatalf("inspect of a damaged file: %+v", r)
	}
	// A restore refuses it before dialling anyone.
	if r := sdnctl(t, "127.0.0.1:1", "snapshot", "restore", path); r.code != 1 || !strings.Contains(r.stderr, "cannot be restored, nothing was changed: checksum mismatch") {
		t.Fatalf("restore of a damaged file: %+v", r)
	}
	os.WriteFile(path, b[:100], 0o600)
	if r := sdnctl(t, "", "snapshot", "inspect", path); r.code != 1 || !strings.Contains(r.stderr, "truncated") {
		t.Fatalf("inspect of a truncated file: %+v", r)
	}
	if r := sdnctl(t, "", "snapshot", "save"); r.code != 2 || !strings.Contains(r.stderr, "save needs the FILE to write") {
		t.Fatalf("save without a file: %+v", r)
	}
	if r := sdnctl(t, "", "snapshot"); r.code != 2 || !strings.Contains(r.stderr, "save, restore or inspect") {
		t.Fatalf("snapshot alone: %+v", r)
	}
}
