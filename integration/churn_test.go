package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/integration/lab"
	"github.com/sdn-dev/sdn/node/leaks"
)

var churnCyclesFlag = flag.Int("churn.cycles", 0, "ADD/DEL cycles of each TestChurn phase at concurrency 10 (0: 1,000 when -run names TestChurn, 200 in a run of every test)")

// churnCycles is the count of each phase. 1,000 cycles take about 140 s a
// phase on a 2-core machine (7 cycles/s, the realize of each ADD and DEL),
// too long for every `make test`: a run of every test churns 200, a run of
// TestChurn itself 1,000.
func churnCycles() int {
	if *churnCyclesFlag > 0 {
		return *churnCyclesFlag
	}
	if f := flag.Lookup("test.run"); f != nil && strings.Contains(f.Value.String(), "Churn") {
		return 1000
	}
	return 200
}

// churnHost is the host churned: an agent only, so that killing its sdnd
// leaves the server running.
const churnHost = 2

// TestChurn runs ADD/DEL cycles through the real plugin binary at
// concurrency 10, as a runtime would (a namespace per container, removed
// after DEL whatever DEL answered), and then finds no leak: no workload
// left on the servers, no workload veth or OVS port on the host, no flow
// more than before nor one naming a churned address, and `sdnctl ipam
// check` clean. Then the same with the host's sdnd killed (SIGKILL) in the
// middle and restarted: the leak loop releases what the failed DELs left
// within its period.
func TestChurn(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root (namespaces, OVS)")
	}
	ctx := context.Background()
	l, progress := upLab(ctx, t, "ch", 2)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(l.HostDir(churnHost), "sdnd.log"))
			if len(b) > 20000 {
				b = b[len(b)-20000:]
			}
			t.Logf("lab progress:\n%s\nhost%d's sdnd.log (tail):\n%s", progress, churnHost, b)
		}
	})
	base := churnBaseline(t, l)

	t.Run("clean", func(t *testing.T) {
		st := churn(t, l, "c", churnCycles(), nil)
		t.Logf("%d cycles at concurrency 10 in %s: %.1f cycles/s; %d ADD and %d DEL failed", st.cycles, st.took.Round(time.Millisecond),
			float64(st.cycles)/st.took.Seconds(), st.addFailed.Load(), st.delFailed.Load())
		if st.addFailed.Load() > 0 || st.delFailed.Load() > 0 {
			t.Errorf("with the agent up, %d ADD and %d DEL failed; first error: %v", st.addFailed.Load(), st.delFailed.Load(), st.firstErr())
		}
		// DEL returns before the host realizes the removal: a few seconds.
		noLeaks(t, l, base, st, 10*time.Second)
	})

	t.Run("sdnd-killed", func(t *testing.T) {
		n := churnCycles()
		var killed sync.Once
		var orphans []string
		mid := func(done int) {
			if done < n/3 {
				return
			}
			killed.Do(func() {
				// Three containers removed while the agent is down, as
				// `podman rm` does: DEL fails, the namespace goes.
				orphans = orphanWhileDown(t, l)
				t.Logf("killed host%d's sdnd after %d cycles", churnHost, done)
				time.Sleep(2 * time.Second)
				if err := l.StartSDND(ctx, churnHost); err != nil {
					t.Error(err)
				}
			})
		}
		st := churn(t, l, "k", n, mid)
		t.Logf("%d cycles with sdnd killed and restarted in %s: %.1f cycles/s; %d ADD and %d DEL failed (the agent was down)",
			st.cycles, st.took.Round(time.Millisecond), float64(st.cycles)/st.took.Seconds(), st.addFailed.Load(), st.delFailed.Load())
		noLeaks(t, l, base, st, leaks.DefaultPeriod+15*time.Second)
		b, _ := os.ReadFile(filepath.Join(l.HostDir(churnHost), "sdnd.log"))
		released := strings.Count(string(b), "released a leaked attachment")
		for _, id := range orphans {
			if !strings.Contains(string(b), "container="+id+" ") {
				t.Errorf("host%d's log says nothing of releasing %s, whose namespace went while its agent was down", churnHost, id)
			}
		}
		t.Logf("the leak loop released %d attachments and removed %d leftovers (log of host%d)", released,
			strings.Count(string(b), "removed a leftover workload interface"), churnHost)
	})
}

