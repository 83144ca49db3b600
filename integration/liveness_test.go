package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/sdn-dev/sdn/integration/lab"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestHostLiveness is host liveness and drain with real processes: three
// `sdnd --server`s (down after 3 s without a heartbeat) and two agent hosts
// (heartbeats every 300 ms) with workloads attached by CNI.
//   - host2's agent is killed (SIGKILL): host2 is marked down with exactly
//     one raft command (one revision, one command applied per server), it
//     keeps its subnet and its workload's address, and host1 stays ready;
//   - leadership moves while host2 is down: nothing is written (nobody is
//     marked down, host2 is not marked up);
//   - host2's agent restarts: host2 is up again with one command, same
//     subnet and address, and its workload is reached from host1;
//   - host1 drained: a CNI ADD there fails saying so and what to do, the
//     workload already there stays; undrained, the ADD succeeds;
//   - host2 killed again and the cluster's node_release_after set to 2s
//     (sdnctl apply): host2 is released, its workload removed.
func TestHostLiveness(t *testing.T) {
	needDatapath(t)
	const downAfter = 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	sl := upServerLab(t, ctx, "lv", lab.Config{
		ServerArgs: []string{"--node-down-after=" + downAfter.String()}, AgentArgs: []string{"--heartbeat-interval=300ms"}})
	l, progress := sl.Lab, sl.progress
	const servers = labServers
	conn, err := l.DialServer(2)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cfg := sdnv1.NewConfigServiceClient(conn)
	if _, err := cfg.Apply(ctx, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "base"}}}); err != nil {
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
	t.Logf("lab, 3 servers, 2 agents and 2 workloads up in %s", time.Since(start).Round(time.Millisecond))
	sdnctl := func(args ...string) string {
		t.Helper()
		out, errs, code := sdnctlAt(t, "unix://"+l.ServerSocket(3), append(l.SdnctlTLSFlags(), args...)...)
		if code != 0 {
			t.Fatalf("sdnctl %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
		}
		return out
	}

	before := snapshotOf(t, ctx, conn)
	host2 := before.nodes["host2"]
	if err := l.KillSDND(2); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitState(t, ctx, conn, "host2 marked down", 20*time.Second, func(s *liveState) bool { return s.nodes["host2"].GetDownSinceUnixMs() != 0 })
	t.Logf("host2 marked down %s after its agent was killed", time.Since(killed).Round(100*time.Millisecond))
	time.Sleep(downAfter * 3 / 2) // room for a second command, if there were one
	down := snapshotOf(t, ctx, conn)
	if down.revision != before.revision+1 || down.nodes["host2"].ModRevision != down.revision {
		t.Fatalf("marking host2 down took revisions %d..%d (host2 changed at %d); want exactly one", before.revision, down.revision, down.nodes["host2"].ModRevision)
	}
	for id, n := range down.commands {
		if n != before.commands[id]+1 {
			t.Errorf("server %s applied %d commands while host2 went down; want 1", id, n-before.commands[id])
		}
	}
	if n := down.nodes["host2"]; n.Subnet != host2.Subnet || n.GatewayIp != host2.GatewayIp {
		t.Fatalf("down host2 = %v; want its subnet %s kept", n, host2.Subnet)
	}
	if w := down.workloads["base/"+b.SDNName()]; w.GetIp() != b.IP {
		t.Fatalf("workload b on down host2 = %v; want its address %s kept", w, b.IP)
	}
	if n := down.nodes["host1"]; n.DownSinceUnixMs != 0 {
		t.Fatalf("host1 marked down too: %v", n)
	}
	out := sdnctl("get", "nodes")
	if !rowHas(out, "host2", "down for") || !rowHas(out, "host1", "ready") {
		t.Fatalf("sdnctl get nodes with host2 down:\n%s", out)
	}

	// A leader change writes nothing: no host is marked down for the
	// heartbeats the new leader has not seen yet, host2 is not marked up.
	sdnctl("cluster", "transfer-leader")
	time.Sleep(downAfter * 3 / 2)
	if s := snapshotOf(t, ctx, conn); s.revision != down.revision {
		t.Fatalf("after a leader change the revision moved from %d to %d: %v", down.revision, s.revision, s.nodes)
	}

	// host2 comes back: one command, same subnet and address.
	if err := l.StartAgent(2); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, conn, "host2 up again", 30*time.Second, func(s *liveState) bool { return s.nodes["host2"].GetDownSinceUnixMs() == 0 })
	up := snapshotOf(t, ctx, conn)
	if up.revision != down.revision+1 || up.nodes["host2"].Subnet != host2.Subnet || up.workloads["base/"+b.SDNName()].GetIp() != b.IP {
		t.Fatalf("host2 back at revision %d (down at %d; want one more) as %v, workload b %v", up.revision, down.revision, up.nodes["host2"], up.workloads["base/"+b.SDNName()])
	}
	pinged := false
	for try := 0; try < 5 && !pinged; try++ {
		if pinged = l.Ping(a, b.IP); !pinged {
			time.Sleep(500 * time.Millisecond)
		}
	}
	if !pinged {
		t.Fatalf("%s cannot reach %s (%s) after host2 came back", a.ID(), b.ID(), b.IP)
	}

	// Drain host1: a new workload is refused there with what to do.
	if out := sdnctl("node", "drain", "host1"); !strings.Contains(out, "host host1 drained") || !strings.Contains(out, "(1) keep running") {
		t.Fatalf("sdnctl node drain host1: %s", out)
	}
	_, err = l.Attach("host1", "base", "c", nil)
	if err == nil || !strings.Contains(err.Error(), "host host1 is drained") || !strings.Contains(err.Error(), "sdnctl node undrain host1") {
		t.Fatalf("CNI ADD on drained host1: %v", err)
	}
	if s := snapshotOf(t, ctx, conn); s.workloads["base/"+a.SDNName()].GetIp() != a.IP || s.workloads["base/host1-c"] != nil {
		t.Fatalf("after the refused ADD: a = %v, c = %v", s.workloads["base/"+a.SDNName()], s.workloads["base/host1-c"])
	}
	if out := sdnctl("get", "nodes"); !rowHas(out, "host1", "drained") {
		t.Fatalf("sdnctl get nodes with host1 drained:\n%s", out)
	}
	sdnctl("node", "undrain", "host1")
	if _, err := l.Attach("host1", "base", "c", nil); err != nil {
		t.Fatalf("CNI ADD after undrain: %v", err)
	}

	// Release: host2 stays down past a short node_release_after.
	if err := l.KillSDND(2); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, conn, "host2 marked down again", 20*time.Second, func(s *liveState) bool { return s.nodes["host2"].GetDownSinceUnixMs() != 0 })
	hcl := writeFile(t, t.TempDir(), "cluster.hcl", "cluster {\n  node_release_after = \"2s\"\n}\n")
	sdnctl("apply", "-f", hcl)
	waitState(t, ctx, conn, "host2 released", 30*time.Second, func(s *liveState) bool { return s.nodes["host2"] == nil })
	if s := snapshotOf(t, ctx, conn); s.workloads["base/"+b.SDNName()] != nil || s.nodes["host1"] == nil || s.workloads["base/"+a.SDNName()] == nil {
		t.Fatalf("after host2's release: nodes %v, b %v, a %v", s.nodes, s.workloads["base/"+b.SDNName()], s.workloads["base/"+a.SDNName()])
	}
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// liveState is what the liveness test looks at, read through the leader.
type liveState struct {
	revision  uint64
	nodes     map[string]*sdnv1.Node
	workloads map[string]*sdnv1.Workload
	commands  map[string]uint64 // commands applied, per server
}

