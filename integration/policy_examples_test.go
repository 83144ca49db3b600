package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/integration/lab"
)

// The workloads of the examples/policy/ scenarios, with the labels each
// needs (docs in each file).
func exampleWorkloads() []*pw {
	mk := func(id, host, net string, labels map[string]string) *pw {
		return &pw{id: id, host: host, net: net, labels: labels}
	}
	return []*pw{
		mk("srv1", "host1", "proj1", map[string]string{"app": "server1"}),
		mk("cli1", "host2", "proj1", map[string]string{"app": "client1"}),
		mk("web", "host1", "proj1", map[string]string{"app": "web"}),
		mk("foo", "host2", "proj1", map[string]string{"app": "foo"}),
		mk("bar", "host1", "proj1", map[string]string{"app": "bar"}),
		mk("nginx", "host2", "proj1", map[string]string{"app": "nginx"}),
		mk("cli", "host1", "proj1", map[string]string{"access": "foo"}),
		mk("srv2", "host1", "proj2", map[string]string{"app": "server2"}),
		mk("p2", "host2", "proj2", map[string]string{"app": "other"}),
		mk("mon", "host2", "infra", map[string]string{"app": "monitor"}),
	}
}

// example is one file of examples/policy/ and what it allows, written
// from the comment at its top and docs/policy.md; selected names the
// workloads it decides for (whose pairs are asked of `sdnctl verdict`).
type example struct {
	file, policy string
	selected     []string
	want         func(c cell) bool
}

func examples() []example {
	to := func(id string, rule func(c cell) bool) func(c cell) bool {
		return func(c cell) bool {
			if c.to.id == id {
				return rule(c)
			}
			return multitenant(c)
		}
	}
	proj1 := []string{"srv1", "cli1", "web", "foo", "bar", "nginx", "cli"}
	return []example{
		{"deny-all.hcl", "proj1/deny-all", proj1, func(c cell) bool { return c.to.net != "proj1" && multitenant(c) }},
		{"allow-same-network.hcl", "proj1/allow-same-network", proj1, func(c cell) bool {
			if c.to.net == "proj1" {
				return c.from.net == "proj1"
			}
			return multitenant(c)
		}},
		{"allow-server1-from-client1.hcl", "proj1/allow-server1-from-client1", []string{"srv1"},
			to("srv1", func(c cell) bool { return c.from.id == "cli1" && c.tcp80() })},
		{"allow-from-network.hcl", "proj2/allow-from-proj1", []string{"srv2"},
			to("srv2", func(c cell) bool { return c.from.net == "proj1" })},
		{"hello-web.hcl", "proj1/hello-web", []string{"web"},
			to("web", func(c cell) bool { return c.from.id == "foo" })},
		{"access-nginx.hcl", "proj1/access-nginx", []string{"nginx"},
			to("nginx", func(c cell) bool { return c.from.id == "cli" && c.tcp80() })},
		{"deny-web-ingress.hcl", "proj1/deny-web-ingress", []string{"web"},
			to("web", func(cell) bool { return false })},
	}
}

// TestPolicyExamples applies each file of examples/policy/ on a 2-host lab
// running examples/, checks every pair on every probe port by real packets
// and by the model, asks `sdnctl verdict` about every pair into the
// workloads the policy selects (it must agree with the packets), and
// removes the policy. access-nginx also relabels its client while it
// runs; relabel checks a client looping connections across a relabel.
func TestPolicyExamples(t *testing.T) {
	needDatapath(t)
	ws := exampleWorkloads()
	l := policyLab(t, "pe", ws)
	byID := map[string]*pw{}
	for _, w := range ws {
		byID[w.id] = w
	}
	cells := allCells(ws)
	for _, ex := range examples() {
		t.Run(strings.TrimSuffix(ex.file, ".hcl"), func(t *testing.T) {
			if _, err := l.ApplyFile(filepath.Join("../examples/policy", ex.file)); err != nil {
				t.Fatal(err)
			}
			got := observe(t, l, cells, ex.want)
			checkCells(t, ws, cells, ex.want, got)
			checkSdnctlVerdicts(t, l, ws, ex, got)
			if ex.file == "access-nginx.hcl" {
				relabelNginxClient(t, l, byID)
			}
			if _, err := l.Sdnctl("delete", "policy", ex.policy); err != nil {
				t.Fatal(err)
			}
			waitRealized(t, l)
		})
	}
	t.Run("relabel", func(t *testing.T) { relabelLoop(t, l, byID) })
}

// checkSdnctlVerdicts asks `sdnctl verdict -o json` about tcp/80 from
// every workload into each selected one: its answer must be the packets'.
func checkSdnctlVerdicts(t *testing.T, l *lab.Lab, ws []*pw, ex example, got map[cell]observed) {
	t.Helper()
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		bad []string
	)
	sem := make(chan struct{}, 4)
	for _, id := range ex.selected {
		for _, from := range ws {
			if from.id == id {
				continue
			}
			var to *pw
			for _, w := range ws {
				if w.id == id {
					to = w
				}
			}
			c := cell{from, to, probePort{"tcp", 80}}
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				allowed, why, err := sdnctlVerdict(l, c)
				<-sem
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					bad = append(bad, err.Error())
				case allowed != got[c].packets:
					bad = append(bad, fmt.Sprintf("%s -> %s tcp/80: sdnctl verdict says %s (%s), the packets %s",
						from.id, to.id, word(allowed), why, word(got[c].packets)))
				}
			}()
		}
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("sdnctl verdict and the packets disagree:\n%s", strings.Join(bad, "\n"))
	}
}

