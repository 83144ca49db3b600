package vm

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// mac is VM i's MAC address.
func mac(i int) string { return fmt.Sprintf("52:54:00:5d:00:%02x", i) }

func tap(i int) string { return fmt.Sprintf("tap%d", i) }

// upNet makes the namespace with lo up, the bridge br0 holding the
// gateway address, and one tap per VM on it.
func (c *Cluster) upNet() error {
	if nsExists(c.NS) {
		return fmt.Errorf("network namespace %s exists: another run of %s is up, or left behind (ip netns del %s)", c.NS, c.cfg.Name, c.NS)
	}
	cmds := [][]string{
		{"netns", "add", c.NS},
		{"-n", c.NS, "link", "set", "lo", "up"},
		{"-n", c.NS, "link", "add", "br0", "type", "bridge"},
		{"-n", c.NS, "addr", "add", c.gateway().String(), "dev", "br0"},
		{"-n", c.NS, "link", "set", "br0", "up"},
	}
	for i := 1; i <= c.cfg.N; i++ {
		cmds = append(cmds,
			[]string{"-n", c.NS, "tuntap", "add", tap(i), "mode", "tap"},
			[]string{"-n", c.NS, "link", "set", tap(i), "master", "br0", "up"})
	}
	for _, args := range cmds {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

func nsExists(ns string) bool {
	_, err := os.Stat("/run/netns/" + ns)
	return err == nil
}

// boot starts VM i's QEMU in the namespace on a fresh overlay.
func (c *Cluster) boot(i int) error {
	img := c.cfg.Image
	ovl := filepath.Join(c.cfg.Dir, fmt.Sprintf("vm%d.qcow2", i))
	_ = os.Remove(ovl)
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", filepath.Join(img, "disk.qcow2"), ovl).CombinedOutput(); err != nil {
		return fmt.Errorf("qemu-img create %s: %w: %s", ovl, err, out)
	}
	pub, err := os.ReadFile(c.Key + ".pub")
	if err != nil {
		return err
	}
	base, err := os.ReadFile(filepath.Join(img, "cmdline"))
	if err != nil {
		return err
	}
	cmdline := fmt.Sprintf("%s sdn.hostname=host%d sdn.ssh=%s sdn.net=%s,%s/24", strings.TrimSpace(string(base)),
		i, base64.StdEncoding.EncodeToString(pub), mac(i), c.IP(i))
	args := []string{"netns", "exec", c.NS, "qemu-system-x86_64",
		"-name", fmt.Sprintf("%s-vm%d", c.cfg.Name, i),
		"-m", fmt.Sprint(c.cfg.MemoryMB), "-smp", fmt.Sprint(c.cfg.CPUs),
		"-kernel", filepath.Join(img, "vmlinuz"), "-initrd", filepath.Join(img, "initrd.img"), "-append", cmdline,
		"-drive", "file=" + ovl + ",if=virtio,format=qcow2,cache=unsafe",
		"-netdev", "tap,id=n0,ifname=" + tap(i) + ",script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,mac=" + mac(i),
		"-serial", "file:" + c.Serial(i), "-monitor", "none", "-display", "none", "-no-reboot",
	}
	if c.Accel == "kvm" {
		args = append(args, "-accel", "kvm", "-cpu", "host")
	} else {
		args = append(args, "-accel", "tcg", "-cpu", "qemu64")
	}
	cmd := exec.Command("ip", args...)
	logf, err := os.Create(filepath.Join(c.cfg.Dir, fmt.Sprintf("vm%d.qemu.log", i)))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start QEMU for vm%d: %w", i, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	c.mu.Lock()
	c.procs, c.done = append(c.procs, cmd), append(c.done, done)
	c.mu.Unlock()
	return nil
}

// waitSSH waits until every VM runs `true` over SSH, saying every 15 s
// which still do not.
func (c *Cluster) waitSSH(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.BootTimeout)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	ready := make([]time.Duration, c.cfg.N+1)
	var mu sync.Mutex
	for i := 1; i <= c.cfg.N; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := c.runTimeout(i, 10*time.Second, "true"); err == nil {
					mu.Lock()
					ready[i] = time.Since(start)
					mu.Unlock()
					c.logf("vm%d (%s) answers SSH after %.0f s", i, c.IP(i), time.Since(start).Seconds())
					return
				}
				if c.exited(i) {
					return
				}
				time.Sleep(2 * time.Second)
			}
		}()
	}
	wg.Wait()
	var missing []string
	for i := 1; i <= c.cfg.N; i++ {
		if ready[i] == 0 {
			why := "no SSH"
			if c.exited(i) {
				why = "QEMU exited; see " + filepath.Join(c.cfg.Dir, fmt.Sprintf("vm%d.qemu.log", i))
			}
			missing = append(missing, fmt.Sprintf("vm%d (%s): %s", i, c.IP(i), why))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("after %.0f s: %s\n%s", time.Since(start).Seconds(), strings.Join(missing, "; "), c.SerialTail(30))
	}
	return nil
}

// exited reports whether VM i's QEMU has ended.
func (c *Cluster) exited(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i-1 >= len(c.done) {
		return true
	}
	select {
	case <-c.done[i-1]:
		return true
	default:
		return false
	}
}
