package suites

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sdn-dev/sdn/bench"
	"github.com/sdn-dev/sdn/integration/vm"
)

// CNIAddVM measures what the cniadd suite does (CNI ADD latency p50 and
// p99 and attachments per second at concurrency 1 and 10, with no other
// workload and with cniLoad of them on the host; sdn's plugin next to
// containernetworking-plugins' bridge + host-local, driven the same way in
// the same run) inside one QEMU VM of vm/build-image.sh's image, on OVS's
// kernel datapath: on this machine's userspace datapath the load of 3,000
// ports does not finish (ovs-vswitchd polls every port; docs/performance.md,
// "Attach").
//
// The VM is one host of a VM lab (vm.Provision: sdnd server and agent),
// its raft state seeded first so that the host's block is a /18. The
// timing runs inside the VM: the cnidrive command (bench/cmd/cnidrive,
// package bench/cnidrive, the driver cniadd uses) runs each batch there
// and prints its latencies as JSON. Under TCG the absolute times are the
// emulation's (about 20× a real host's); only the per-round ratios
// sdn/bridge are to be judged.
func CNIAddVM() bench.Suite {
	c := &cniVMBench{}
	c.loadOverride, c.loadErr = cniVMLoadEnv(os.Getenv("SDNBENCH_CNIVM_LOAD"))
	return bench.Suite{
		Name: "cniaddvm",
		Description: "CNI ADD on OVS's kernel datapath in 1 QEMU VM (" + svcVMAccel() + "): latency p50/p99 and attachments/s at concurrency 1 and 10, with 0 and 3,000 workloads on the host; " +
			"sdn's plugin next to containernetworking-plugins bridge + host-local (goal: p99 within 2× of bridge; judge the per-round ratios, not the emulated absolute times).",
		Setup:   c.setup,
		Batches: []bench.Batch{c.batch(false), c.batch(true)},
	}
}

const (
	cniVMMemoryMB = 2048 // 3,000 namespaces, 6,000 veths and 3,000 OVS ports, and bridge's as many
	cniVMCPUs     = 2    // so that concurrency 10 is not one vCPU's queue
	// cniVMPluginDir is where the suite copies containernetworking-plugins'
	// bridge, host-local and loopback in the VM (the image has none).
	cniVMPluginDir = "/opt/cni"
	cniVMDrive     = vm.RemoteBin + "/cnidrive"
	cniVMHostNS    = "cnibr" // bridge's host side in the VM
)

// cniVMSuffix says where a figure was measured: its absolute values are
// not those of a real host.
var cniVMSuffix = " (1 VM, OVS kernel datapath, " + svcVMAccel() + ")"

// cniVMFigure names a figure of the suite: cniadd's name and where; with
// a load set by SDNBENCH_CNIVM_LOAD (load > 0), that load.
func cniVMFigure(what string, conc int, loaded bool, load int) string {
	if loaded && load > 0 {
		return fmt.Sprintf("%s, concurrency %d, %d workloads on the host%s", what, conc, load, cniVMSuffix)
	}
	return cniFigure(what, conc, loaded) + cniVMSuffix
}

// cniVMLoadEnv reads SDNBENCH_CNIVM_LOAD: "" is the suite's sizes' load
// (0), else a number of workloads, at least 1. On the kernel datapath
// under TCG the load of 3,000 takes hours (docs/performance.md, "Attach
// on the kernel datapath (VM)"); a smaller one measures the trend.
func cniVMLoadEnv(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("SDNBENCH_CNIVM_LOAD=%q: want a number of workloads, at least 1", v)
	}
	return n, nil
}

func (c *cniVMBench) figure(what string, conc int, loaded bool) string {
	return cniVMFigure(what, conc, loaded, c.loadOverride)
}

// cniVMBench is what the suite's setup makes and its rounds share.
type cniVMBench struct {
	sizes        cniSizes
	loadOverride int   // SDNBENCH_CNIVM_LOAD; 0 = the sizes' load
	loadErr      error // SDNBENCH_CNIVM_LOAD unreadable
	c            *vm.Cluster
	l            *vm.Lab
	sdn          *cniVMDriver
	bridge       *cniVMDriver
	seq          int // containers made so far (names)
}

// cniVMDriver is one variant: the cnidrive flags that pick its plugin,
// and how many containers it has attached as the host's load.
type cniVMDriver struct {
	name, prefix string
	flags        string
	load         int
}

func (c *cniVMBench) setup(ctx context.Context, env *bench.Env) (func(), error) {
	if err := checkVMTools(); err != nil {
		return nil, err
	}
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(bridgePluginDir, p)); err != nil {
			return nil, fmt.Errorf("containernetworking-plugins' %s is not installed (%v): apt-get install containernetworking-plugins (make deps)", p, err)
		}
	}
	if c.loadErr != nil {
		return nil, c.loadErr
	}
	c.sizes = fullCNISizes
	if env.Quick {
		c.sizes = quickCNISizes
	}
	if c.loadOverride > 0 {
		c.sizes = cniSizes{load: c.loadOverride, round: c.sizes.round}
	}
	root, image, bin, err := vmSuiteInputs(ctx, env, buildCNIVMBinaries)
	if err != nil {
		return nil, err
	}
	teardown := func() { closeVMs(env, c.c) }
	if err := c.up(ctx, env, root, image, bin); err != nil {
		return teardown, err
	}
	if err := c.raiseLimits(); err != nil {
		return teardown, err
	}
	return teardown, c.noteVM(env, image)
}

