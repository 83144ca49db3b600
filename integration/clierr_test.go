package integration

// What sdnctl says when the server dies, stops or speaks the other
// transport, and how it stops when interrupted: real sdnd and sdnctl
// processes (docs/operations.md lists the messages).

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/pki"
	"github.com/sdn-dev/sdn/spec"
)

// tlsWords must not appear where TLS has nothing to do with a failure.
var tlsWords = []string{"TLS", "tls", "certificate"}

// bigApply writes n networks into big.hcl in a new directory and returns
// the directory and the size of the ApplyRequest sdnctl sends for it when
// run there (each object's source range names the file as given).
func bigApply(t *testing.T, n int) (string, int64) {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "network \"n%05d\" {\n  labels = { env = \"dev\", team = \"t%d\" }\n}\n", i, i%50)
	}
	dir := t.TempDir()
	writeFile(t, dir, "big.hcl", b.String())
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	doc, diags := spec.LoadPaths([]string{"big.hcl"})
	if err := os.Chdir(wd); err != nil {
		t.Fatal(err)
	}
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return dir, int64(proto.Size(doc.ApplyRequest()))
}

// ioBytes is how many bytes process pid has read and written (/proc/PID/io
// rchar and wchar: files and sockets alike).
func ioBytes(t *testing.T, pid int) (read, written int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, v, _ := strings.Cut(line, ": ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch name {
		case "rchar":
			read = n
		case "wchar":
			written = n
		}
	}
	return read, written
}

// cliTLS makes the certificates of server s1 (at 127.0.0.1) and client
// admin; it returns the TLS flags of each.
func cliTLS(t *testing.T) (server, client []string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tls")
	if out, err := exec.Command(filepath.Join(binaries(t), "sdnctl"), "tls", "init", "--dir", dir,
		"--servers", "s1=127.0.0.1", "--clients", "admin").CombinedOutput(); err != nil {
		t.Fatalf("sdnctl tls init: %v\n%s", err, out)
	}
	return tlsFlags(pki.PathsFor(dir, pki.RoleServer, "s1")), tlsFlags(pki.PathsFor(dir, pki.RoleClient, "admin"))
}

// startOne starts a one-server cluster, with TLS when serverTLS is set,
// and waits until sdnctl with ctlTLS gets an answer from it.
func startOne(t *testing.T, serverTLS, ctlTLS []string) *serverProc {
	t.Helper()
	p := newServerProc(t, "s1", append([]string{"--bootstrap"}, serverTLS...)...)
	p.start(t)
	waitReady(t, p, ctlTLS)
	return p
}

func waitReady(t *testing.T, p *serverProc, ctlTLS []string) {
	t.Helper()
	waitFor(t, 30*time.Second, "the server to answer", func() bool {
		_, _, code := sdnctlAt(t, p.addr, append(ctlTLS, "--timeout", "2s", "get", "networks")...)
		return code == 0
	}, p)
}

// ctlProc is an sdnctl process running in the background.
type ctlProc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
}

// startCtl starts sdnctl in dir ("": the test's own directory).
func startCtl(t *testing.T, dir, server string, args ...string) *ctlProc {
	t.Helper()
	c := &ctlProc{stdout: newSyncBuffer(), stderr: newSyncBuffer(), done: make(chan struct{})}
	c.cmd = exec.Command(filepath.Join(binaries(t), "sdnctl"), append([]string{"--server", server}, args...)...)
	c.cmd.Dir = dir
	c.cmd.Stdout, c.cmd.Stderr = c.stdout, c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.done
	})
	return c
}

func (c *ctlProc) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// wait waits for sdnctl to exit (it fails the test after 60 s: an
// interrupted or failing sdnctl that does not exit is the bug) and
// returns its exit code and stderr.
func (c *ctlProc) wait(t *testing.T, what string) (int, string) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: sdnctl did not exit; stderr:\n%s", what, c.stderr.String())
	}
	return c.cmd.ProcessState.ExitCode(), c.stderr.String()
}

// applyUntil starts `sdnctl apply -f big.hcl` in dir against p and
// returns it once p's sdnd has read (or, with written, written) n bytes
// more than before. ok is false when the apply ended first.
func applyUntil(t *testing.T, p *serverProc, ctlTLS []string, dir string, written bool, n int64) (c *ctlProc, ok bool) {
	t.Helper()
	pid := p.cmd.Process.Pid
	count := func() int64 {
		r, w := ioBytes(t, pid)
		if written {
			return w
		}
		return r
	}
	base := count()
	c = startCtl(t, dir, p.addr, append(ctlTLS, "--timeout", "5m", "apply", "-f", "big.hcl")...)
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if count()-base >= n {
			return c, true
		}
		if c.exited() {
			return c, false
		}
	}
	t.Fatalf("sdnd did not read or write the request in 2 minutes; sdnctl says:\n%s", c.stderr.String())
	return nil, false
}

