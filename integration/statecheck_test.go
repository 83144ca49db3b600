package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/cluster/state"
)

// statusCheck is `sdnctl status --check-state -o json`, the parts this
// test reads.
type statusCheck struct {
	StateCheck struct {
		LeaderID string `json:"leaderId"`
		Revision string `json:"revision"`
		Advice   string `json:"advice"`
		Servers  []struct {
			ID     string `json:"id"`
			Result string `json:"result"`
		} `json:"servers"`
	} `json:"stateCheck"`
}

// resultOf is a server's result in the comparison ("" when not listed).
func (s statusCheck) resultOf(id string) string {
	for _, sc := range s.StateCheck.Servers {
		if sc.ID == id {
			return sc.Result
		}
	}
	return ""
}

// TestStateCheckFindsADifferentServer runs three `sdnd --server`
// processes, changes one follower's state.db while it is stopped (a
// network's label, written through package state so the record is as
// well formed as any: nothing but a comparison with the others can find
// it), and starts it again: it logs at once that its state differs from
// the leader's; `sdnctl status --check-state` and `sdnctl cluster members`
// name it, loudly, with what to do; done as said (remove, empty data
// directory, join), the servers agree again.
func TestStateCheckFindsADifferentServer(t *testing.T) {
	tr := startTrio(t)
	all := tr.ps[0].addr + "," + tr.ps[1].addr + "," + tr.ps[2].addr
	if out, errs, code := sdnctlAt(t, all, "apply", "-f", "../examples"); code != 0 {
		t.Fatalf("apply: %d %s %s", code, out, errs)
	}
	var st statusCheck
	via := all // the servers sdnctl asks
	check := func() string {
		t.Helper()
		out, errs, code := sdnctlAt(t, via, "status", "--check-state", "-o", "json")
		if code != 0 {
			t.Fatalf("status --check-state: %d %s", code, errs)
		}
		st = statusCheck{}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status json: %v\n%s", err, out)
		}
		table, _, _ := sdnctlAt(t, via, "status")
		return table
	}
	f := tr.follower(t)
	waitFor(t, 20*time.Second, "every server to agree", func() bool {
		table := check()
		return strings.Contains(table, "all 3 servers agree") && st.resultOf(f.id) == "STATE_CHECK_RESULT_AGREES"
	}, tr.ps...)

	f.stop(syscall.SIGTERM)
	db, err := state.Open(filepath.Join(f.dataDir, "state.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *state.Tx) error {
		n, ok := tx.Network("proj1")
		if !ok {
			t.Fatal("no network proj1 on the follower")
		}
		n.Labels["env"] = "tampered"
		return tx.PutNetwork(n)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	waitFor(t, 30*time.Second, f.id+" to find at start that its state differs from the leader's", func() bool {
		return strings.Contains(f.log.String(), "STATE CHECK FAILED: this server's state at raft index")
	}, f)
	t.Logf("%s says: %s", f.id, firstLine(f.log.String(), "STATE CHECK FAILED"))

	table := check()
	if st.resultOf(f.id) != "STATE_CHECK_RESULT_DIFFERS" {
		t.Fatalf("status --check-state: %s is %q, want DIFFERS:\n%s", f.id, st.resultOf(f.id), table)
	}
	for _, want := range []string{"STATE CHECK FAILED", f.id + " ", "DIFFERS", "what to do: " + f.id + " holds a state the leader",
		"`sdnctl cluster remove " + f.id + "`", "`sdnctl cluster join " + f.addr + "`"} {
		if !strings.Contains(table, want) {
			t.Errorf("sdnctl status lacks %q:\n%s", want, table)
		}
	}
	members, _, _ := sdnctlAt(t, all, "cluster", "members")
	if !strings.Contains(members, "DIFFERS @") || !strings.Contains(members, "STATE CHECK FAILED: the servers do not all hold the same state") {
		t.Errorf("sdnctl cluster members does not show it:\n%s", members)
	}
	t.Logf("sdnctl status:\n%s\nsdnctl cluster members:\n%s", table, members)

	// What to do, done: the server rebuilt from the others agrees. Until
	// it has joined, only the others answer.
	var others []string
	for _, p := range tr.ps {
		if p != f {
			others = append(others, p.addr)
		}
	}
	via = strings.Join(others, ",")
	f.stop(syscall.SIGTERM)
	if out, errs, code := sdnctlAt(t, via, "cluster", "remove", f.id); code != 0 {
		t.Fatalf("cluster remove: %d %s %s", code, out, errs)
	}
	if err := os.RemoveAll(f.dataDir); err != nil {
		t.Fatal(err)
	}
	f.args = nil // no --peers: it joins the running cluster
	f.start(t)
	waitFor(t, 20*time.Second, f.id+" to listen", func() bool {
		_, _, code := f.sdnctl(t, "cluster", "members", "--stale")
		return code == 0
	}, f)
	if out, errs, code := sdnctlAt(t, via, "cluster", "join", f.addr); code != 0 {
		t.Fatalf("cluster join: %d %s %s", code, out, errs)
	}
	waitFor(t, 30*time.Second, "the rebuilt server to agree", func() bool {
		table := check()
		return strings.Contains(table, "all 3 servers agree") && st.resultOf(f.id) == "STATE_CHECK_RESULT_AGREES"
	}, tr.ps...)
}
