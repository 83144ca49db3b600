package vm

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func (c *Cluster) sshOpts() []string {
	return []string{"-i", c.Key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5", "-o", "ServerAliveInterval=5",
		// One connection per VM, reused: a key exchange costs the guest
		// seconds under TCG. Close ends the masters (closeSSH).
		"-o", "ControlMaster=auto", "-o", "ControlPath=" + filepath.Join(c.cfg.Dir, "ssh-%h"), "-o", "ControlPersist=120"}
}

// closeSSH ends the shared SSH connections.
func (c *Cluster) closeSSH() {
	for i := 1; i <= c.cfg.N; i++ {
		args := append([]string{"netns", "exec", c.NS, "ssh"}, c.sshOpts()...)
		_ = exec.Command("ip", append(args, "-O", "exit", "root@"+c.IP(i).String())...).Run()
	}
}

// Run runs a shell command line as root on VM i over SSH (from inside the
// namespace) and returns its combined output.
func (c *Cluster) Run(i int, command string) (string, error) {
	return c.runTimeout(i, 10*time.Minute, command)
}

func (c *Cluster) runTimeout(i int, d time.Duration, command string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	args := append([]string{"netns", "exec", c.NS, "ssh"}, c.sshOpts()...)
	args = append(args, "root@"+c.IP(i).String(), command)
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("vm%d: %s: %w: %s", i, command, err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// Start runs a command on VM i in the background over SSH; the returned
// process ends when the command does (or when killed).
func (c *Cluster) Start(i int, command string, stdout *bytes.Buffer) (*exec.Cmd, error) {
	args := append([]string{"netns", "exec", c.NS, "ssh"}, c.sshOpts()...)
	args = append(args, "root@"+c.IP(i).String(), command)
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = stdout, stdout
	return cmd, cmd.Start()
}

// Copy copies local files or directories (scp -r) to dest on VM i.
func (c *Cluster) Copy(i int, dest string, local ...string) error {
	args := append([]string{"netns", "exec", c.NS, "scp", "-q", "-r"}, c.sshOpts()...)
	args = append(args, local...)
	args = append(args, "root@"+c.IP(i).String()+":"+dest)
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("scp %s to vm%d:%s: %w: %s", strings.Join(local, " "), i, dest, err, out)
	}
	return nil
}