// wantSays checks what sdnctl printed.
func wantSays(t *testing.T, what, stderr string, want, notWant []string) {
	t.Helper()
	t.Logf("%s: %s", what, stderr)
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("%s: sdnctl does not say %q:\n%s", what, w, stderr)
		}
	}
	for _, w := range notWant {
		if strings.Contains(stderr, w) {
			t.Errorf("%s: sdnctl says %q:\n%s", what, w, stderr)
		}
	}
}

// TestCLIServerKilledDuringApply kills sdnd (SIGKILL) once it wrote as
// much as a 15,000-network apply's request (into its raft log): sdnctl
// says the outcome is unknown and how to check it, with no word of TLS
// (it used to blame TLS or the client certificate, for an apply that was
// committed), with and without TLS. The restarted server has all of the
// apply or none of it (usually all: it was in the log).
func TestCLIServerKilledDuringApply(t *testing.T) {
	dir, size := bigApply(t, 15000)
	serverTLS, clientTLS := cliTLS(t)
	for _, c := range []struct {
		name              string
		serverTLS, ctlTLS []string
	}{{"plaintext", nil, nil}, {"TLS", serverTLS, clientTLS}} {
		t.Run(c.name, func(t *testing.T) {
			for attempt := 1; ; attempt++ {
				p := startOne(t, c.serverTLS, c.ctlTLS)
				ctl, ok := applyUntil(t, p, c.ctlTLS, dir, true, size)
				if !ok {
					code, stderr := ctl.wait(t, "apply")
					p.stop(os.Interrupt)
					if code == 0 && attempt < 3 {
						t.Logf("attempt %d: the apply finished before the kill; again", attempt)
						continue
					}
					t.Fatalf("the apply ended before sdnd wrote it: exit %d\n%s", code, stderr)
				}
				p.stop(syscall.SIGKILL)
				code, stderr := ctl.wait(t, "apply")
				if code != 1 {
					t.Fatalf("apply: exit %d, want 1\n%s", code, stderr)
				}
				wantSays(t, "apply killed", stderr, []string{
					"sdnctl: lost the connection to sdnd at " + p.addr + " after sending the request (",
					"): the outcome is unknown; check with `sdnctl plan` or `sdnctl status`\n",
				}, tlsWords)
				p.start(t)
				waitReady(t, p, c.ctlTLS)
				plan := startCtl(t, dir, p.addr, append(c.ctlTLS, "plan", "-f", "big.hcl")...)
				if code, errs := plan.wait(t, "plan"); code != 0 {
					t.Fatalf("plan after the restart: exit %d\n%s", code, errs)
				}
				last := tailString(plan.stdout.String(), 1)
				t.Logf("after the restart, plan says: %s", last)
				if !strings.HasPrefix(last, "No changes.") && last != "Plan: 15000 to create, 0 to update, 0 to delete." {
					t.Errorf("after the restart, part of the apply: %s", last)
				}
				return
			}
		})
	}
}

// TestCLIStoppedServer: sdnctl against a server that accepts connections
// and never answers (SIGSTOP) says "no answer", not a TLS diagnosis,
// both at --timeout and at gRPC's own connect timeout (20 s); against the
// running servers, plaintext against TLS and back keep their hints.
func TestCLIStoppedServer(t *testing.T) {
	serverTLS, clientTLS := cliTLS(t)
	plain := startOne(t, nil, nil)
	secure := startOne(t, serverTLS, clientTLS)

	_, errs, code := sdnctlAt(t, secure.addr, "get", "networks")
	if code != 1 {
		t.Errorf("plaintext to TLS: exit %d", code)
	}
	wantSays(t, "plaintext to TLS", errs, []string{"sdnctl: cannot talk to sdnd at " + secure.addr +
		": it speaks mutual TLS and sdnctl ran without TLS: pass --tls-ca, --tls-cert and --tls-key"}, nil)
	_, errs, code = sdnctlAt(t, plain.addr, append(clientTLS, "get", "networks")...)
	if code != 1 {
		t.Errorf("TLS to plaintext: exit %d", code)
	}
	wantSays(t, "TLS to plaintext", errs, []string{"sdnctl: cannot talk to sdnd at " + plain.addr +
		": it speaks plaintext (sdnd --dev or --insecure-plaintext) and sdnctl dialled with TLS: drop --tls-ca"}, nil)

	for _, p := range []*serverProc{plain, secure} {
		if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.cmd.Process.Signal(syscall.SIGCONT) })
	}
	noAnswer := func(p *serverProc) string {
		return "sdnctl: no answer from sdnd at " + p.addr + " within "
	}
	silence := "it accepted the connection but sent nothing back, so the request was not sent; is sdnd stopped (SIGSTOP, a debugger) or overloaded"
	// gRPC gives up connecting after 20 s, before the default --timeout.
	long := startCtl(t, "", plain.addr, "get", "networks")
	for _, c := range []struct {
		name string
		p    *serverProc
		args []string
	}{
		{"plaintext get", plain, []string{"get", "networks"}},
		{"TLS apply", secure, append(clientTLS, "apply", "-f", "../examples")},
		{"plaintext to a stopped TLS server", secure, []string{"plan", "-f", "../examples"}},
	} {
		_, errs, code := sdnctlAt(t, c.p.addr, append([]string{"--timeout", "3s"}, c.args...)...)
		if code != 1 {
			t.Errorf("%s: exit %d", c.name, code)
		}
		wantSays(t, c.name, errs, []string{noAnswer(c.p) + "3s: " + silence, "(raise --timeout if it is only slow)"}, tlsWords)
	}
	code, errs = long.wait(t, "get at the default timeout")
	if code != 1 {
		t.Errorf("get at the default timeout: exit %d", code)
	}
	wantSays(t, "get at the default timeout", errs, []string{noAnswer(plain), silence}, append(tlsWords, "raise --timeout"))

	for _, p := range []*serverProc{plain, secure} {
		p.cmd.Process.Signal(syscall.SIGCONT)
	}
	waitReady(t, plain, nil)
	waitReady(t, secure, clientTLS)
}