// orphanWhileDown attaches three containers, kills the host's sdnd, and
// removes them as a runtime would with the agent down (DEL fails, the
// namespace goes). It returns their container ids.
func orphanWhileDown(t *testing.T, l *lab.Lab) []string {
	var ids []string
	for i := range 3 {
		id := fmt.Sprintf("churnorphan%d-%d", os.Getpid()%1000, i)
		ns := l.Name + "-" + id
		if _, err := link.NewNS(ns); err != nil {
			t.Error(err)
			continue
		}
		if _, err := churnCNI(l, "ADD", id, ns); err != nil {
			t.Error(err)
		}
		ids = append(ids, id)
	}
	if err := l.KillSDND(churnHost); err != nil {
		t.Error(err)
	}
	for _, id := range ids {
		if _, err := churnCNI(l, "DEL", id, l.Name+"-"+id); err == nil {
			t.Errorf("DEL of %s succeeded with the agent killed", id)
		}
		if err := link.DeleteNS(l.Name + "-" + id); err != nil {
			t.Error(err)
		}
	}
	return ids
}

// baseline is the host's state before any churn.
type baseline struct{ flows int }

func churnBaseline(t *testing.T, l *lab.Lab) baseline {
	t.Helper()
	if err := l.WaitRealized(context.Background(), time.Minute); err != nil {
		t.Fatal(err)
	}
	flows, err := l.OVS(churnHost).DumpFlows(context.Background(), "br-int", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return baseline{flows: len(flows)}
}

// churnStats is what one phase did.
type churnStats struct {
	cycles               int
	took                 time.Duration
	addFailed, delFailed atomic.Int64
	mu                   sync.Mutex
	errs                 []error
	addrs                map[string]bool // every address an ADD returned
}

func (s *churnStats) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) < 5 {
		s.errs = append(s.errs, err)
	}
}

func (s *churnStats) firstErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) == 0 {
		return nil
	}
	return s.errs[0]
}

// churn runs n cycles at concurrency 10; after each, progress (if set)
// gets the number of cycles done.
func churn(t *testing.T, l *lab.Lab, prefix string, n int, progress func(done int)) *churnStats {
	t.Helper()
	st := &churnStats{cycles: n, addrs: map[string]bool{}}
	var next, done atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > n {
					return
				}
				cycle(t, l, st, fmt.Sprintf("churn%s%d-%d", prefix, os.Getpid()%1000, i))
				d := int(done.Add(1))
				if progress != nil {
					progress(d)
				}
			}
		}()
	}
	wg.Wait()
	st.took = time.Since(start)
	return st
}

// cycle is one container's life: namespace, ADD, DEL, namespace removed.
func cycle(t *testing.T, l *lab.Lab, st *churnStats, id string) {
	ns := l.Name + "-" + id
	if _, err := link.NewNS(ns); err != nil {
		st.fail(err)
		st.addFailed.Add(1)
		return
	}
	defer func() {
		if err := link.DeleteNS(ns); err != nil {
			t.Errorf("delete namespace %s: %v", ns, err)
		}
	}()
	out, err := churnCNI(l, "ADD", id, ns)
	if err != nil {
		st.addFailed.Add(1)
		st.fail(err)
	} else {
		var res struct {
			IPs []struct {
				Address string `json:"address"`
			} `json:"ips"`
		}
		if json.Unmarshal(out, &res) == nil && len(res.IPs) > 0 {
			st.mu.Lock()
			st.addrs[strings.Split(res.IPs[0].Address, "/")[0]] = true
			st.mu.Unlock()
		}
	}
	// A runtime calls DEL after a failed ADD too.
	if _, err := churnCNI(l, "DEL", id, ns); err != nil {
		st.delFailed.Add(1)
		st.fail(err)
	}
}

