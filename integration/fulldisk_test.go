package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// A full disk is an alarm, not a crash (docs/design.md, "A full disk").
// These tests run a real `sdnd --dev` whose --data-dir is a small tmpfs and
// whose raft/ directory is another, so that the state file (state.db) and
// the raft log (raft/raft.db) can be filled one at a time with a filler
// file.

// mountTmpfs mounts a tmpfs of size (e.g. "16m") at dir, creating it, and
// unmounts it when the test ends.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs of %s at %s: %v: %s", size, dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
}

// freeBytes is the free space of the file system dir is on.
func freeBytes(t *testing.T, dir string) uint64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// fillDisk grows the filler file in dir until the file system has leave
// bytes free (about: tmpfs counts pages), or none when leave is 0.
func fillDisk(t *testing.T, dir string, leave uint64) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "filler"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for free := freeBytes(t, dir); free > leave; free = freeBytes(t, dir) {
		n := min(uint64(len(buf)), free-leave)
		if _, err := f.Write(buf[:n]); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatal(err)
		}
	}
}

func freeDisk(t *testing.T, dir string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
}

// fullDiskServer is a `sdnd --dev` on two small tmpfs: its data dir (the
// state file) and its raft/ directory (the raft log).
type fullDiskServer struct {
	*devServer
	stateDir, raftDir string
}

func startFullDiskServer(t *testing.T, stateSize, raftSize string) *fullDiskServer {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	mountTmpfs(t, data, stateSize)
	mountTmpfs(t, filepath.Join(data, "raft"), raftSize)
	s := &fullDiskServer{devServer: &devServer{addr: freePort(t), dataDir: data, bin: binaries(t)}, stateDir: data, raftDir: filepath.Join(data, "raft")}
	s.start(t)
	return s
}

// restart starts the server again on its data dir, without waiting for a
// leader (a full raft log may keep it from electing one): it waits for the
// API to answer a stale read.
func (s *fullDiskServer) restart(t *testing.T) {
	t.Helper()
	s.log = &bytes.Buffer{}
	s.cmd = exec.Command(filepath.Join(s.bin, "sdnd"), "--dev", "--data-dir", s.dataDir, "--listen", s.addr, "--raft-addr", freePort(t), "--node-name", "dev", "--node-down-after", "1h")
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop() })
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if exited(s.cmd.Process.Pid) {
			t.Fatalf("sdnd exited on a full disk instead of serving reads; its log:\n%s", tailString(s.log.String(), 30))
		}
		if _, _, code := s.sdnctl(t, "get", "networks", "--stale"); code == 0 {
			// Still up a while later: no crash loop.
			time.Sleep(2 * time.Second)
			if exited(s.cmd.Process.Pid) {
				t.Fatalf("sdnd exited on a full disk after it started; its log:\n%s", tailString(s.log.String(), 30))
			}
			return
		}
	}
	t.Fatalf("sdnd on a full disk does not answer stale reads; its log:\n%s", tailString(s.log.String(), 30))
}

// exited reports whether the child pid has exited (it is a zombie until
// waited for).
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(rest, "Z")
}

