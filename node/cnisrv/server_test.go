package cnisrv

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/datapath/link"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

type env struct {
	cluster *fakeCluster
	dp      *fakeDatapath
	hostNS  string // path
	client  sdnv1.AgentServiceClient
	conn    *grpc.ClientConn
	socket  string
	servers *fakeServersHealth
}

// start serves a Server with fakes on a unix socket; veth host ends go to a
// test namespace standing in for the host.
func start(t *testing.T) *env {
	t.Helper()
	needRoot(t)
	e := &env{cluster: newFakeCluster(), dp: &fakeDatapath{}, hostNS: testNS(t, "host"), servers: &fakeServersHealth{}}
	e.socket = filepath.Join(t.TempDir(), "run", "cni.sock")
	lis, err := ListenUnix(e.socket)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Node: testNode, Workloads: e.cluster, Agent: e.cluster, Datapath: e.dp, HostNSPath: e.hostNS, Servers: e.servers,
		TxChecksumOff: true, RetryUnavailable: 300 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	e.conn, err = grpc.NewClient("unix:"+e.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.conn.Close() })
	e.client = sdnv1.NewAgentServiceClient(e.conn)
	return e
}

func (e *env) request(t *testing.T, cid string) *sdnv1.CNIRequest {
	return &sdnv1.CNIRequest{ContainerId: cid, Ifname: "eth0", Netns: testNS(t, "wl"), Network: "proj1", Name: "w-" + cid, Labels: map[string]string{"app": "web"}}
}

// ipIn runs `ip` inside a namespace (by path).
func ipIn(t *testing.T, nsPath string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", filepath.Base(nsPath)}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func hostLinks(t *testing.T, e *env) []string {
	t.Helper()
	h, err := link.Open(e.hostNS)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	names, err := h.LinkNames("sdn")
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestAddCheckDel(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	req := e.request(t, "c0ffee01")
	req.NamedPorts = []*sdnv1.NamedPort{{Name: "http", Protocol: "tcp", Port: 8080}}

	res, err := e.client.CNIAdd(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if np := res.Workload.GetNamedPorts(); len(np) != 1 || np[0].Name != "http" || np[0].Port != 8080 {
		t.Errorf("the attached workload's named ports are %v; want the request's http tcp/8080", np)
	}
	hostIf := link.HostVethName("c0ffee01", "eth0")
	if res.Address != "10.128.0.5/23" || res.Gateway != "10.128.0.1" || res.Mac != "0a:58:0a:80:00:05" || res.Mtu != 1450 ||
		res.HostIfname != hostIf || res.SandboxIfname != "eth0" || res.Sandbox != req.Netns || res.Workload.GetName() != "w-c0ffee01" {
		t.Fatalf("result %v", res)
	}
	if d := res.GetDns(); !slices.Equal(d.GetNameservers(), []string{"10.128.0.1"}) || !slices.Equal(d.GetSearch(), []string{"proj1.sdn.local", "sdn.local"}) {
		t.Errorf("DNS of the result: %v; want the gateway and proj1.sdn.local, sdn.local", d)
	}
	if got := e.cluster.synced; len(got) != 1 || got[0] != 2 {
		t.Errorf("ADD waited for revisions %v, want [2] (the attach revision)", got)
	}
	if !e.dp.plugged(hostIf) {
		t.Errorf("%s not plugged", hostIf)
	}
	out := ipIn(t, req.Netns, "-o", "addr", "show", "dev", "eth0")
	if !strings.Contains(out, "inet 10.128.0.5/23") {
		t.Errorf("eth0 in the workload namespace: %s", out)
	}
	out = ipIn(t, req.Netns, "-o", "link", "show", "dev", "eth0")
	if !strings.Contains(out, "mtu 1450") || !strings.Contains(out, "link/ether 0a:58:0a:80:00:05") {
		t.Errorf("eth0 in the workload namespace: %s", out)
	}
	if out := ipIn(t, req.Netns, "route", "show", "default"); !strings.Contains(out, "default via 10.128.0.1 dev eth0") {
		t.Errorf("default route: %q", out)
	}

	// A retried ADD gets the same answer and changes nothing.
	res2, err := e.client.CNIAdd(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Address != res.Address || res2.Mac != res.Mac {
		t.Errorf("retried ADD: %v, first %v", res2, res)
	}
	if _, err := e.client.CNICheck(ctx, req); err != nil {
		t.Fatalf("CHECK after ADD: %v", err)
	}
	// Drift is reported by name.
	ipIn(t, req.Netns, "link", "set", "dev", "eth0", "mtu", "1400")
	_, err = e.client.CNICheck(ctx, req)
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "MTU is 1400, want 1450") {
		t.Fatalf("CHECK after MTU change: %v", err)
	}
	wrong := proto.Clone(req).(*sdnv1.CNIRequest)
	wrong.Network = "proj2"
	if _, err := e.client.CNICheck(ctx, wrong); err == nil || !strings.Contains(err.Error(), "attached to network proj1, not proj2") {
		t.Fatalf("CHECK with another network: %v", err)
	}

	// DEL removes everything; a second DEL succeeds with nothing to do.
	del, err := e.client.CNIDel(ctx, &sdnv1.CNIRequest{ContainerId: "c0ffee01", Ifname: "eth0"})
	if err != nil || !del.Removed {
		t.Fatalf("DEL: %v %v", del, err)
	}
	if names := hostLinks(t, e); len(names) != 0 || e.dp.plugged(hostIf) || len(e.cluster.workloads) != 0 {
		t.Fatalf("after DEL: host links %v, plugged %v, workloads %v", names, e.dp.plugged(hostIf), e.cluster.workloads)
	}
	del, err = e.client.CNIDel(ctx, &sdnv1.CNIRequest{ContainerId: "c0ffee01", Ifname: "eth0"})
	if err != nil || del.Removed {
		t.Fatalf("second DEL: %v %v", del, err)
	}
	if _, err := e.client.CNICheck(ctx, req); status.Code(err) != codes.NotFound {
		t.Fatalf("CHECK after DEL: %v", err)
	}
}

func TestFailedAddLeavesNothing(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	// The port is plugged beside the attach: a plug that fails undoes the
	// attach (one detach), as a realize that fails does.
	for _, tc := range []struct {
		name, want string
		code       codes.Code
		breakIt    func()
		detaches   int
	}{
		{"plug fails", "plug " + link.HostVethName("c1", "eth0") + " into the integration bridge: no bridge", codes.Internal,
			func() { e.dp.plugErr = errors.New("no bridge") }, 1},
		{"realize fails", "realize boom", codes.Internal,
			func() { e.dp.plugErr = nil; e.cluster.syncErr = errors.New("realize boom") }, 1},
		{"realize times out", "the datapath did not realize revision", codes.DeadlineExceeded,
			func() { e.cluster.syncErr = context.DeadlineExceeded }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.breakIt()
			before := e.cluster.detaches
			_, err := e.client.CNIAdd(ctx, e.request(t, "c1"))
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ADD: %v, want code %v and %q", err, tc.code, tc.want)
			}
			if names := hostLinks(t, e); len(names) != 0 || len(e.dp.ports) != 0 || len(e.cluster.workloads) != 0 || e.cluster.detaches != before+tc.detaches {
				t.Fatalf("after failed ADD: host links %v, ports %v, workloads %v, detaches %d", names, e.dp.ports, e.cluster.workloads, e.cluster.detaches-before)
			}
		})
	}
	e.cluster.syncErr = nil

	// A refusal of the servers keeps its code and says what failed.
	req := e.request(t, "c2")
	req.Network = "nope"
	_, err := e.client.CNIAdd(ctx, req)
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), `attach workload nope/w-c2: unknown network "nope"`) {
		t.Fatalf("ADD to an unknown network: %v", err)
	}
	if names := hostLinks(t, e); len(names) != 0 || len(e.dp.ports) != 0 {
		t.Fatalf("after an ADD the servers refused: host links %v, ports %v; want none", names, e.dp.ports)
	}
	// A request without a namespace is refused before anything happens.
	_, err = e.client.CNIAdd(ctx, &sdnv1.CNIRequest{ContainerId: "c3", Ifname: "eth0", Network: "proj1", Name: "x"})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "network namespace") {
		t.Fatalf("ADD without netns: %v", err)
	}
}

