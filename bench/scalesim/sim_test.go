package scalesim

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// startSDND builds sdnd and starts one `sdnd --dev` on a free loopback
// port; it skips the test when sdnd cannot be built.
func startSDND(t *testing.T) (addr string, conn *grpc.ClientConn) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "sdnd")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/sdn-dev/sdn/sdnd").CombinedOutput(); err != nil {
		t.Skipf("cannot build sdnd: %v: %s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = l.Addr().String()
	l.Close()
	logf, err := os.Create(filepath.Join(dir, "sdnd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--dev", "--node-name", "s1", "--data-dir", filepath.Join(dir, "data"), "--listen", addr, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })
	conn, err = grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := sdnv1.NewClusterServiceClient(conn).Info(context.Background(), &sdnv1.InfoRequest{})
		if err == nil && res.Server.GetLeader() {
			return addr, conn
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("sdnd does not lead after 30 s: %v\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Twenty simulated hosts against a real server: all register and get
// their snapshot, an attach reaches its host (and, unfiltered or not,
// only its host holds it), and Verify finds every host right.
func TestSimAgainstSDND(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real sdnd")
	}
	addr, conn := startSDND(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := sdnv1.NewConfigServiceClient(conn)
	if _, err := cfg.Apply(ctx, &sdnv1.ApplyRequest{
		Cluster: &sdnv1.ClusterSettings{Cidr: "10.0.0.0/8", HostPrefix: 22}, Networks: []*sdnv1.Network{{Name: "n"}},
	}); err != nil {
		t.Fatal(err)
	}
	sim, err := New(Config{Servers: []string{addr}, Hosts: 20, Prefix: "t-"})
	if err != nil {
		t.Fatal(err)
	}
	sim.Start(ctx)
	defer sim.Stop()
	if err := sim.WaitAll(ctx, 10*time.Millisecond, func(h *Host) bool { return h.Watching() }, nil); err != nil {
		t.Fatalf("hosts watching: %v", err)
	}
	target := sim.Hosts()[7]
	res, err := sdnv1.NewWorkloadServiceClient(conn).Attach(ctx, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{Name: "w", Network: "n", Node: target.Name}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.WaitAll(ctx, 10*time.Millisecond, func(h *Host) bool { return h != target || h.Revision() >= res.Revision }, nil); err != nil {
		t.Fatalf("the target host has the attach's revision: %v", err)
	}
	target.View(func(d *model.Desired) {
		if d.Workloads["n/w"] == nil {
			t.Errorf("host %s does not hold its workload n/w at revision %d", target.Name, d.Revision)
		}
	})
	bad, exp, err := sim.Verify(ctx, conn, 10*time.Second)
	if err != nil || len(bad) > 0 {
		t.Fatalf("Verify: %v, %d hosts differ: %v", err, len(bad), bad)
	}
	if len(exp.Nodes) != 20 {
		t.Errorf("the leader lists %d nodes, want 20", len(exp.Nodes))
	}
	st := sim.Stats()
	if st.Registrations != 20 || st.Snapshots < 20 || st.Errors.Total() != 0 || st.Bytes == 0 {
		t.Errorf("stats: %s", st)
	}
}