// bigApply applies n networks named prefix-NNNNN, padded with a label, in
// one call straight over gRPC: one raft entry of about n*100 bytes.
func (s *fullDiskServer) bigApply(t *testing.T, prefix string, n int) error {
	t.Helper()
	req := &sdnv1.ApplyRequest{}
	pad := strings.Repeat("x", 60)
	for i := range n {
		req.Networks = append(req.Networks, &sdnv1.Network{Name: fmt.Sprintf("%s-%05d", prefix, i), Labels: map[string]string{"pad": pad}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := sdnv1.NewConfigServiceClient(s.conn(t)).Apply(ctx, req)
	return err
}

// has reports whether a stale read lists the network.
func (s *fullDiskServer) has(t *testing.T, network string) bool {
	out, _, code := s.sdnctl(t, "get", "networks", "--stale")
	return code == 0 && strings.Contains(out, network+" ")
}

func wantAll(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Fatalf("%s: %q lacks %q", what, got, w)
		}
	}
}

// The state file's disk fills under a write: the raft entry is committed,
// but the state file cannot take it. sdnd does not panic (it did, and again
// at every restart): the write is told its outcome is unknown, the next are
// refused naming the device and state.db, stale reads answer, a
// linearizable read says why it cannot, and sdnctl status shows the alarm.
// Space returns: the entry is applied and writes work, without a restart.
// A restart with the disk full to the last byte comes up serving stale
// reads and the alarm, and applies the entry once space returns.
func TestFullDiskStateFile(t *testing.T) {
	s := startFullDiskServer(t, "12m", "64m")
	s.mustSdnctl(t, "apply", "-f", "../examples")
	deviceFile := []string{"no space left on device tmpfs mounted at " + s.stateDir + " (tmpfs, ", "for " + filepath.Join(s.stateDir, "state.db")}

	// Room for the free-space check (1 MiB), not for the write.
	fillDisk(t, s.stateDir, 1536<<10)
	err := s.bigApply(t, "big", 12000)
	if err == nil {
		t.Fatal("a write larger than the state file's free space was acknowledged")
	}
	wantAll(t, "the write the state file could not take", err.Error(), append(deviceFile, "whether this write takes effect is unknown", "free space on that device")...)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(s.log.String(), "disk alarm: no space left on device tmpfs"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("sdnd's log does not say its disk is full:\n%s", tailString(s.log.String(), 20))
		}
	}
	_, errs, code := s.sdnctl(t, "apply", "-f", "../examples/networks.hcl")
	if code == 0 {
		t.Fatal("a write was accepted while the state file's disk is full")
	}
	wantAll(t, "sdnctl apply while the state file's disk is full", errs, append(deviceFile, "writes are refused, and this one changed nothing", "writes resume by themselves, without a restart")...)
	t.Logf("state.db full: the write it could not take got:\n%v\nthe next one:\n%s", err, errs)
	if out, errs, code := s.sdnctl(t, "get", "networks", "--stale"); code != 0 || !strings.Contains(out, "proj1") {
		t.Fatalf("stale read while the state file's disk is full: %d %s %s", code, out, errs)
	}
	_, errs, code = s.sdnctl(t, "get", "networks")
	if code == 0 {
		t.Fatal("a linearizable read answered although the state lags the log")
	}
	wantAll(t, "linearizable read while the state file's disk is full", errs, append(deviceFile, "ask with --stale")...)
	t.Logf("state.db full: a linearizable read got:\n%s", errs)
	out, errs, _ := s.sdnctl(t, "status")
	wantAll(t, "sdnctl status while the state file's disk is full", out, "SERVER   DISK-ALARM", "dev      "+deviceFile[0])
	t.Logf("state.db full: sdnctl status:\n%s%s", out, errs)

	// Space returns: the committed entry is applied, writes work.
	freeDisk(t, s.stateDir)
	waitFor(t, 10*time.Second, "the stuck entry to be applied once space returned", func() bool { return s.has(t, "big-11999") })
	s.mustSdnctl(t, "apply", "-f", "../examples/networks.hcl")
	s.mustSdnctl(t, "get", "networks")
	if out := s.mustSdnctl(t, "cluster", "members"); strings.Contains(out, "disk alarm") {
		t.Fatalf("the alarm stays after space returned:\n%s", out)
	}

	// Stuck again, killed, and started on a disk full to the last byte.
	fillDisk(t, s.stateDir, 1536<<10)
	if err := s.bigApply(t, "again", 12000); err == nil || !strings.Contains(err.Error(), "whether this write takes effect is unknown") {
		t.Fatalf("second write on a full disk: %v", err)
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	fillDisk(t, s.stateDir, 0)
	s.restart(t)
	if strings.Contains(s.log.String(), "panic") {
		t.Fatalf("sdnd panicked on a full disk:\n%s", tailString(s.log.String(), 30))
	}
	waitFor(t, 10*time.Second, "sdnctl status to show the alarm after the restart", func() bool {
		out, _, _ := s.sdnctl(t, "status")
		return strings.Contains(out, "dev      "+deviceFile[0])
	})
	if _, errs, code := s.sdnctl(t, "apply", "-f", "../examples/networks.hcl"); code == 0 || !strings.Contains(errs, deviceFile[1]) {
		t.Fatalf("a write after the restart on a full disk: %d %s", code, errs)
	}
	freeDisk(t, s.stateDir)
	waitFor(t, 10*time.Second, "the entry committed before the restart to be applied", func() bool { return s.has(t, "again-11999") })
	s.mustSdnctl(t, "apply", "-f", "../examples/networks.hcl")

	// Stopped cleanly, and started on a disk full to the last byte.
	s.stop()
	fillDisk(t, s.stateDir, 0)
	s.restart(t)
	_, errs, code = s.sdnctl(t, "apply", "-f", "../examples/networks.hcl")
	if code == 0 || !strings.Contains(errs, deviceFile[1]) {
		t.Fatalf("a write after a clean restart on a full disk: %d %s", code, errs)
	}
	t.Logf("state.db full at start: a write got:\n%s", errs)
	freeDisk(t, s.stateDir)
	waitFor(t, 10*time.Second, "writes to work once space returned", func() bool {
		_, _, code := s.sdnctl(t, "apply", "-f", "../examples/networks.hcl")
		return code == 0
	})
}

// The raft log's disk fills under a write: raft cannot append it, and
// steps down. The write is told it was not stored, naming the device and
// raft.db; with the disk full to the last byte, writes are refused naming
// them (not "no raft leader is known"), stale reads answer, and writes work
// again once space returns, without a restart. A restart on the full disk
// comes up serving stale reads and refusing writes with the alarm.
func TestFullDiskRaftLog(t *testing.T) {
	s := startFullDiskServer(t, "64m", "12m")
	s.mustSdnctl(t, "apply", "-f", "../examples")
	deviceFile := []string{"no space left on device tmpfs mounted at " + s.raftDir + " (tmpfs, ", "for " + filepath.Join(s.raftDir, "raft.db")}

	fillDisk(t, s.raftDir, 1536<<10)
	err := s.bigApply(t, "big", 20000)
	if err == nil {
		t.Fatal("a write larger than the raft log's free space was acknowledged")
	}
	wantAll(t, "the write the raft log could not take", err.Error(), append(deviceFile, "this write was not stored and changed nothing")...)
	t.Logf("raft.db full: the write it could not take got:\n%v", err)
	fillDisk(t, s.raftDir, 0)
	_, errs, code := s.sdnctl(t, "--timeout", "8s", "apply", "-f", "../examples/networks.hcl")
	if code == 0 {
		t.Fatal("a write was accepted while the raft log's disk is full")
	}
	wantAll(t, "sdnctl apply while the raft log's disk is full", errs, append(deviceFile, "free space on that device")...)
	if strings.Contains(errs, "no raft leader is known (an election") {
		t.Fatalf("the refusal blames the election, not the disk: %s", errs)
	}
	t.Logf("raft.db full: the next write got:\n%s", errs)
	if out, errs, code := s.sdnctl(t, "get", "networks", "--stale"); code != 0 || !strings.Contains(out, "proj1") || strings.Contains(out, "big-") {
		t.Fatalf("stale read while the raft log's disk is full: %d %s %s", code, out, errs)
	}
	if out, errs, code := s.sdnctl(t, "get", "networks"); code == 0 {
		t.Logf("a linearizable read answered with the raft log's disk full (a leader could still be elected):\n%s", out)
	} else {
		wantAll(t, "linearizable read while the raft log's disk is full", errs, deviceFile...)
		t.Logf("raft.db full: a linearizable read got:\n%s", errs)
	}
	out, _, _ := s.sdnctl(t, "status")
	wantAll(t, "sdnctl status while the raft log's disk is full", out, "SERVER   DISK-ALARM", "dev      "+deviceFile[0])

	freeDisk(t, s.raftDir)
	waitFor(t, 20*time.Second, "writes to work once space returned", func() bool {
		_, _, code := s.sdnctl(t, "apply", "-f", "../examples/networks.hcl")
		return code == 0
	})
	s.mustSdnctl(t, "get", "networks")

	// A restart on a raft log disk full to the last byte.
	s.stop()
	fillDisk(t, s.raftDir, 0)
	s.restart(t)
	if _, errs, code := s.sdnctl(t, "--timeout", "8s", "apply", "-f", "../examples/networks.hcl"); code == 0 || !strings.Contains(errs, deviceFile[1]) {
		t.Fatalf("a write after the restart on a full raft log disk: %d %s", code, errs)
	} else {
		t.Logf("raft.db full at start: a write got:\n%s", errs)
	}
	freeDisk(t, s.raftDir)
	waitFor(t, 20*time.Second, "writes to work once space returned after the restart", func() bool {
		_, _, code := s.sdnctl(t, "apply", "-f", "../examples/networks.hcl")
		return code == 0
	})
}

// In a cluster, the leader's disk fills: it refuses the write it is asked
// for, naming its device, and hands leadership over, so that the servers
// with room go on taking writes and answering linearizable reads, through
// it too; its stale reads answer, members and status show its alarm, and
// it catches up once space returns.
func TestFullDiskLeaderHandsOver(t *testing.T) {
	ps := []*serverProc{newServerProc(t, "s1"), newServerProc(t, "s2"), newServerProc(t, "s3")}
	full := ps[0]
	mountTmpfs(t, full.dataDir, "16m")
	for i, p := range ps {
		p.args = []string{"--bootstrap-expect", "3", "--join", ps[(i+1)%3].addr}
		p.start(t)
	}
	waitFor(t, 30*time.Second, "three healthy members", func() bool {
		m, ok := members(t, full.addr, false)
		return ok && m.healthy(3)
	}, ps...)
	if out, errs, code := full.sdnctl(t, "apply", "-f", "../examples"); code != 0 {
		t.Fatalf("apply: %d %s %s", code, out, errs)
	}
	if m, _ := members(t, full.addr, false); m.LeaderID != full.id {
		if out, errs, code := full.sdnctl(t, "cluster", "transfer-leader", full.id); code != 0 {
			t.Fatalf("transfer-leader %s: %d %s %s", full.id, code, out, errs)
		}
	}
	dir := t.TempDir()
	hcl := func(name string) string {
		return writeFile(t, dir, name+".hcl", "network \""+name+"\" {}\n")
	}

	fillDisk(t, full.dataDir, 0)
	_, errs, code := full.sdnctl(t, "apply", "-f", hcl("full1"))
	if code == 0 {
		t.Fatal("the leader took a write with its disk full")
	}
	// The leader refuses the write, or, when its disk alarm already made
	// it step down (it hands over at once), says no leader is known: both
	// say nothing changed.
	refused := "writes are refused, and this one changed nothing"
	if strings.Contains(errs, "no raft leader is known") {
		refused = "refused, nothing changed"
	}
	wantAll(t, "a write to the leader with its disk full", errs, "server s1: no space left on device tmpfs mounted at "+full.dataDir, refused)
	t.Logf("the leader's disk full: a write got:\n%s", errs)
	waitFor(t, 20*time.Second, "another server to lead", func() bool {
		m, ok := members(t, ps[1].addr, true)
		return ok && m.LeaderID != "" && m.LeaderID != full.id
	}, ps...)
	if out, errs, code := full.sdnctl(t, "apply", "-f", hcl("full2")); code != 0 || !strings.Contains(out, "full2") {
		t.Fatalf("a write through %s once another server leads: %d %s %s", full.id, code, out, errs)
	}
	if out, errs, code := full.sdnctl(t, "get", "networks"); code != 0 || !strings.Contains(out, "full2") {
		t.Fatalf("a linearizable read through %s once another server leads: %d %s %s", full.id, code, out, errs)
	}
	if out, errs, code := full.sdnctl(t, "get", "networks", "--stale"); code != 0 || !strings.Contains(out, "proj1") {
		t.Fatalf("%s's stale read with its disk full: %d %s %s", full.id, code, out, errs)
	}
	out, errs, _ := full.sdnctl(t, "status")
	wantAll(t, "sdnctl status with s1's disk full", out, "SERVER   DISK-ALARM", "s1       no space left on device tmpfs mounted at "+full.dataDir)
	t.Logf("sdnctl status with s1's disk full:\n%s%s", out, errs)
	out, _, _ = full.sdnctl(t, "cluster", "members")
	wantAll(t, "sdnctl cluster members with s1's disk full", out, "disk alarm: no space left on device tmpfs mounted at "+full.dataDir)
	t.Logf("sdnctl cluster members with s1's disk full:\n%s", out)

	freeDisk(t, full.dataDir)
	waitFor(t, 20*time.Second, full.id+" to catch up once space returned", func() bool {
		out, _, code := full.sdnctl(t, "get", "networks", "--stale")
		return code == 0 && strings.Contains(out, "full2")
	}, ps...)
	waitFor(t, 10*time.Second, "the alarm to clear", func() bool {
		out, _, code := full.sdnctl(t, "cluster", "members")
		return code == 0 && !strings.Contains(out, "disk alarm")
	}, ps...)
}
