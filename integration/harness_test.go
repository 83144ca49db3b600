package integration

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds sdnd and sdnctl once per test run.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "sdn-integration-bin-")
		if buildErr != nil {
			return
		}
		for bin, pkg := range map[string]string{"sdnd": "sdnd", "sdnctl": "sdnctl", "sdn": "cni", "sdnprobe": "integration/cmd/sdnprobe"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, bin), "../"+pkg).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// unsafeReadsBinaries returns a directory like binaries' but whose sdnd is
// built with the tag sdn_unsafe_reads, which compiles in the test-only
// switch for stale follower reads (api.UnsafeFollowerReadsEnv); the other
// binaries are binaries' own. Only TestLinearizabilityCatchesStaleFollowerReads
// runs it: every other test runs the production build.
func unsafeReadsBinaries(t *testing.T) string {
	t.Helper()
	bin := binaries(t)
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-tags", "sdn_unsafe_reads", "-o", filepath.Join(dir, "sdnd"), "../sdnd").CombinedOutput()
	if err != nil {
		t.Fatalf("go build -tags sdn_unsafe_reads sdnd: %v\n%s", err, out)
	}
	for _, name := range []string{"sdnctl", "sdn", "sdnprobe"} {
		if err := os.Symlink(filepath.Join(bin, name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// devServer is a real `sdnd --dev` process.
type devServer struct {
	addr    string
	dataDir string
	cmd     *exec.Cmd
	log     *bytes.Buffer
	bin     string
}

func startDev(t *testing.T) *devServer {
	t.Helper()
	d := &devServer{addr: freePort(t), dataDir: t.TempDir(), bin: binaries(t)}
	d.start(t)
	return d
}

func (d *devServer) start(t *testing.T) {
	t.Helper()
	d.log = &bytes.Buffer{}
	d.cmd = exec.Command(filepath.Join(d.bin, "sdnd"), "--dev", "--data-dir", d.dataDir, "--listen", d.addr, "--raft-addr", freePort(t), "--node-name", "dev",
		// Hosts these tests register have no agent: never mark them down
		// mid-test (that is a store change of its own; liveness_test.go).
		"--node-down-after", "1h")
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.stop() })
	d.waitHealthy(t)
}

func (d *devServer) stop() {
	if d.cmd != nil && d.cmd.Process != nil && d.cmd.ProcessState == nil {
		d.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { d.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			d.cmd.Process.Kill()
			<-done
		}
	}
}

func (d *devServer) conn(t *testing.T) *grpc.ClientConn {
	t.Helper()
	c, err := grpc.NewClient(d.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitHealthy polls gRPC health (served by sdnd) until SERVING.
func (d *devServer) waitHealthy(t *testing.T) {
	t.Helper()
	c := d.conn(t)
	h := healthpb.NewHealthClient(c)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		res, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && res.Status == healthpb.HealthCheckResponse_SERVING {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("sdnd did not become healthy; its log:\n%s", d.log)
}

// sdnctl runs the CLI against the server and returns stdout, stderr and the
// exit code.
func (d *devServer) sdnctl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(d.bin, "sdnctl"), append([]string{"--server", d.addr}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func (d *devServer) mustSdnctl(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := d.sdnctl(t, args...)
	if code != 0 {
		t.Fatalf("sdnctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// dump is everything the store holds, as the user sees it in JSON.
func (d *devServer) dump(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, kind := range []string{"cluster", "networks", "nodes", "workloads"} {
		b.WriteString(d.mustSdnctl(t, "get", kind, "-o", "json"))
	}
	return b.String()
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
