package lab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A daemon is a long-running process of the lab (sdnd), started inside a
// network namespace with `ip netns exec`, detached into its own session so
// it outlives the process that started it, and known by its pidfile. Its
// identity is checked against /proc/PID/cmdline (which must hold mark), so
// a recycled pid is never taken for it.
type daemon struct {
	pidfile string
	mark    string // a string only this daemon's command line holds, e.g. its --data-dir
}

// pid returns the daemon's pid if it runs, else 0.
func (d daemon) pid() int {
	b, err := os.ReadFile(d.pidfile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	if !alive(pid) || !bytes.Contains(cmdline(pid), []byte(d.mark)) {
		return 0
	}
	return pid
}

// start runs `ip netns exec ns prog args...` with stdout and stderr
// appended to logPath, and records its pid. `ip netns exec` execs prog, so
// the pid is prog's; start returns once that exec is done.
func (d daemon) start(ns, logPath, prog string, args ...string) (int, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(logf, "==== %s: %s %s\n", time.Now().Format(time.RFC3339), prog, strings.Join(args, " "))
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, prog}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = filepath.Dir(logPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return 0, fmt.Errorf("start %s in netns %s: %w", prog, ns, err)
	}
	pid := cmd.Process.Pid
	// Reap it if it exits while this process lives (otherwise init will),
	// and say how it ended in its log.
	go func() {
		err := cmd.Wait()
		if err == nil {
			err = errors.New("exit status 0")
		}
		fmt.Fprintf(logf, "==== %s: %s (pid %d) ended: %v\n", time.Now().Format(time.RFC3339), filepath.Base(prog), pid, err)
		logf.Close()
	}()
	if err := os.WriteFile(d.pidfile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		return 0, err
	}
	// The mark is on `ip netns exec`'s command line too, so pid() already
	// sees the daemon while `ip` still sets up the namespace; and while it
	// execs prog, /proc/PID/cmdline reads empty for a moment, which pid()
	// would take for an exit. Return only once the exec is done: the
	// process runs prog's executable.
	exe, _ := filepath.Abs(prog)
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if runs, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); runs == exe && d.pid() == pid {
			break
		}
		if !alive(pid) {
			time.Sleep(100 * time.Millisecond) // the reaper's line
			return 0, fmt.Errorf("%s exited at once in netns %s; see %s:\n%s", prog, ns, logPath, tail(logPath, 15))
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return 0, fmt.Errorf("%s (pid %d) in netns %s: it never ran %s with %s on its command line", prog, pid, ns, exe, d.mark)
		}
	}
	return pid, nil
}

// stop ends the daemon (SIGTERM, SIGKILL after grace) and removes its
// pidfile. No error if it does not run.
func (d daemon) stop(grace time.Duration) error {
	pid := d.pid()
	if pid != 0 {
		if err := kill(pid, grace); err != nil {
			return err
		}
	}
	if err := os.Remove(d.pidfile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// kill sends SIGTERM to pid and waits up to grace for it to exit, then
// SIGKILLs it.
func kill(pid int, grace time.Duration) error {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if waitGone(pid, grace) {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	if waitGone(pid, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("process %d (%s) still alive after SIGKILL", pid, bytes.ReplaceAll(cmdline(pid), []byte{0}, []byte{' '}))
}

func waitGone(pid int, d time.Duration) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if !alive(pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	j := bytes.LastIndexByte(stat, ')')
	if j < 0 || j+2 >= len(stat) {
		return false
	}
	if s := stat[j+2]; s == 'Z' || s == 'X' {
		// Collect it if it is our child (e.g. `ip netns exec` of a daemon
		// started by this process); otherwise its parent will.
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		return false
	}
	return true
}

func cmdline(pid int) []byte {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return b
}

// labPrograms are the programs a lab runs as daemons.
var labPrograms = map[string]bool{"sdnd": true, "ovsdb-server": true, "ovs-vswitchd": true}

// procsUnder returns the live lab daemons (labPrograms) whose command line
// names a path inside dir (an argument equal to dir, or starting with
// dir+"/", or a --flag=dir/... form). Those are the lab's, whatever their
// pidfiles say; anybody else's process (a `tail -f` of a log) is left alone.
func procsUnder(dir string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		args := bytes.Split(cmdline(pid), []byte{0})
		if !labPrograms[filepath.Base(string(args[0]))] {
			continue
		}
		for _, arg := range args[1:] {
			if namesPathIn(string(arg), dir) && alive(pid) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

func namesPathIn(arg, dir string) bool {
	if i := strings.IndexByte(arg, '='); i >= 0 && strings.HasPrefix(arg, "-") {
		arg = arg[i+1:]
	}
	arg = strings.TrimPrefix(arg, "unix:")
	arg = strings.TrimPrefix(arg, "punix:")
	for _, part := range strings.Split(arg, ",") {
		part = strings.TrimPrefix(part, "unix:")
		if part == dir || strings.HasPrefix(part, dir+"/") {
			return true
		}
	}
	return false
}

// binaryReplaced reports whether the executable pid runs was deleted or
// replaced since it started (a rebuilt binary).
func binaryReplaced(pid int) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && strings.HasSuffix(exe, " (deleted)")
}

// startTime is when pid started, in clock ticks since boot (field 22 of
// /proc/PID/stat); 0 if unknown.
func startTime(pid int) uint64 {
	if pid <= 0 {
		return 0
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	j := bytes.LastIndexByte(stat, ')')
	if j < 0 {
		return 0
	}
	// After "pid (comm)" come fields 3 (state) onwards; starttime is 22.
	f := strings.Fields(string(stat[j+1:]))
	if len(f) < 20 {
		return 0
	}
	t, _ := strconv.ParseUint(f[19], 10, 64)
	return t
}
