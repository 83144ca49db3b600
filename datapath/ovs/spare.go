package ovs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// # Spare processes
//
// A realize that adds a workload runs two ovs-ofctl processes that read
// their input on stdin: `bundle` and `parse-flows` (reconcile.go,
// canon.go). Most of such a run is ovs-ofctl's start-up (loading
// libopenvswitch and its libraries, ~2 ms of a 4 ms one-flow bundle here)
// before it reads a byte. So the instance keeps one spare process per such
// command line, started ahead of time and blocked reading its stdin: a run
// takes the spare, writes its input, closes stdin and waits, and a new
// spare is started in the background for the next run.
//
// A spare that exited before it was taken (killed, say) is discarded and
// the run starts a fresh process, so a run sees the same outcomes as a
// fresh process would. Close kills the spares. If sdnd dies without Close,
// each spare reads end-of-file on its stdin: an empty bundle or parse,
// which changes nothing, and exits.

// spares holds the idle spare processes of an Instance, by command line.
type spares struct {
	mu       sync.Mutex
	idle     map[string]*spareProc
	starting map[string]bool
	closed   bool
}

// spareProc is one started process waiting on its stdin.
type spareProc struct {
	cmd            *exec.Cmd
	stdin          io.WriteCloser
	stdout, stderr bytes.Buffer
	done           chan struct{} // closed once Wait returned
	err            error         // Wait's, valid after done
}

func spareKey(name string, args []string) string {
	return name + "\x00" + strings.Join(args, "\x00")
}

// startSpare starts name with args, stdin a pipe, and the instance's
// environment.
func (i *Instance) startSpare(name string, args []string) (*spareProc, error) {
	p := &spareProc{cmd: exec.Command(name, args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), i.Env()...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether p's process has ended.
func (p *spareProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill ends p's process and waits for it.
func (p *spareProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// take returns the idle spare for key, if a live one is there.
func (s *spares) take(key string) *spareProc {
	s.mu.Lock()
	p := s.idle[key]
	delete(s.idle, key)
	s.mu.Unlock()
	if p != nil && p.exited() {
		return nil
	}
	return p
}

// refill starts a spare for key in the background unless one is idle or
// being started, or the instance is closed.
func (i *Instance) refill(key, name string, args []string) {
	s := &i.spare
	s.mu.Lock()
	if s.closed || s.idle[key] != nil || s.starting[key] {
		s.mu.Unlock()
		return
	}
	if s.starting == nil {
		s.starting, s.idle = map[string]bool{}, map[string]*spareProc{}
	}
	s.starting[key] = true
	s.mu.Unlock()
	go func() {
		p, err := i.startSpare(name, args)
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.starting, key)
		if err != nil {
			return // the next run starts its own process and reports why
		}
		if s.closed || s.idle[key] != nil {
			go p.kill()
			return
		}
		s.idle[key] = p
	}()
}

// closeSpares kills the idle spares; no new ones are started.
func (s *spares) closeSpares() {
	s.mu.Lock()
	s.closed = true
	idle := s.idle
	s.idle = nil
	s.mu.Unlock()
	for _, p := range idle {
		p.kill()
	}
}

// runInput runs name with args and input on its stdin, through a spare
// process when one is ready, and returns its stdout; failures are
// CommandErrors as run's are.
func (i *Instance) runInput(ctx context.Context, input string, name string, args ...string) (string, error) {
	key := spareKey(name, args)
	p := i.spare.take(key)
	defer i.refill(key, name, args)
	if p == nil {
		return i.run(ctx, strings.NewReader(input), name, args...)
	}
	// The write goes beside the wait, so that a process that stops
	// reading cannot hold the caller past ctx (the kill ends the write).
	wrote := make(chan error, 1)
	go func() {
		_, werr := io.WriteString(p.stdin, input)
		wrote <- errors.Join(werr, p.stdin.Close())
	}()
	select {
	case <-p.done:
	case <-ctx.Done():
		p.kill()
	}
	werr := <-wrote
	err := p.err
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err == nil {
		// It exited 0 without all of its input: say so rather than take
		// a partial run for a whole one.
		err = werr
	}
	if err != nil {
		return p.stdout.String(), &CommandError{Args: append([]string{name}, args...), Err: err, Stderr: strings.TrimSpace(p.stderr.String())}
	}
	return p.stdout.String(), nil
}