// buildVMLabBinaries builds what vm.Provision copies into a VM lab: the
// lab's binaries, sdnprobe and sdnlab.
func buildVMLabBinaries(ctx context.Context, env *bench.Env) (string, error) {
	bin, err := buildPolicyBinaries(ctx, env)
	if err != nil {
		return "", err
	}
	if o, err := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, "sdnlab"), "github.com/sdn-dev/sdn/integration/cmd/sdnlab").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build sdnlab: %v\n%s", err, o)
	}
	return bin, nil
}

// buildCNIVMBinaries builds what the VM runs: the VM lab's binaries
// (buildVMLabBinaries) and cnidrive, static.
func buildCNIVMBinaries(ctx context.Context, env *bench.Env) (string, error) {
	bin, err := buildVMLabBinaries(ctx, env)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, "cnidrive"), "github.com/sdn-dev/sdn/bench/cmd/cnidrive")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if o, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build cnidrive: %v\n%s", err, o)
	}
	return bin, nil
}

// cniVMHCL is the cluster the VM's lab applies: cniadd's (/18 host
// blocks, room for the load and the rounds; one network).
func cniVMHCL() string {
	return "cluster {\n  cidr        = \"10.128.0.0/14\"\n  host_prefix = 18\n}\n\nnetwork \"" + cniNetwork + "\" {}\n"
}

// up boots the VM, seeds its raft state, provisions it and copies in the
// driver and containernetworking-plugins.
func (c *cniVMBench) up(ctx context.Context, env *bench.Env, root, image, bin string) error {
	name := "cvm" + runID()
	dir := filepath.Join(env.Dir, "vm")
	hcl := filepath.Join(env.Dir, "hcl")
	if err := os.MkdirAll(hcl, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(hcl, "base.hcl"), []byte(cniVMHCL()), 0o644); err != nil {
		return err
	}
	log := envWriter{env}
	start := time.Now()
	var err error
	// On error Start stops what it started.
	c.c, err = vm.Start(ctx, vm.Config{Name: name, N: 1, Image: image, Dir: dir, MemoryMB: cniVMMemoryMB, CPUs: cniVMCPUs, Logger: log})
	if err != nil {
		return fmt.Errorf("boot the VM: %w", err)
	}
	env.Logf("VM (%s) answers SSH after %.0f s", c.c.Accel, time.Since(start).Seconds())
	start = time.Now()
	if err := c.seed(bin, filepath.Join(hcl, "base.hcl")); err != nil {
		return err
	}
	c.l, err = vm.Provision(ctx, c.c, vm.Setup{Name: name, Bin: bin, Script: filepath.Join(root, "vm", "provision.sh"),
		Dir: filepath.Join(dir, "lab"), Examples: hcl, Logger: log})
	if err != nil {
		return fmt.Errorf("provision the VM: %w", err)
	}
	env.Logf("seeded and provisioned in %.0f s", time.Since(start).Seconds())
	if _, err := c.c.Run(1, "mkdir -p "+cniVMPluginDir); err != nil {
		return err
	}
	if err := c.c.Copy(1, vm.RemoteBin+"/", filepath.Join(bin, "cnidrive")); err != nil {
		return err
	}
	var plugins []string
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		plugins = append(plugins, filepath.Join(bridgePluginDir, p))
	}
	if err := c.c.Copy(1, cniVMPluginDir+"/", plugins...); err != nil {
		return err
	}
	sock := vm.RemoteDir + "/host1/cni.sock"
	nsPrefix := name + "-host1-"
	c.sdn = &cniVMDriver{name: "sdn", prefix: "s",
		flags: fmt.Sprintf("-driver sdn -plugin %s/sdn -network %s -socket %s -ns-prefix %s", vm.RemoteBin, cniNetwork, sock, nsPrefix)}
	c.bridge = &cniVMDriver{name: "bridge", prefix: "b",
		flags: fmt.Sprintf("-driver bridge -plugin-dir %s -host-ns %s -data-dir /var/lib/cnidrive/host-local -ns-prefix %s", cniVMPluginDir, cniVMHostNS, nsPrefix)}
	return nil
}

