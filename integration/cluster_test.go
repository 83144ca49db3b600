package integration

import (
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// membersOf is `sdnctl cluster members -o json` as Go values.
type membersOf struct {
	LeaderID string `json:"leaderId"`
	Servers  []struct {
		ID     string `json:"id"`
		State  string `json:"state"`
		Leader bool   `json:"leader"`
		Error  string `json:"error"`
	} `json:"servers"`
}

func members(t *testing.T, server string, stale bool) (membersOf, bool) {
	t.Helper()
	args := []string{"cluster", "members", "-o", "json"}
	if stale {
		args = append(args, "--stale")
	}
	out, _, code := sdnctlAt(t, server, args...)
	var m membersOf
	if code != 0 || json.Unmarshal([]byte(out), &m) != nil {
		return m, false
	}
	return m, true
}

// healthy reports whether all want servers answer and one leads.
func (m membersOf) healthy(want int) bool {
	if len(m.Servers) != want || m.LeaderID == "" {
		return false
	}
	for _, s := range m.Servers {
		if s.State != "leader" && s.State != "follower" {
			return false
		}
	}
	return true
}

// TestThreeServersFromTheCLI runs three `sdnd --server` processes on
// loopback that find each other (--bootstrap-expect 3, a chain of --join),
// and drives them with sdnctl: members, writes and reads through any
// server, leadership transfer, joining and removing a fourth server, a
// leader that stops gracefully, and the message when no quorum is left.
func TestThreeServersFromTheCLI(t *testing.T) {
	ps := []*serverProc{newServerProc(t, "s1"), newServerProc(t, "s2"), newServerProc(t, "s3")}
	for i, p := range ps {
		p.args = []string{"--bootstrap-expect", "3", "--join", ps[(i+1)%3].addr}
		p.start(t)
	}
	all := ps[0].addr + "," + ps[1].addr + "," + ps[2].addr
	var m membersOf
	waitFor(t, 30*time.Second, "three healthy members", func() bool {
		var ok bool
		m, ok = members(t, ps[2].addr, false)
		return ok && m.healthy(3)
	}, ps...)
	t.Logf("formed: leader %s", m.LeaderID)
	for _, p := range ps {
		if n := strings.Count(p.log.String(), "bootstrapped a new cluster"); (p.id == "s1") != (n == 1) || n > 1 {
			t.Errorf("%s bootstrapped %d times; only s1 (the lowest id) should, once", p.id, n)
		}
	}

	// Writes and linearizable reads through any server; stale reads on
	// each catch up.
	if out, errs, code := sdnctlAt(t, all, "apply", "-f", "../examples"); code != 0 {
		t.Fatalf("apply through %s: %d %s %s", all, code, out, errs)
	}
	want, _, _ := ps[1].sdnctl(t, "get", "networks", "-o", "json")
	for _, p := range ps {
		waitFor(t, 10*time.Second, p.id+"'s stale read to catch up", func() bool {
			got, _, code := p.sdnctl(t, "get", "networks", "-o", "json", "--stale")
			return code == 0 && got == want
		}, p)
	}

	byID := map[string]*serverProc{}
	for _, p := range ps {
		byID[p.id] = p
	}
	var follower *serverProc
	for _, p := range ps {
		if p.id != m.LeaderID {
			follower = p
			break
		}
	}
	// apply --wait outlives a leader change: a host that has realized
	// nothing keeps it waiting, the leader hands over, sdnctl asks the new
	// leader, which learns the host's realized revision from a heartbeat.
	waiting := startWaitingApply(t, all, ps[0].addr, "h9")
	waitFor(t, 10*time.Second, "apply --wait to wait for h9", func() bool {
		return strings.Contains(waiting.stderr.String(), "(pending: h9)")
	}, ps...)
	if out, errs, code := ps[0].sdnctl(t, "cluster", "transfer-leader", follower.id); code != 0 || !strings.Contains(out, follower.id+" leads now") {
		t.Fatalf("transfer-leader %s: %d %s %s", follower.id, code, out, errs)
	}
	waitFor(t, 10*time.Second, "apply --wait to be cut off by the handover", func() bool {
		return strings.Contains(waiting.stderr.String(), "was cut off")
	}, ps...)
	waiting.heartbeat(t, ps[2].addr)
	waiting.finish(t)
	if m, _ := members(t, ps[0].addr, false); m.LeaderID != follower.id {
		t.Fatalf("leader after the transfer: %s", m.LeaderID)
	}

	// A fourth server, started with nothing, joined from the CLI, then
	// removed.
	s4 := newServerProc(t, "s4")
	s4.start(t)
	waitFor(t, 10*time.Second, "s4 to listen", func() bool {
		_, _, code := s4.sdnctl(t, "cluster", "members", "--stale")
		return code == 0
	}, s4)
	if out, errs, code := ps[0].sdnctl(t, "cluster", "join", s4.addr); code != 0 || !strings.Contains(out, "added s4 at "+s4.addr) {
		t.Fatalf("join s4: %d %s %s", code, out, errs)
	}
	waitFor(t, 10*time.Second, "four healthy members", func() bool {
		m, ok := members(t, ps[0].addr, false)
		return ok && m.healthy(4)
	}, s4)
	if _, errs, code := ps[0].sdnctl(t, "cluster", "remove", "nope"); code != 1 || !strings.Contains(errs, `no server "nope" in the cluster; members are s1, s2, s3, s4`) {
		t.Fatalf("remove unknown: %d %s", code, errs)
	}
	if out, errs, code := ps[1].sdnctl(t, "cluster", "remove", "s4"); code != 0 || out != "removed s4\n" {
		t.Fatalf("remove s4: %d %s %s", code, out, errs)
	}
	s4.stop(os.Interrupt)
	if m, ok := members(t, ps[0].addr, false); !ok || !m.healthy(3) {
		t.Fatalf("members after removing s4: %+v", m)
	}

	// The leader stops gracefully: it hands leadership over first, and
	// writes through the others go on.
	leader := byID[follower.id]
	leader.stop(syscall.SIGTERM)
	if !strings.Contains(leader.log.String(), "handed leadership over before stopping") {
		t.Errorf("the stopping leader did not hand over:\n%s", tailString(leader.log.String(), 10))
	}
	var rest []*serverProc
	for _, p := range ps {
		if p != leader {
			rest = append(rest, p)
		}
	}
	if out, errs, code := sdnctlAt(t, all, "delete", "workload", "proj1/db1"); code != 0 {
		t.Fatalf("write with the old leader stopped: %d %s %s", code, out, errs)
	}
	leader.start(t)
	waitFor(t, 20*time.Second, "the restarted server to rejoin", func() bool {
		m, ok := members(t, rest[0].addr, false)
		return ok && m.healthy(3)
	}, ps...)

	// Two of three gone: no quorum. Writes say so; stale reads still work.
	rest[0].stop(syscall.SIGKILL)
	leader.stop(syscall.SIGKILL)
	last := rest[1]
	_, errs, code := last.sdnctl(t, "--timeout", "8s", "delete", "network", "proj2")
	if code != 1 || !strings.Contains(errs, "no raft leader is known") {
		t.Fatalf("write without quorum: %d %s", code, errs)
	}
	if _, _, code := last.sdnctl(t, "get", "networks", "--stale"); code != 0 {
		t.Fatal("stale read without quorum failed")
	}
	out, _, code := last.sdnctl(t, "cluster", "members", "--stale")
	if code != 0 || strings.Count(out, "unreachable") != 2 || !strings.Contains(out, "no leader") {
		t.Fatalf("members without quorum:\n%s", out)
	}
}
