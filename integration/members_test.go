package integration

import (
	"syscall"
	"testing"
	"time"
)

// `cluster members` showed a restarted server as unreachable for 15-20 s
// while it already served: the leader's connection to it had backed off
// (gRPC's reconnect backoff grows to minutes while the server is down), and
// the leader's 1 s question failed at once instead of reconnecting. Now a
// members call made once the server answers its own API shows it.
func TestRestartedServerReachableInMembers(t *testing.T) {
	ps, m := threeServers(t)
	var down *serverProc
	for _, p := range ps {
		if p.id != m.LeaderID {
			down = p
			break
		}
	}
	down.stop(syscall.SIGKILL)
	// Asked about meanwhile, as an operator watching would: the leader's
	// connection to it fails again and again.
	other := ps[0]
	if other == down {
		other = ps[1]
	}
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		members(t, other.addr, false)
	}
	if m, _ := members(t, other.addr, false); len(m.Servers) != 3 || stateOf(m, down.id) != "unreachable" {
		t.Fatalf("members with %s down: %+v", down.id, m)
	} else {
		for _, s := range m.Servers {
			if s.ID == down.id {
				t.Logf("members with %s down: %s", down.id, s.Error)
			}
		}
	}
	down.start(t)
	waitFor(t, 20*time.Second, down.id+" to answer its own API", func() bool {
		_, _, code := down.sdnctl(t, "cluster", "members", "--stale")
		return code == 0
	}, down)
	for i := 0; ; i++ {
		m, ok := members(t, other.addr, false)
		if ok && stateOf(m, down.id) != "unreachable" && stateOf(m, down.id) != "" {
			t.Logf("%s listed as %s by the %s members call after it served", down.id, stateOf(m, down.id), ordinal(i+1))
			return
		}
		if i == 2 {
			t.Fatalf("%s serves, but three members calls in a row list it as unreachable: %+v", down.id, m)
		}
	}
}

func stateOf(m membersOf, id string) string {
	for _, s := range m.Servers {
		if s.ID == id {
			return s.State
		}
	}
	return ""
}

func ordinal(n int) string {
	return map[int]string{1: "first", 2: "second", 3: "third"}[n]
}
