package cluster

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
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
