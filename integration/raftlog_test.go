package integration

// A damaged raft log with a real `sdnd --dev` (no root needed): the bug a
// tester found (one network's name changed in raft.db, state.db deleted:
// sdnd came up "ready" without the 5,000 networks of the changed entry,
// saying nothing), a raft.db cut to half (a bbolt panic naming no file),
// and many single bytes changed at random (raftsweep_test.go).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// manyNetworksHCL declares networks m0..m(n-1).
func manyNetworksHCL(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "network \"m%d\" {}\n", i)
	}
	return b.String()
}

// raftDBOf is the raft log of a data directory.
func raftDBOf(dataDir string) string { return filepath.Join(dataDir, "raft", "raft.db") }

// logEntryHolding is the index of the command entry of a stopped server's
// raft log whose data contains b (read with raft-boltdb, read-only).
func logEntryHolding(t *testing.T, path string, b []byte) uint64 {
	t.Helper()
	s, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bolt.Options{ReadOnly: true, Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	for i := first; i <= last; i++ {
		var l raft.Log
		if s.GetLog(i, &l) == nil && l.Type == raft.LogCommand && bytes.Contains(l.Data, b) {
			return i
		}
	}
	t.Fatalf("no entry of %s holds %q", path, b)
	return 0
}

// flipEverywhere changes, at every place of the file where find occurs,
// the byte at offset off of it to to (stale copies in bbolt's free pages
// included: one of them is the live one).
func flipEverywhere(t *testing.T, path string, find []byte, off int, to byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := bytes.Count(b, find)
	if n == 0 {
		t.Fatalf("%q not in %s", find, path)
	}
	for at := bytes.Index(b, find); at >= 0; at = bytes.Index(b, find) {
		b[at+off] = to
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// startOutcome is what an sdnd started on a damaged data directory did:
// exited (with its code), or became healthy and serves.
type startOutcome struct {
	exited  bool
	code    int
	healthy bool
	log     string
}

// startDamaged starts sdnd on d's data directory and waits until it exits
// or serves (healthy), for up to wait. A healthy one keeps running (the
// test's cleanup stops it).
func (d *devServer) startDamaged(t *testing.T, wait time.Duration) startOutcome {
	t.Helper()
	d.log = &bytes.Buffer{}
	d.cmd = exec.Command(filepath.Join(d.bin, "sdnd"), "--dev", "--data-dir", d.dataDir, "--listen", d.addr, "--raft-addr", freePort(t),
		"--node-name", "dev", "--node-down-after", "1h")
	log := newSyncBuffer()
	d.cmd.Stdout, d.cmd.Stderr = log, log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.stopWait)
	exited := make(chan struct{})
	go func() { d.cmd.Wait(); close(exited) }()
	h := healthpb.NewHealthClient(d.conn(t))
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); {
		select {
		case <-exited:
			return startOutcome{exited: true, code: d.cmd.ProcessState.ExitCode(), log: log.String()}
		case <-time.After(50 * time.Millisecond):
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		res, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && res.Status == healthpb.HealthCheckResponse_SERVING {
			return startOutcome{healthy: true, log: log.String()}
		}
	}
	return startOutcome{log: log.String()}
}

// stopWait stops a server started by startDamaged (whose Wait runs in its
// own goroutine, so devServer.stop would wait a second time) and waits
// until it is gone.
func (d *devServer) stopWait() {
	if d.cmd == nil || d.cmd.Process == nil || d.cmd.ProcessState != nil {
		return
	}
	d.cmd.Process.Signal(os.Interrupt)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if d.cmd.ProcessState != nil {
			return
		}
	}
	d.cmd.Process.Kill()
	for d.cmd.ProcessState == nil {
		time.Sleep(20 * time.Millisecond)
	}
}

// networkCount is how many networks the server serves.
func (d *devServer) networkCount(t *testing.T) int {
	t.Helper()
	out, _, code := d.sdnctl(t, "get", "networks", "-o", "json")
	var list []json.RawMessage
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
		return -1
	}
	return len(list)
}

