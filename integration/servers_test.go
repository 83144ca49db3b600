package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// sdnctlAt runs the CLI against server (any --server value) and returns
// stdout, stderr and the exit code.
func sdnctlAt(t *testing.T, server string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binaries(t), "sdnctl"), append([]string{"--server", server}, args...)...)
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

// serverProc is a real `sdnd --server` process on loopback.
type serverProc struct {
	id, addr, dataDir string
	args              []string // besides the id, address and data dir
	cmd               *exec.Cmd
	log               *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for a process's output and readers.
type syncBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.String()
}

func newServerProc(t *testing.T, id string, args ...string) *serverProc {
	return &serverProc{id: id, addr: freePort(t), dataDir: t.TempDir(), args: args}
}

func (p *serverProc) start(t *testing.T) {
	t.Helper()
	p.log = newSyncBuffer()
	args := append([]string{"--server", "--node-name", p.id, "--listen", p.addr, "--data-dir", p.dataDir}, p.args...)
	if !slices.ContainsFunc(p.args, func(a string) bool { return strings.HasPrefix(a, "--tls-") }) {
		args = append(args, "--insecure-plaintext") // the tests that are not about TLS
	}
	p.cmd = exec.Command(filepath.Join(binaries(t), "sdnd"), args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stop(os.Interrupt) })
}

// stop signals the process and waits for it (SIGKILL after 10 s).
func (p *serverProc) stop(sig os.Signal) {
	if p.cmd == nil || p.cmd.Process == nil || p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

func (p *serverProc) sdnctl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return sdnctlAt(t, p.addr, args...)
}

// waitFor polls cond every 100 ms for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool, logs ...*serverProc) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	var b strings.Builder
	for _, p := range logs {
		b.WriteString("\n--- " + p.id + " ---\n" + tailString(p.log.String(), 20))
	}
	t.Fatalf("timed out after %s waiting for %s%s", d, what, b.String())
}

func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitingApply is `sdnctl apply --wait` running in the background while a
// registered host has realized nothing yet.
type waitingApply struct {
	host           string
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	revision       uint64 // the host's registration revision
}

// startWaitingApply registers host through server (no agent: it reports
// nothing) and starts `sdnctl --server servers apply -f ../examples --wait`.
func startWaitingApply(t *testing.T, servers, server, host string) *waitingApply {
	t.Helper()
	nodes, ctx := plainNodes(t, server)
	reg, err := nodes.Register(ctx, &sdnv1.RegisterNodeRequest{Name: host, UnderlayIp: "198.18.9.9", UnderlayMtu: 1500})
	if err != nil {
		t.Fatalf("register %s: %v", host, err)
	}
	w := &waitingApply{host: host, stdout: newSyncBuffer(), stderr: newSyncBuffer(), revision: reg.Revision}
	w.cmd = exec.Command(filepath.Join(binaries(t), "sdnctl"), "--server", servers, "apply", "-f", "../examples", "--wait", "--wait-timeout", "60s")
	w.cmd.Stdout, w.cmd.Stderr = w.stdout, w.stderr
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if w.cmd.ProcessState == nil {
			w.cmd.Process.Kill()
			w.cmd.Wait()
		}
	})
	return w
}

// heartbeat sends the host's heartbeat through server, relaying a realize
// report of a revision far ahead of the apply's.
func (w *waitingApply) heartbeat(t *testing.T, server string) {
	t.Helper()
	nodes, ctx := plainNodes(t, server)
	req := &sdnv1.HeartbeatRequest{Node: w.host, Realized: &sdnv1.ReportRealizedRequest{Revision: w.revision + 1000}}
	if _, err := nodes.Heartbeat(ctx, req); err != nil {
		t.Fatalf("heartbeat %s: %v", w.host, err)
	}
}

// finish waits for sdnctl and checks it saw the wait through.
func (w *waitingApply) finish(t *testing.T) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- w.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil || !strings.Contains(w.stdout.String(), "realized on all 1 host") {
			t.Fatalf("apply --wait across the handover: %v\nstdout:\n%s\nstderr:\n%s", err, w.stdout.String(), w.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("apply --wait did not finish after the heartbeat\nstderr:\n%s", w.stderr.String())
	}
}

// plainNodes is a NodeService client of a plaintext server, closed with
// the test, and a context of 10 s for its calls.
func plainNodes(t *testing.T, server string) (sdnv1.NodeServiceClient, context.Context) {
	t.Helper()
	cc, err := grpc.NewClient(server, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return sdnv1.NewNodeServiceClient(cc), ctx
}
