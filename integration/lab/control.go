package lab

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sdn-dev/sdn/datapath/ovs"
)

// KillSDND kills host i's sdnd with SIGKILL (a crash) and waits until it
// is gone.
func (l *Lab) KillSDND(i int) error {
	d := l.sdnd(i)
	pid := d.pid()
	if pid == 0 {
		return fmt.Errorf("%s: sdnd is not running", HostName(i))
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	if !waitGone(pid, 10*time.Second) {
		return fmt.Errorf("%s: sdnd (pid %d) survived SIGKILL", HostName(i), pid)
	}
	return os.Remove(d.pidfile)
}

// StartSDND starts host i's sdnd again (after KillSDND) and, when it is the
// server, waits until its API serves.
func (l *Lab) StartSDND(ctx context.Context, i int) error {
	if err := l.upSDND(ctx, i); err != nil {
		return err
	}
	if i == 1 {
		return l.waitServing(ctx)
	}
	return nil
}

// VswitchdPID is the pid of host i's ovs-vswitchd, 0 if it does not run
// (e.g. for its CPU time in /proc/PID/stat).
func (l *Lab) VswitchdPID(i int) int { return l.vswitchdPID(i) }

// OVS returns host i's OVS instance (running in the host's namespace).
func (l *Lab) OVS(i int) *ovs.Instance {
	return &ovs.Instance{RunDir: l.ovsDir(i), DBDir: l.ovsDir(i), LogDir: l.ovsDir(i), NetNS: l.HostNS(i)}
}

// FlowMonitor records `ovs-ofctl monitor br-int watch:` of one host.
type FlowMonitor struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

// MonitorFlows starts watching host i's integration bridge for flow
// changes.
func (l *Lab) MonitorFlows(i int) (*FlowMonitor, error) {
	inst := l.OVS(i)
	cmd := exec.Command("ip", "netns", "exec", l.HostNS(i), "ovs-ofctl", "-O", "OpenFlow15", "monitor",
		filepath.Join(inst.RunDir, "br-int.mgmt"), "watch:")
	cmd.Env = append(os.Environ(), inst.Env()...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	m := &FlowMonitor{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			m.mu.Lock()
			m.lines = append(m.lines, sc.Text())
			m.mu.Unlock()
		}
	}()
	// The monitor prints the current flows as INITIAL first; wait for
	// that dump so later events are the changes.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if len(m.Events("event=INITIAL")) > 0 {
			return m, nil
		}
	}
	m.Stop()
	return nil, fmt.Errorf("%s: ovs-ofctl monitor printed no flows", HostName(i))
}

// Events returns the recorded lines containing substr.
func (m *FlowMonitor) Events(substr string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, l := range m.lines {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// Changes returns the flow additions, modifications and deletions seen.
func (m *FlowMonitor) Changes() []string {
	var out []string
	for _, e := range []string{"event=ADDED", "event=MODIFIED", "event=DELETED"} {
		out = append(out, m.Events(e)...)
	}
	return out
}

// Stop ends the monitor.
func (m *FlowMonitor) Stop() {
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
	<-m.done
}