func snapshotOf(t *testing.T, ctx context.Context, conn *grpc.ClientConn) *liveState {
	t.Helper()
	s, err := readLiveState(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readLiveState(ctx context.Context, conn *grpc.ClientConn) (*liveState, error) {
	cfg := sdnv1.NewConfigServiceClient(conn)
	s := &liveState{nodes: map[string]*sdnv1.Node{}, workloads: map[string]*sdnv1.Workload{}, commands: map[string]uint64{}}
	m, err := sdnv1.NewClusterServiceClient(conn).Members(ctx, &sdnv1.MembersRequest{})
	if err != nil {
		return nil, err
	}
	for _, sv := range m.Servers {
		s.commands[sv.Id] = sv.CommandsApplied
	}
	nodes, err := cfg.List(ctx, &sdnv1.ListRequest{Kind: "nodes"})
	if err != nil {
		return nil, err
	}
	wls, err := cfg.List(ctx, &sdnv1.ListRequest{Kind: "workloads"})
	if err != nil {
		return nil, err
	}
	if nodes.Revision != wls.Revision {
		return nil, fmt.Errorf("revision moved from %d to %d while reading", nodes.Revision, wls.Revision)
	}
	s.revision = nodes.Revision
	for _, n := range nodes.Nodes {
		s.nodes[n.Name] = n
	}
	for _, w := range wls.Workloads {
		s.workloads[w.Network+"/"+w.Name] = w
	}
	return s, nil
}

func waitState(t *testing.T, ctx context.Context, conn *grpc.ClientConn, what string, d time.Duration, cond func(*liveState) bool) {
	t.Helper()
	var last error
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		s, err := readLiveState(ctx, conn)
		if err == nil && cond(s) {
			return
		}
		last = err
	}
	t.Fatalf("timed out after %s waiting for %s (last error: %v)", d, what, last)
}

// rowHas reports whether the table row starting with name contains want.
func rowHas(table, name, want string) bool {
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, name+" ") {
			return strings.Contains(line, want)
		}
	}
	return false
}
