package suites

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// memberProc is one member process of a raft cluster under test (an sdnd
// server or an etcd member): started with its output appended to a log,
// killed, restarted and stopped.
type memberProc struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has exited and been reaped
}

// start runs prog with args, output appended to logPath.
func (p *memberProc) start(logPath, prog string, args ...string) error {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(prog, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", prog, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited = cmd, exited
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	return nil
}

func (p *memberProc) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill SIGKILLs the process and waits until it is gone.
func (p *memberProc) kill() error {
	if !p.running() {
		return fmt.Errorf("%s is not running", p.cmd.Path)
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	return nil
}

// stop ends a running process: SIGTERM, then SIGKILL after grace.
func (p *memberProc) stop(grace time.Duration) {
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// waitFor polls check every 100 ms until it succeeds, timeout passes or ctx
// ends, and returns its last error with hint appended.
func waitFor(ctx context.Context, timeout time.Duration, hint string, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%w%s", err, hint)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