// TestCLIInterrupt: SIGINT or SIGTERM stops sdnctl wherever it is (reading
// a file that never ends, connecting to a stopped server, waiting for
// hosts, waiting for the answer to an apply), with exit code 130 or 143;
// an apply interrupted after its request left says the outcome is unknown.
func TestCLIInterrupt(t *testing.T) {
	p := startOne(t, nil, nil)
	dir, _ := bigApply(t, 15000)

	// A FIFO nobody writes to: reading the files blocks.
	fifo := filepath.Join(t.TempDir(), "never.hcl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	c := startCtl(t, "", p.addr, "apply", "-f", fifo)
	time.Sleep(500 * time.Millisecond)
	c.cmd.Process.Signal(syscall.SIGTERM)
	if code, errs := c.wait(t, "apply of a FIFO"); code == 1 && strings.Contains(errs, "Not a regular file") {
		t.Logf("sdnctl no longer reads a FIFO (%s); reading files does not block", strings.TrimSpace(errs))
	} else if code != 143 || errs != "sdnctl: interrupted while reading the files: nothing was sent to sdnd\n" {
		t.Errorf("apply of a FIFO, SIGTERM: exit %d, stderr %q", code, errs)
	}

	// apply --wait, a registered host realizing nothing.
	w := startWaitingApply(t, p.addr, p.addr, "h1")
	waitFor(t, 30*time.Second, "apply --wait to wait", func() bool {
		return strings.Contains(w.stderr.String(), "waiting for hosts to realize revision")
	}, p)
	w.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { w.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("apply --wait did not exit after SIGINT\n%s", w.stderr.String())
	}
	if code := w.cmd.ProcessState.ExitCode(); code != 130 || !strings.HasSuffix(w.stderr.String(), "\nsdnctl: interrupted\n") {
		t.Errorf("apply --wait, SIGINT: exit %d, stderr:\n%s", code, w.stderr.String())
	}

	// An apply whose request is on its way to a server that stops.
	c, ok := applyUntil(t, p, nil, dir, false, 64<<10)
	if !ok {
		code, errs := c.wait(t, "apply")
		t.Fatalf("the apply ended before the server read 64 KiB of it: exit %d\n%s", code, errs)
	}
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Signal(syscall.SIGCONT) })
	time.Sleep(500 * time.Millisecond)
	c.cmd.Process.Signal(syscall.SIGINT)
	code, errs := c.wait(t, "apply to a stopped server")
	if code != 130 {
		t.Errorf("apply to a stopped server, SIGINT: exit %d", code)
	}
	wantSays(t, "apply to a stopped server, SIGINT", errs, []string{"sdnctl: interrupted after the request was sent to sdnd at " + p.addr +
		": the outcome is unknown; check with `sdnctl plan` or `sdnctl status`\n"}, nil)

	// Connecting to the stopped server.
	c = startCtl(t, "", p.addr, "get", "networks")
	time.Sleep(500 * time.Millisecond)
	c.cmd.Process.Signal(syscall.SIGINT)
	if code, errs := c.wait(t, "get from a stopped server"); code != 130 || errs != "sdnctl: interrupted\n" {
		t.Errorf("get from a stopped server, SIGINT: exit %d, stderr %q", code, errs)
	}
}