// seed starts a plaintext server alone on the data directory the lab's
// sdnd will use (`sdnlab node-args`: RemoteDir/host1/data) and applies the
// suite's HCL to it, as cniadd's seedServer does on this machine: the
// agent then registers into a cluster of /18 blocks, not the default /23
// (509 addresses, too few for the load).
func (c *cniVMBench) seed(bin, hcl string) error {
	if _, err := c.c.Run(1, "mkdir -p "+vm.RemoteBin+" "+vm.RemoteDir+"/host1/data"); err != nil {
		return err
	}
	if err := c.c.Copy(1, vm.RemoteBin+"/", filepath.Join(bin, "sdnd"), filepath.Join(bin, "sdnctl")); err != nil {
		return err
	}
	if err := c.c.Copy(1, "/tmp/cnibench.hcl", hcl); err != nil {
		return err
	}
	script := fmt.Sprintf(`%[1]s/sdnd --server --bootstrap --node-name=host1 --data-dir=%[2]s/host1/data --listen=unix:/tmp/seed.sock --raft-addr=%[3]s:7421 --log-level=warn --insecure-plaintext >/tmp/seed.log 2>&1 &
pid=$!
ok=
for i in $(seq 1 120); do
	if %[1]s/sdnctl --server unix:///tmp/seed.sock apply -f /tmp/cnibench.hcl >/tmp/seed-apply.log 2>&1; then ok=1; break; fi
	kill -0 $pid 2>/dev/null || break
	sleep 1
done
kill $pid; wait $pid
[ -n "$ok" ] || { echo "seed server failed:"; cat /tmp/seed.log /tmp/seed-apply.log; exit 1; }
`, vm.RemoteBin, vm.RemoteDir, c.c.IP(1))
	if out, err := c.c.Run(1, script); err != nil {
		return fmt.Errorf("seed the VM's raft state: %w\n%s", err, out)
	}
	return nil
}

// cniVMLimits are the VM's sysctls raised for the load, and why.
var cniVMLimits = [][2]string{
	// The loaded batch holds 3,000 containers of each plugin, a round's
	// 100 and bridge's host namespace: 6,101 network namespaces, against
	// the kernel's limit of 7,693 in a 2 GiB VM (sized by memory).
	{"user.max_net_namespaces", "16384"},
}

// raiseLimits sets cniVMLimits in the VM.
func (c *cniVMBench) raiseLimits() error {
	var args []string
	for _, l := range cniVMLimits {
		args = append(args, l[0]+"="+l[1])
	}
	_, err := c.c.Run(1, "sysctl -q -w "+strings.Join(args, " "))
	return err
}

// noteVM notes the VM, its kernel, OVS and datapath (which must be the
// kernel's: `system`), and how the figures are measured.
func (c *cniVMBench) noteVM(env *bench.Env, image string) error {
	out, err := c.c.Run(1, "uname -r; ovs-vswitchd --version | head -n 1; ovs-dpctl show | head -n 1; "+
		"ovs-vsctl --format=csv --no-headings --columns=name,datapath_type list bridge | tr '\\n' ' '; echo")
	if err != nil {
		return err
	}
	f := strings.Split(strings.TrimSpace(out), "\n")
	if len(f) != 4 || !strings.HasPrefix(f[2], "system@ovs-system") || !strings.Contains(f[3], ",system") {
		return fmt.Errorf("the VM is not on OVS's kernel datapath? uname, OVS version, ovs-dpctl show, bridges' datapath_type:\n%s", out)
	}
	var limits []string
	for _, l := range cniVMLimits {
		limits = append(limits, l[0]+"="+l[1])
	}
	env.Note("VM", fmt.Sprintf("1 QEMU VM (%s; %d vCPUs, %d MiB; absolute times are the emulation's, only the per-round ratios are to be judged) of the image %s (vm/build-image.sh, Debian 12): kernel %s, %s, `ovs-dpctl show`: %s, bridges (name,datapath_type): %s; raised: %s (the loads' 6,101 network namespaces against 7,693 by default)",
		c.c.Accel, cniVMCPUs, cniVMMemoryMB, filepath.Base(image), f[0], f[1], strings.TrimSuffix(f[2], ":"), strings.TrimSpace(f[3]), strings.Join(limits, ", ")))
	env.Note("lab", fmt.Sprintf("lab %s in the VM (vm/provision.sh: one sdnd, server and agent, raft state seeded with cluster 10.128.0.0/14, /18 host blocks, network %s); "+
		"sdn: %s/sdn with cniVersion 1.0.0, network %s, the agent's CNI socket; bridge: Debian's containernetworking-plugins bridge, host-local and loopback copied from this machine into %s "+
		"(bridges cni-brK of 1,000 containers each, isGateway, host-local 10.(200+K).0.0/16), run from threads in the VM's namespace %s; "+
		"both driven inside the VM by cnidrive (bench/cmd/cnidrive, the cniadd suite's driver): CNI_IFNAME=eth0, one fresh namespace per container made before the clock starts, configuration on stdin",
		c.c.Name(), cniNetwork, vm.RemoteBin, cniNetwork, cniVMPluginDir, cniVMHostNS))
	env.Note("sizes", fmt.Sprintf("load %d workloads per plugin (sdn's and bridge's both stay attached through the loaded batch); per round %d ADDs at concurrency 1, %d at concurrency 10 (then DEL, untimed)",
		c.sizes.load, c.sizes.round[1], c.sizes.round[10]))
	return nil
}
