package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// interruptible runs sdnctl in-process under a context the returned
// function cancels as the signal sig would; wait returns the result.
func interruptible(t *testing.T, addr string, args ...string) (interrupt func(syscall.Signal), wait func() result) {
	t.Helper()
	ctx, cancel := context.WithCancelCause(context.Background())
	t.Cleanup(func() { cancel(nil) })
	done := make(chan result, 1)
	go func() {
		var out, errb bytes.Buffer
		code := run(ctx, append([]string{"--server", addr}, args...), &out, &errb, func(string) string { return "" })
		done <- result{out.String(), errb.String(), code}
	}()
	interrupt = func(sig syscall.Signal) { cancel(signalCause{sig}) }
	wait = func() result {
		t.Helper()
		select {
		case r := <-done:
			return r
		case <-time.After(30 * time.Second):
			t.Fatalf("sdnctl %s did not stop after the interruption", strings.Join(args, " "))
			return result{}
		}
	}
	return interrupt, wait
}

// TestInterrupt: SIGINT or SIGTERM stops a command wherever it is, with
// exit code 128 + the signal's number; a write whose request had left
// says its outcome is unknown.
func TestInterrupt(t *testing.T) {
	writeFiles(t, map[string]string{"file.hcl": fileHCL})
	entered := make(chan string, 1)
	block := func(ctx context.Context, what string) {
		entered <- what
		<-ctx.Done()
	}
	addr, _ := serveScripted(t, &scriptedConfig{
		apply: func(ctx context.Context, req *sdnv1.ApplyRequest) (*sdnv1.ApplyResponse, error) {
			block(ctx, "apply")
			return nil, ctx.Err()
		},
		list: func(ctx context.Context) (*sdnv1.ListResponse, error) {
			block(ctx, "list")
			return nil, ctx.Err()
		},
	}, nil)
	silent, accepted := silentListener(t)

	for _, c := range []struct {
		name  string
		addr  string
		args  []string
		ready <-chan struct{} // the command is where the test interrupts it
		sig   syscall.Signal
		code  int
		want  string
	}{
		{"a write, sent", addr, []string{"apply", "-f", "file.hcl"}, nil, syscall.SIGINT, 130,
			"sdnctl: interrupted after the request was sent to sdnd at " + addr + ": the outcome is unknown; check with `sdnctl plan` or `sdnctl status`\n"},
		{"a read, sent", addr, []string{"get", "networks"}, nil, syscall.SIGTERM, 143, "sdnctl: interrupted\n"},
		{"a write, connecting", silent, []string{"apply", "-f", "file.hcl"}, accepted, syscall.SIGINT, 130,
			"sdnctl: interrupted before the request was sent: nothing changed\n"},
	} {
		interrupt, wait := interruptible(t, c.addr, c.args...)
		if c.ready == nil {
			select {
			case <-entered:
			case <-time.After(30 * time.Second):
				t.Fatalf("%s: the call did not reach the server", c.name)
			}
		} else {
			<-c.ready
		}
		interrupt(c.sig)
		if r := wait(); r.code != c.code || r.stderr != c.want {
			t.Errorf("%s: exit %d, stderr %q; want %d, %q", c.name, r.code, r.stderr, c.code, c.want)
		}
	}
}

// TestInterruptReadingFiles: an interruption stops a read that blocks (a
// FIFO nobody writes to).
func TestInterruptReadingFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "never.hcl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Let the abandoned read finish when the test ends.
	t.Cleanup(func() {
		if f, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
			f.Close()
		}
	})
	interrupt, wait := interruptible(t, "127.0.0.1:1", "validate", "-f", fifo)
	time.Sleep(200 * time.Millisecond)
	interrupt(syscall.SIGINT)
	r := wait()
	if r.code == 1 && strings.Contains(r.stderr, "Not a regular file") {
		t.Skipf("sdnctl no longer reads a FIFO, so reading files does not block: %s", r.stderr)
	}
	if r.code != 130 || r.stderr != "sdnctl: interrupted while reading the files: nothing was sent to sdnd\n" {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestSignalContext: SIGINT ends the context with the signal as its cause.
func TestSignalContext(t *testing.T) {
	ctx, stop := signalContext(context.Background())
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("SIGINT did not end the context")
	}
	if sig := interruptSignal(ctx); sig != syscall.SIGINT {
		t.Errorf("signal %v, want SIGINT", sig)
	}
	if interruptSignal(context.Background()) != 0 {
		t.Error("a context no signal ended has a signal")
	}
}
