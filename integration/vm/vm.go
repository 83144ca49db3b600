package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sdn-dev/sdn/integration/lab"
)

// Config describes a set of VMs.
type Config struct {
	// Name names the namespace (NAME-net) and picks the subnet
	// (lab.Subnet(Name)); a lab of VMs uses its lab name. Default "vm".
	Name string
	// N is the number of VMs. Default 2.
	N int
	// Image is the image directory vm/build-image.sh printed (disk.qcow2,
	// vmlinuz, initrd.img, cmdline).
	Image string
	// Dir holds the overlays, the SSH key and the serial logs.
	Dir string
	// MemoryMB per VM; default 1024. CPUs per VM; default 1.
	MemoryMB, CPUs int
	// BootTimeout bounds the wait for SSH on every VM; default 5 minutes.
	BootTimeout time.Duration
	// Logger receives progress lines; nil = none.
	Logger io.Writer
}

// Cluster is a set of running VMs.
type Cluster struct {
	cfg   Config
	NS    string // the network namespace holding the bridge, the taps and QEMU
	Key   string // the private SSH key for root@VM
	Accel string // "tcg" or "kvm"

	mu    sync.Mutex
	procs []*exec.Cmd
	done  []chan struct{}
}

// Start boots cfg.N VMs and returns once every one answers SSH. On error
// what was started is stopped.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Name == "" {
		cfg.Name = "vm"
	}
	if cfg.N == 0 {
		cfg.N = 2
	}
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = 1024
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 1
	}
	if cfg.BootTimeout == 0 {
		cfg.BootTimeout = 5 * time.Minute
	}
	for _, f := range []string{"disk.qcow2", "vmlinuz", "initrd.img", "cmdline"} {
		if _, err := os.Stat(filepath.Join(cfg.Image, f)); err != nil {
			return nil, fmt.Errorf("image %s: %w (build it with vm/build-image.sh)", cfg.Image, err)
		}
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, NS: cfg.Name + "-net", Key: filepath.Join(cfg.Dir, "id_ed25519"), Accel: Accel()}
	if err := c.start(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sdn-vm-harness", "-f", c.Key).CombinedOutput(); err != nil {
		return fmt.Errorf("ssh-keygen: %w: %s", err, out)
	}
	if err := c.upNet(); err != nil {
		return err
	}
	start := time.Now()
	for i := 1; i <= c.cfg.N; i++ {
		if err := c.boot(i); err != nil {
			return err
		}
	}
	c.logf("booting %d VMs (%s, %d MiB, %d vCPU each; serial logs %s/vm*.serial)", c.cfg.N, c.Accel, c.cfg.MemoryMB, c.cfg.CPUs, c.cfg.Dir)
	if err := c.waitSSH(ctx); err != nil {
		return err
	}
	c.logf("all %d VMs answer SSH after %.0f s", c.cfg.N, time.Since(start).Seconds())
	return nil
}

// N is the number of VMs.
func (c *Cluster) N() int { return c.cfg.N }

// IP is VM i's address (1-based): lab.Subnet(Name)+i, so a lab of the same
// name finds its hosts at lab.HostIP(i).
func (c *Cluster) IP(i int) netip.Addr {
	a := lab.Subnet(c.cfg.Name).Addr().As4()
	a[3] = byte(i)
	return netip.AddrFrom4(a)
}

// gateway is the bridge's address in the namespace.
func (c *Cluster) gateway() netip.Prefix {
	a := lab.Subnet(c.cfg.Name).Addr().As4()
	a[3] = 254
	return netip.PrefixFrom(netip.AddrFrom4(a), 24)
}

// Serial is VM i's serial console log.
func (c *Cluster) Serial(i int) string {
	return filepath.Join(c.cfg.Dir, fmt.Sprintf("vm%d.serial", i))
}

// SerialTail returns the last n lines of every VM's serial log, for
// failure messages.
func (c *Cluster) SerialTail(n int) string {
	var b strings.Builder
	for i := 1; i <= c.cfg.N; i++ {
		data, _ := os.ReadFile(c.Serial(i))
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		fmt.Fprintf(&b, "--- vm%d serial (%s), last %d lines:\n%s\n", i, c.Serial(i), n, strings.Join(lines, "\n"))
	}
	return b.String()
}

// Close stops every VM and removes the namespace and the overlays.
func (c *Cluster) Close() error {
	if nsExists(c.NS) {
		c.closeSSH()
	}
	c.mu.Lock()
	procs, done := c.procs, c.done
	c.procs, c.done = nil, nil
	c.mu.Unlock()
	for k, p := range procs {
		_ = p.Process.Kill()
		select {
		case <-done[k]:
		case <-time.After(10 * time.Second):
		}
	}
	var errs []error
	if err := exec.Command("ip", "netns", "del", c.NS).Run(); err != nil && nsExists(c.NS) {
		errs = append(errs, fmt.Errorf("ip netns del %s: %w", c.NS, err))
	}
	ovl, _ := filepath.Glob(filepath.Join(c.cfg.Dir, "vm*.qcow2"))
	for _, f := range ovl {
		errs = append(errs, os.Remove(f))
	}
	return errors.Join(errs...)
}

func (c *Cluster) logf(format string, args ...any) {
	if c.cfg.Logger != nil {
		fmt.Fprintf(c.cfg.Logger, "vm: "+format+"\n", args...)
	}
}

// Accel is how QEMU runs the VMs: kvm where the host has a real KVM module
// loaded, else tcg (a paravirtual /dev/kvm, as on these build machines,
// runs no stock kernel).
func Accel() string {
	for _, m := range []string{"kvm_intel", "kvm_amd"} {
		if _, err := os.Stat("/sys/module/" + m); err == nil {
			return "kvm"
		}
	}
	return "tcg"
}

// Name is the cluster's name (Config.Name).
func (c *Cluster) Name() string { return c.cfg.Name }