// churnCNI runs the plugin as a runtime on the churned host would.
func churnCNI(l *lab.Lab, command, id, ns string) ([]byte, error) {
	conf, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": "sdn-proj1", "type": "sdn",
		"network": "proj1", "socket": l.CNISocket(churnHost)})
	cmd := exec.Command(filepath.Join(l.Bin, "sdn"))
	cmd.Env = append(os.Environ(), "CNI_COMMAND="+command, "CNI_CONTAINERID="+id, "CNI_NETNS="+link.NSPath(ns),
		"CNI_IFNAME=eth0", "CNI_PATH="+l.Bin, "CNI_ARGS=SDN_NAME="+id)
	cmd.Stdin = bytes.NewReader(conf)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("CNI %s %s: %w: %s %s", command, id, err, stdout.String(), stderr.String())
	}
	return stdout.Bytes(), nil
}

// noLeaks waits up to wait for the host to hold nothing of the churn, then
// fails on what is left.
func noLeaks(t *testing.T, l *lab.Lab, base baseline, st *churnStats, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	var left []string
	for {
		left = churnLeftovers(t, l, base, st)
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if len(left) > 0 {
		t.Fatalf("left after the churn:\n%s", strings.Join(left, "\n"))
	}
	out, err := l.Exec(l.HostNS(1), append([]string{filepath.Join(l.Bin, "sdnctl"), "--server", l.SdnctlServer()}, append(l.SdnctlTLSFlags(), "ipam", "check")...)...)
	if err != nil {
		t.Fatalf("sdnctl ipam check after the churn: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(out))
}

// churnLeftovers lists what the churn left: workloads on the servers,
// workload veths and ports on the host, flows beyond the baseline or
// naming a churned address.
func churnLeftovers(t *testing.T, l *lab.Lab, base baseline, st *churnStats) []string {
	var left []string
	out, err := l.Sdnctl("get", "workloads", "-o", "json", "--node", lab.HostName(churnHost))
	if err != nil {
		return []string{err.Error()}
	}
	if n := strings.Count(out, `"churn`); n > 0 {
		left = append(left, fmt.Sprintf("%d churned workloads still attached on the servers", n/2))
	}
	links, err := l.Exec(l.HostNS(churnHost), "ip", "-o", "link", "show")
	if err != nil {
		return []string{err.Error()}
	}
	for _, line := range strings.Split(links, "\n") {
		if f := strings.Fields(line); len(f) > 1 && link.IsHostVethName(strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0]) {
			left = append(left, "veth "+f[1])
		}
	}
	ports, err := l.OVS(churnHost).Ports(context.Background(), "br-int")
	if err != nil {
		return []string{err.Error()}
	}
	for p := range ports {
		if link.IsHostVethName(p) {
			left = append(left, "OVS port "+p)
		}
	}
	flows, err := l.OVS(churnHost).DumpFlows(context.Background(), "br-int", 0, 0)
	if err != nil {
		return []string{err.Error()}
	}
	if len(flows) != base.flows {
		left = append(left, fmt.Sprintf("%d flows on br-int, %d before the churn", len(flows), base.flows))
	}
	named := 0
	for _, f := range flows {
		for _, a := range addrFields(f.String()) {
			if st.addrs[a] {
				named++
			}
		}
	}
	if named > 0 {
		left = append(left, fmt.Sprintf("%d flows name a churned address", named))
	}
	return left
}

// addrFields returns the IPv4 addresses a flow names (nw_src=, nw_dst=,
// arp_tpa=, ...).
func addrFields(flow string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(flow, func(r rune) bool { return r == ',' || r == ' ' || r == '=' || r == '>' || r == '-' || r == ':' }) {
		if strings.Count(f, ".") == 3 {
			out = append(out, strings.TrimSuffix(f, "/32"))
		}
	}
	return out
}