// sdnctlVerdict runs `sdnctl verdict --from NET/NAME --to NET/NAME --port
// PROTO/PORT -o json` for a cell.
func sdnctlVerdict(l *lab.Lab, c cell) (bool, string, error) {
	out, err := l.Sdnctl("verdict", "--from", c.from.w.Key(), "--to", c.to.w.Key(), "--port", c.port.String(), "-o", "json")
	if err != nil {
		return false, "", err
	}
	var r struct {
		Allowed bool `json:"allowed"`
		Egress  struct {
			Allowed bool   `json:"allowed"`
			Reason  string `json:"reason"`
		} `json:"egress"`
		Ingress struct {
			Reason string `json:"reason"`
		} `json:"ingress"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return false, "", fmt.Errorf("sdnctl verdict -o json printed %q: %v", out, err)
	}
	why := r.Ingress.Reason
	if !r.Egress.Allowed {
		why = r.Egress.Reason
	}
	return r.Allowed, why, nil
}

// relabelNginxClient relabels access-nginx's client foo -> bar -> foo with
// `sdnctl label workload --wait`, checking it reaches nginx on tcp/80 by
// packets and by `sdnctl verdict` after each step.
func relabelNginxClient(t *testing.T, l *lab.Lab, byID map[string]*pw) {
	t.Helper()
	cli, nginx := byID["cli"], byID["nginx"]
	c := cell{cli, nginx, probePort{"tcp", 80}}
	for _, step := range []struct {
		access string
		want   bool
	}{{"bar", false}, {"foo", true}} {
		if _, err := l.Sdnctl("label", "workload", cli.w.Key(), "access="+step.access, "--wait"); err != nil {
			t.Fatal(err)
		}
		got := observe(t, l, []cell{c}, func(cell) bool { return step.want })
		allowed, why, err := sdnctlVerdict(l, c)
		if err != nil {
			t.Fatal(err)
		}
		if got[c].packets != step.want || allowed != step.want || got[c].verdict != step.want {
			t.Errorf("client labelled access=%s -> nginx tcp/80: expected %s, packets %s, sdnctl verdict %s (%s)",
				step.access, word(step.want), word(got[c].packets), word(allowed), why)
		}
	}
}

// relabelLoop: a client loops new TCP connections to two servers, one a
// policy admits for access=foo and one for access=bar; after the client is
// relabelled foo -> bar and `sdnctl label workload --wait` returns, no
// connection begun to the first succeeds and none to the second fails.
func relabelLoop(t *testing.T, l *lab.Lab, byID map[string]*pw) {
	cli, a, b := byID["cli"], byID["nginx"], byID["srv1"]
	policies := `policy "a-for-foo" {
  network = "proj1"
  workloads { match_labels = { app = "nginx" } }
  ingress {
    from {
      workloads { match_labels = { access = "foo" } }
    }
    port { port = 80 }
  }
}
policy "b-for-bar" {
  network = "proj1"
  workloads { match_labels = { app = "server1" } }
  ingress {
    from {
      workloads { match_labels = { access = "bar" } }
    }
    port { port = 80 }
  }
}
`
	file := writeFile(t, t.TempDir(), "relabel.hcl", policies)
	if _, err := l.Sdnctl("label", "workload", cli.w.Key(), "access=foo", "--wait"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ApplyFile(file); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, p := range []string{"proj1/a-for-foo", "proj1/b-for-bar"} {
			if _, err := l.Sdnctl("delete", "policy", p); err != nil {
				t.Error(err)
			}
		}
	}()
	ta, tb := a.w.IP+":tcp:80", b.w.IP+":tcp:80"
	cmd := exec.Command("ip", "netns", "exec", cli.w.NS, filepath.Join(binaries(t), "sdnprobe"), "loop",
		"-targets", ta+","+tb, "-timeout", "300ms", "-interval", "10ms")
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	labelled := time.Now().UnixNano()
	if _, err := l.Sdnctl("label", "workload", cli.w.Key(), "access=bar", "--wait"); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal(err)
	}
	realized := time.Now().UnixNano()
	time.Sleep(1500 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	// Tries begun before the relabel, and after it was realized: to a
	// (index 0) and b (1), counted by outcome.
	var before, after [2]map[string]int
	for i := range before {
		before[i], after[i] = map[string]int{}, map[string]int{}
	}
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue
		}
		start, _ := strconv.ParseInt(f[0], 10, 64)
		i := 0
		if f[1] == tb {
			i = 1
		}
		switch {
		case start > realized:
			after[i][f[2]]++
		case start < labelled:
			before[i][f[2]]++
		}
	}
	t.Logf("tries before the relabel: a %v, b %v; after it was realized: a %v, b %v", before[0], before[1], after[0], after[1])
	if before[0]["blocked"] != 0 || before[0]["ok"] == 0 || before[1]["ok"] != 0 || before[1]["blocked"] == 0 {
		t.Errorf("before the relabel (access=foo) every try should reach a and none b: a %v, b %v", before[0], before[1])
	}
	if after[0]["ok"] != 0 || after[0]["blocked"] == 0 {
		t.Errorf("after the relabel was realized, %d new connections to a (now forbidden) succeeded: %v", after[0]["ok"], after[0])
	}
	if after[1]["blocked"] != 0 || after[1]["ok"] == 0 {
		t.Errorf("after the relabel was realized, %d new connections to b (now allowed) failed: %v", after[1]["blocked"], after[1])
	}
}
