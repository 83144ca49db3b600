package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/sdn-dev/sdn/integration/lab"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestServersDownAgentsKeepForwarding: the data plane does not depend on
// the control plane being up. Three `sdnd --server` processes and two agent
// hosts (real OVS, workloads attached by the CNI plugin) run as separate
// processes; every server is killed with SIGKILL while a numbered UDP
// stream crosses the tunnel from host1 to host2, and host2's agent is
// killed and started again meanwhile. Then:
//   - the stream loses nothing, and workloads on the two hosts still ping
//     each other both ways with no server up;
//   - `ovs-ofctl monitor` on host2's br-int saw no flow added, modified or
//     deleted: the restarted agent realized its persisted state, which OVS
//     already held;
//   - when the servers return, a workload attached through CNI on the
//     restarted agent's host is realized by every agent and reachable from
//     the other host.
func TestServersDownAgentsKeepForwarding(t *testing.T) {
	needDatapath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	sl := upServerLab(t, ctx, "sd", lab.Config{})
	l, conns, progress := sl.Lab, sl.conns, sl.progress
	const servers = labServers
	if _, err := sdnv1.NewConfigServiceClient(conns[1]).Apply(ctx, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "base"}}}); err != nil {
		t.Fatal(err)
	}
	if err := l.StartAgents(ctx, servers); err != nil {
		t.Fatalf("agents: %v\n%s", err, progress.String())
	}
	a, err := l.Attach("host1", "base", "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Attach("host2", "base", "b", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitAgentsRealized(t, ctx, conns[1:], l)
	if !pingRetry(l, a, b.IP) || !pingRetry(l, b, a.IP) {
		t.Fatalf("positive control: %s and %s cannot reach each other with the servers up", a.ID(), b.ID())
	}
	t.Logf("lab, %d servers, 2 agents and 2 workloads up in %s", servers, time.Since(start).Round(time.Millisecond))

	// A numbered stream host1 → host2 across the tunnel, spanning the
	// servers' death and host2's agent restart.
	const count = 1600 // 8 s at 5 ms
	recv := exec.Command("ip", "netns", "exec", b.NS, filepath.Join(binaries(t), "sdnprobe"), "udp-seq-recv", "-port", "21500", "-seconds", "11")
	var recvOut strings.Builder
	recv.Stdout = &recvOut
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	send := exec.Command("ip", "netns", "exec", a.NS, filepath.Join(binaries(t), "sdnprobe"), "udp-seq-send", "-dst", b.IP, "-port", "21500", "-count", strconv.Itoa(count), "-interval", "5ms")
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	killed := time.Now()
	var wg sync.WaitGroup
	killErrs := make([]error, servers+1)
	for k := 1; k <= servers; k++ {
		wg.Add(1)
		go func() { defer wg.Done(); killErrs[k] = l.KillServer(k) }()
	}
	wg.Wait()
	for k := 1; k <= servers; k++ {
		if killErrs[k] != nil {
			t.Fatalf("kill s%d: %v", k, killErrs[k])
		}
		if l.ServerPID(k) != 0 {
			t.Fatalf("s%d still runs", k)
		}
	}
	t.Logf("every server killed (SIGKILL), 1 s into the stream, in %s", time.Since(killed).Round(time.Millisecond))

	mon, err := l.MonitorFlows(2)
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Stop()
	oldPID := l.SDNDPID(2)
	if err := l.KillSDND(2); err != nil {
		t.Fatal(err)
	}
	if err := l.StartAgent(2); err != nil {
		t.Fatal(err)
	}
	newPID := l.SDNDPID(2)
	if newPID == 0 || newPID == oldPID {
		t.Fatalf("host2's agent: pid %d before the restart, %d after", oldPID, newPID)
	}
	t.Logf("host2's agent restarted with no server up (pid %d → %d)", oldPID, newPID)
	if err := send.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := recv.Wait(); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`received (\d+) missing (\d+)`).FindStringSubmatch(recvOut.String())
	if m == nil || m[1] != strconv.Itoa(count) || m[2] != "0" {
		t.Fatalf("stream host1 → host2 while the servers were down and host2's agent restarted: %q (want all %d received)", recvOut.String(), count)
	}
	if !pingRetry(l, a, b.IP) || !pingRetry(l, b, a.IP) {
		t.Fatalf("%s and %s cannot reach each other with every server down", a.ID(), b.ID())
	}
	host2Log := filepath.Join(l.HostDir(2), "sdnd.log")
	if l.SDNDPID(2) != newPID {
		t.Fatalf("host2's restarted agent exited with no server up; its log:\n%s", tailFile(host2Log, 30))
	}
	if b, err := os.ReadFile(host2Log); err != nil || !strings.Contains(string(b), "servers unreachable; keeping the host as it is") {
		t.Fatalf("host2's restarted agent does not say it keeps the host as it is with no server (%v); its log:\n%s", err, tailFile(host2Log, 30))
	}
	mon.Stop()
	if ch := mon.Changes(); len(ch) > 0 {
		t.Fatalf("host2's agent restart with no server changed flows on br-int:\n%s", strings.Join(ch, "\n"))
	}
	t.Logf("%s; no flow added, modified or deleted on host2; pings both ways (%s)", strings.TrimSpace(recvOut.String()), time.Since(start).Round(time.Millisecond))

	// The servers return (all at once: one alone has no quorum).
	back := time.Now()
	startErrs := make([]error, servers+1)
	for k := 1; k <= servers; k++ {
		wg.Add(1)
		go func() { defer wg.Done(); startErrs[k] = l.StartServer(ctx, k) }()
	}
	wg.Wait()
	for k := 1; k <= servers; k++ {
		if startErrs[k] != nil {
			t.Fatalf("restart s%d: %v", k, startErrs[k])
		}
	}
	t.Logf("servers back with a leader in %s", time.Since(back).Round(time.Millisecond))
	// A change: a new workload through CNI on host2, whose agent started
	// while no server answered.
	var c *lab.Workload
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		c, err = l.Attach("host2", "base", "c", nil)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("attach on host2 after the servers returned: %v\nhost2's log:\n%s", err, tailFile(host2Log, 30))
		}
	}
	rev := waitAgentsRealized(t, ctx, conns[1:], l)
	if !pingRetry(l, a, c.IP) || !pingRetry(l, c, a.IP) || !pingRetry(l, b, c.IP) {
		t.Fatalf("the new workload %s (%s) is not reachable from %s and %s", c.ID(), c.IP, a.ID(), b.ID())
	}
	t.Logf("%s attached and every agent at revision %d %s after the servers returned; total %s",
		c.ID(), rev, time.Since(back).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// waitAgentsRealized waits until every lab host's agent reported realizing
// the cluster's current revision (asking the servers in turn), and returns
// that revision.
func waitAgentsRealized(t *testing.T, ctx context.Context, conns []*grpc.ClientConn, l *lab.Lab) uint64 {
	t.Helper()
	var behind []string
	for try, deadline := 0, time.Now().Add(60*time.Second); ; try++ {
		behind = behind[:0]
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		r, err := sdnv1.NewStatusServiceClient(conns[try%len(conns)]).Status(cctx, &sdnv1.StatusRequest{})
		cancel()
		if err != nil {
			behind = append(behind, err.Error())
		}
		seen := 0
		for _, n := range r.GetNodes() {
			if !strings.HasPrefix(n.GetName(), "host") {
				continue
			}
			seen++
			if !n.GetCurrent() || n.GetError() != "" {
				behind = append(behind, fmt.Sprintf("%s at %d of %d %s", n.GetName(), n.GetRealizedRevision(), r.GetRevision(), n.GetError()))
			}
		}
		if err == nil && seen < l.Hosts {
			behind = append(behind, fmt.Sprintf("%d of %d hosts registered", seen, l.Hosts))
		}
		if len(behind) == 0 {
			return r.GetRevision()
		}
		if time.Now().After(deadline) {
			t.Fatalf("agents did not realize the current revision: %v", behind)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pingRetry pings up to 3 times (the first packet may wait for ARP).
func pingRetry(l *lab.Lab, from *lab.Workload, ip string) bool {
	for try := 0; try < 3; try++ {
		if l.Ping(from, ip) {
			return true
		}
	}
	return false
}