func TestDelReportsUnreachableServers(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	req := e.request(t, "c4")
	if _, err := e.client.CNIAdd(ctx, req); err != nil {
		t.Fatal(err)
	}
	e.cluster.detachErr = status.Error(codes.Unavailable, "connection refused")
	before := e.cluster.detaches
	_, err := e.client.CNIDel(ctx, req)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "on the servers: connection refused") {
		t.Fatalf("DEL with servers down: %v", err)
	}
	if tries := e.cluster.detaches - before; tries < 2 {
		t.Errorf("Detach tried %d times while the servers were Unavailable, want retries", tries)
	}
	// The local side is gone anyway; the retry completes the detach.
	if names := hostLinks(t, e); len(names) != 0 {
		t.Fatalf("host links after DEL: %v", names)
	}
	e.cluster.detachErr = nil
	if res, err := e.client.CNIDel(ctx, req); err != nil || !res.Removed {
		t.Fatalf("retried DEL: %v %v", res, err)
	}
}

func TestSocketAndHealth(t *testing.T) {
	e := start(t)
	fi, err := os.Stat(e.socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	// A second server on the same socket is refused while the first serves.
	if _, err := ListenUnix(e.socket); err == nil || !strings.Contains(err.Error(), "another process is serving") {
		t.Fatalf("second listener: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := healthpb.NewHealthClient(e.conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "sdn.v1.AgentService"})
		if err == nil && res.Status == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health: %v %v", res, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestListenUnixStaleAndForeign(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close() // the socket file stays, nobody serves it
	l2, err := ListenUnix(stale)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	l2.Close()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	if _, err := ListenUnix(file); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Fatalf("regular file: %v", err)
	}
}

func TestConcurrentAdds(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	reqs := []*sdnv1.CNIRequest{e.request(t, "p1"), e.request(t, "p2"), e.request(t, "p3")}
	reqs = append(reqs, reqs[0], reqs[0]) // the same container three times
	results := make([]*sdnv1.CNIResult, len(reqs))
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = e.client.CNIAdd(ctx, r)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("ADD %d (%s): %v", i, reqs[i].ContainerId, err)
		}
	}
	if a, b, c := results[0].Address, results[3].Address, results[4].Address; a != b || a != c {
		t.Errorf("one container, three ADDs: addresses %s %s %s", a, b, c)
	}
	if names := hostLinks(t, e); len(names) != 3 {
		t.Errorf("host ends %v, want 3", names)
	}
	for _, r := range reqs[:3] {
		if _, err := e.client.CNICheck(ctx, r); err != nil {
			t.Errorf("CHECK %s: %v", r.ContainerId, err)
		}
	}
}
