package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sdn-dev/sdn/cluster/state"
)

func TestDiskAlarmWording(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 12 << 20: "12 MiB", 20 << 30: "20 GiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
	full := &os.PathError{Op: "write", Path: "/var/lib/sdn/state.db", Err: syscall.ENOSPC}
	a := Alarm{File: "/var/lib/sdn/state.db", Device: "/dev/sdb1", Mount: "/var", FSType: "ext4", Free: 12 << 10, Size: 20 << 30, Err: full}
	if got, want := a.Problem(), "no space left on device /dev/sdb1 mounted at /var (ext4, 12 KiB of 20 GiB free) for /var/lib/sdn/state.db"; got != want {
		t.Errorf("Problem() = %q, want %q", got, want)
	}
	a.Err = nil
	if got := a.Problem(); !strings.Contains(got, "12 KiB of 20 GiB free, below the 1 MiB sdnd keeps free") {
		t.Errorf("free-space check's Problem() = %q", got)
	}
	a.Err = &os.PathError{Op: "write", Path: a.File, Err: syscall.EIO}
	if got := a.Problem(); got != "cannot write /var/lib/sdn/state.db on device /dev/sdb1 mounted at /var (ext4, 12 KiB of 20 GiB free): write /var/lib/sdn/state.db: input/output error" ||
		!strings.Contains(a.Remedy(), "fix the cause") {
		t.Errorf("an I/O error: %q; %q", got, a.Remedy())
	}
	err := fmt.Errorf("commit ApplyConfig: %w", &DiskError{Server: "s1", Alarm: Alarm{File: a.File, Err: full}, Outcome: outcomeRefused})
	var de *DiskError
	if !errors.As(err, &de) || !strings.HasPrefix(de.Error(), "server s1: no space left on the file system of /var/lib/sdn (") {
		t.Errorf("DiskError: %v", err)
	}
}

func TestMountOf(t *testing.T) {
	dev, mount, fstype := mountOf(t.TempDir())
	if mount == "" || dev == "" || fstype == "" {
		t.Fatalf("mountOf(a temp dir) = %q %q %q", dev, mount, fstype)
	}
	if got := unescapeMount(`/mnt/with\040space`); got != "/mnt/with space" {
		t.Errorf("unescapeMount = %q", got)
	}
	if !within("/a/b", "/a") || within("/ab", "/a") || !within("/x", "/") {
		t.Error("within")
	}
}

// A damaged state file is not a disk problem: the FSM is told to give up
// (the server stops and rebuilds the file at its next start) and no disk
// alarm goes up.
func TestDamagedStateFileRaisesNoDiskAlarm(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	a := newDiskAlarm("s1", slog.New(slog.DiscardHandler), path)
	w := stateWatch{a, make(chan struct{})}
	err := &state.DamagedError{CorruptError: &state.CorruptError{Path: path, Bucket: "networks", Key: "web", Detail: "fails its checksum"}}
	if w.WriteFailed(path, fmt.Errorf("apply: %w", err)) {
		t.Error("the FSM is told to retry a write to a damaged state file")
	}
	if got := a.Alarms(); len(got) != 0 {
		t.Errorf("a damaged state file raised disk alarms %v", got)
	}
}