// wantDamagedLogStop fails t unless o is sdnd stopping with the message
// about its raft log: naming the file, containing want, saying what to do,
// and no panic.
func wantDamagedLogStop(t *testing.T, d *devServer, o startOutcome, want string, networks int) {
	t.Helper()
	if o.healthy {
		t.Fatalf("sdnd started ready on a damaged raft log, serving %d networks of %d; its log:\n%s", d.networkCount(t), networks, tailString(o.log, 15))
	}
	if !o.exited {
		t.Fatalf("sdnd neither stopped nor served; its log:\n%s", tailString(o.log, 15))
	}
	for _, s := range []string{"raft log " + raftDBOf(d.dataDir), want, "this server stopped rather than serve a state that may be wrong",
		"run `sdnctl cluster remove dev` against a healthy server"} {
		if !strings.Contains(o.log, s) {
			t.Errorf("the log lacks %q", s)
		}
	}
	if o.code == 0 || strings.Contains(o.log, "panic:") || strings.Contains(o.log, "goroutine ") {
		t.Errorf("exit code %d (want non-zero, no panic)", o.code)
	}
	if t.Failed() {
		t.Fatalf("sdnd's log:\n%s", o.log)
	}
	t.Logf("sdnd says:\n%s", tailString(o.log, 1))
}

// fiveThousandNetworks is a stopped `sdnd --dev` data directory holding
// the examples and networks m0..m4999 (one raft entry), and the count.
func fiveThousandNetworks(t *testing.T) (*devServer, int) {
	t.Helper()
	d := startDev(t)
	d.mustSdnctl(t, "apply", "-f", "../examples")
	d.mustSdnctl(t, "apply", "-f", writeFile(t, t.TempDir(), "many.hcl", manyNetworksHCL(5000)))
	n := d.networkCount(t)
	if n != 5003 {
		t.Fatalf("serving %d networks before the damage, want 5003", n)
	}
	d.stop()
	return d, n
}

// TestDamagedRaftEntryStopsSdnd is the tester's bug: the name of network
// m4242 changed to M4242 in raft.db (same length), state.db deleted so the
// log is replayed. sdnd used to start ready with 3 networks of 5,003: the
// replayed entry failed validation and was refused whole, and nothing was
// logged. Now the entry's checksum does not match: sdnd stops (exit 1)
// naming raft.db, the entry's index and what to do.
func TestDamagedRaftEntryStopsSdnd(t *testing.T) {
	d, n := fiveThousandNetworks(t)
	raftDB := raftDBOf(d.dataDir)
	name := []byte("\x0a\x05m4242") // Network.name in the entry's payload
	index := logEntryHolding(t, raftDB, name)
	flipEverywhere(t, raftDB, name, 2, 'M')
	if err := os.Remove(filepath.Join(d.dataDir, "state.db")); err != nil {
		t.Fatal(err)
	}
	o := d.startDamaged(t, 30*time.Second)
	wantDamagedLogStop(t, d, o, fmt.Sprintf("raft log %s: entry %d is damaged: command envelope", raftDB, index), n)
	if !strings.Contains(o.log, "checksum mismatch") {
		t.Errorf("the message does not say the checksum does not match")
	}
}

// TestTruncatedRaftDBStopsSdnd cuts raft.db to half its size (with
// state.db kept, then deleted): sdnd used to die in a bbolt assertion
// panic naming no file. Now it stops saying the file is cut short, and
// what to do.
func TestTruncatedRaftDBStopsSdnd(t *testing.T) {
	d, n := fiveThousandNetworks(t)
	raftDB := raftDBOf(d.dataDir)
	fi, err := os.Stat(raftDB)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(raftDB, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	for _, dropState := range []bool{false, true} {
		if dropState {
			if err := os.Remove(filepath.Join(d.dataDir, "state.db")); err != nil {
				t.Fatal(err)
			}
		}
		o := d.startDamaged(t, 30*time.Second)
		wantDamagedLogStop(t, d, o, fmt.Sprintf("raft log %s is damaged: the file is cut short: it is %d bytes long", raftDB, fi.Size()/2), n)
	}
}
