package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The servers' connections to each other (cluster/api's Peers): a follower
// forwards writes to the leader over them, and the leader asks every server
// for its own report (`cluster members`) over them.

// threeServers starts three `sdnd --server` that form a cluster, and waits
// until all three are healthy.
func threeServers(t *testing.T) ([]*serverProc, membersOf) {
	t.Helper()
	ps := []*serverProc{newServerProc(t, "s1"), newServerProc(t, "s2"), newServerProc(t, "s3")}
	for i, p := range ps {
		p.args = []string{"--bootstrap-expect", "3", "--join", ps[(i+1)%3].addr}
		p.start(t)
	}
	var m membersOf
	waitFor(t, 30*time.Second, "three healthy members", func() bool {
		var ok bool
		m, ok = members(t, ps[0].addr, false)
		return ok && m.healthy(3)
	}, ps...)
	return ps, m
}

// A leader frozen with SIGSTOP keeps its TCP connections open, so a write a
// follower forwards to it hung until the caller's deadline (29.8 s of
// sdnctl's 30), although a new leader was elected after a second. The
// follower sends it to the new leader instead: writes sent through a
// follower right after the freeze, and once the new leader is known,
// succeed.
func TestWriteThroughFollowerWhileLeaderFrozen(t *testing.T) {
	ps, m := threeServers(t)
	ok := false
	all := ps[0].addr + "," + ps[1].addr + "," + ps[2].addr
	if out, errs, code := sdnctlAt(t, all, "apply", "-f", "../examples"); code != 0 {
		t.Fatalf("apply: %d %s %s", code, out, errs)
	}
	var leader, follower *serverProc
	for _, p := range ps {
		switch {
		case p.id == m.LeaderID:
			leader = p
		case follower == nil:
			follower = p
		}
	}
	dir := t.TempDir()
	hcl := func(name string) string {
		p := filepath.Join(dir, name+".hcl")
		if err := os.WriteFile(p, []byte("network \""+name+"\" {}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	first, second := hcl("frozen1"), hcl("frozen2")

	if err := leader.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { leader.cmd.Process.Signal(syscall.SIGCONT) })
	frozen := time.Now()
	out, errs, code := follower.sdnctl(t, "apply", "-f", first)
	if code != 0 || !strings.Contains(out, "frozen1") {
		t.Fatalf("a write through follower %s right after leader %s froze: exit %d\n%s%s", follower.id, leader.id, code, out, errs)
	}
	t.Logf("write through %s, sent right after %s froze, acknowledged %s after the freeze", follower.id, leader.id, time.Since(frozen).Round(time.Millisecond))
	waitFor(t, 10*time.Second, "a new leader", func() bool {
		m, ok := members(t, follower.addr, true)
		return ok && m.LeaderID != "" && m.LeaderID != leader.id
	}, follower)
	start := time.Now()
	if out, errs, code := follower.sdnctl(t, "apply", "-f", second); code != 0 || !strings.Contains(out, "frozen2") {
		t.Fatalf("a write through follower %s once a new leader is known: exit %d\n%s%s", follower.id, code, out, errs)
	}
	t.Logf("write through %s once the new leader was known acknowledged in %s", follower.id, time.Since(start).Round(time.Millisecond))

	// The frozen leader thaws, steps down and catches up.
	leader.cmd.Process.Signal(syscall.SIGCONT)
	waitFor(t, 20*time.Second, "the thawed server to catch up", func() bool {
		out, _, code := leader.sdnctl(t, "get", "networks", "--stale")
		return code == 0 && strings.Contains(out, "frozen2")
	}, ps...)

	// Frozen with no quorum left to elect another: the follower answers
	// before the caller's deadline, saying the outcome is unknown.
	waitFor(t, 20*time.Second, "three healthy members", func() bool {
		m, ok = members(t, follower.addr, false)
		return ok && m.healthy(3)
	}, ps...)
	var asked, last *serverProc
	for _, p := range ps {
		switch {
		case p.id == m.LeaderID:
			leader = p
		case asked == nil:
			asked = p
		default:
			last = p
		}
	}
	for _, p := range []*serverProc{leader, last} {
		if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.cmd.Process.Signal(syscall.SIGCONT) })
	}
	_, errs, code = asked.sdnctl(t, "--timeout", "6s", "apply", "-f", hcl("frozen3"))
	if code == 0 || !strings.Contains(errs, "forward to the leader "+leader.id) || !strings.Contains(errs, "whether the call took effect is unknown") {
		t.Fatalf("a write through %s with %s and %s frozen: exit %d\n%s", asked.id, leader.id, last.id, code, errs)
	}
	t.Logf("with no leader to take over, the write got: %s", errs)
}
