package suites

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/sdn-dev/sdn/bench"
	"github.com/sdn-dev/sdn/integration/lab"
	"github.com/sdn-dev/sdn/integration/vm"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// ServicesVM measures the services suite's VIP figure (servicesvip.go) on
// OVS's kernel datapath, where the services suite's userspace conntrack
// problem (docs/performance.md, "Services") should not exist: two QEMU VMs
// of vm/build-image.sh's image (1 vCPU, 1 GiB each, as TestVMKernelDatapath
// boots them), provisioned by vm/provision.sh (multitenant, examples/
// applied), a service perf over host1's proj1 workload alone, and new TCP
// connections per second from host2's proj1 workload through its VIP
// against straight to the workload.
//
// The VMs run under TCG emulation on machines without KVM (this one, CI):
// the absolute rates measure QEMU's emulation more than sdn and are not to
// be judged; the ratio of the two variants measured in one round is.
func ServicesVM() bench.Suite {
	s := &svcVMBench{}
	return bench.Suite{
		Name: "servicesvm",
		Description: "Services on OVS's kernel datapath in 2 QEMU VMs (" + svcVMAccel() + "): new TCP connections/s through a VIP vs straight to its one endpoint " +
			"(goal ≥ 0.8; judge the ratio of each round, not the emulated absolute rates).",
		Setup: s.setup,
		Figures: []bench.Figure{{
			Name: figSvcVMConns, Unit: "conn/s", HigherIsBetter: true,
			Variants: []bench.Variant{
				{Name: "via VIP", Run: s.conns(true)},
				{Name: "direct", Run: s.conns(false)},
			},
			Ratios: [][2]string{{"via VIP", "direct"}},
		}},
	}
}

// figSvcVMConns names the emulation: its absolute values are not those of
// a real host.
var figSvcVMConns = "new TCP connections/s across 2 VMs, kernel datapath (" + svcVMAccel() + ")"

// svcVMAccel says how QEMU will run the VMs (vm.Accel).
func svcVMAccel() string {
	if vm.Accel() == "kvm" {
		return "QEMU KVM"
	}
	return "QEMU TCG emulation"
}

const (
	svcVMHosts = 2
	// svcVMNetwork is the network of the pair: examples/networks.hcl's
	// proj1, where provision.sh labels host1's workload app=web (and
	// host2's app=foo, lab.DemoLabels).
	svcVMNetwork = "proj1"
	svcVMService = "perf"
	svcVMPort    = 80 // the VIP's port; the endpoint's is httpPort
)

// svcVMBench is what the suite's setup makes and its variants share.
type svcVMBench struct {
	tools  toolSettings
	c      *vm.Cluster
	l      *vm.Lab
	perf   [2]*lab.Workload // server (host1), client (host2)
	remaps []string         // per round: VIP connections remapped by the NAT
	zones  [2]string        // conntrack entries by zone after wrk: direct, via VIP
}

func (s *svcVMBench) setup(ctx context.Context, env *bench.Env) (func(), error) {
	if err := checkVMTools(); err != nil {
		return nil, err
	}
	s.tools = fullTools
	if env.Quick {
		s.tools = svcQuickTools()
	}
	root, image, bin, err := vmSuiteInputs(ctx, env, buildVMLabBinaries)
	if err != nil {
		return nil, err
	}
	teardown := func() { closeVMs(env, s.c) }
	if err := s.up(ctx, env, root, image, bin); err != nil {
		return teardown, err
	}
	if err := s.startServer(); err != nil {
		return teardown, err
	}
	if err := s.raiseConntrackMax(); err != nil {
		return teardown, err
	}
	if err := s.noteVMs(env, image); err != nil {
		return teardown, err
	}
	return teardown, s.reuseProbe(env)
}

// up boots the VMs, provisions them, declares the service and finds the
// pair.
func (s *svcVMBench) up(ctx context.Context, env *bench.Env, root, image, bin string) error {
	name := "svm" + runID()
	dir := filepath.Join(env.Dir, "vm")
	log := envWriter{env}
	start := time.Now()
	var err error
	// On error Start stops what it started.
	if s.c, err = vm.Start(ctx, vm.Config{Name: name, N: svcVMHosts, Image: image, Dir: dir, Logger: log}); err != nil {
		return fmt.Errorf("boot %d VMs: %w", svcVMHosts, err)
	}
	env.Logf("%d VMs (%s) answer SSH after %.0f s", svcVMHosts, s.c.Accel, time.Since(start).Seconds())
	start = time.Now()
	s.l, err = vm.Provision(ctx, s.c, vm.Setup{Name: name, Bin: bin, Script: filepath.Join(root, "vm", "provision.sh"),
		Dir: filepath.Join(dir, "lab"), Isolation: "multitenant", Logger: log})
	if err != nil {
		return fmt.Errorf("provision the VMs: %w", err)
	}
	env.Logf("provisioned in %.0f s", time.Since(start).Seconds())
	for i, host := range []string{"host1", "host2"} {
		for _, w := range s.l.Workloads {
			if w.Host == host && w.Network == svcVMNetwork {
				s.perf[i] = w
			}
		}
		if s.perf[i] == nil {
			return fmt.Errorf("provision.sh attached no %s workload on %s (workloads: %v)", svcVMNetwork, host, s.l.Workloads)
		}
	}
	return s.declareService(env)
}

// svcVMHCL is the service: the VIP over host1's proj1 workload alone.
func svcVMHCL() string {
	return fmt.Sprintf(`# The servicesvm bench: a VIP over host1's proj1 workload alone.
service %q {
  network = %q
  selector {
    match_labels = { app = "web" }
  }
  vip = %q
  port {
    port        = %d
    target_port = %d
  }
}
`, svcVMService, svcVMNetwork, svcVIP, svcVMPort, httpPort)
}

// declareService applies svcVMHCL with `sdnctl apply --wait` on host1 and
// checks the servers give the service the server workload alone.
func (s *svcVMBench) declareService(env *bench.Env) error {
	f := filepath.Join(env.Dir, "perf.hcl")
	if err := os.WriteFile(f, []byte(svcVMHCL()), 0o644); err != nil {
		return err
	}
	if err := s.c.Copy(1, "/tmp/perf.hcl", f); err != nil {
		return err
	}
	if out, err := s.l.Sdnctl("apply", "-f", "/tmp/perf.hcl", "--wait"); err != nil {
		return fmt.Errorf("sdnctl apply the service: %w\n%s", err, out)
	}
	out, err := s.l.Sdnctl("get", "services", "-o", "json")
	if err != nil {
		return err
	}
	var list sdnv1.ListResponse
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal([]byte(out), &list); err != nil {
		return fmt.Errorf("sdnctl get services -o json: %w\n%s", err, out)
	}
	key := svcVMNetwork + "/" + svcVMService
	for _, e := range list.GetServiceEndpoints() {
		if e.GetService() != key {
			continue
		}
		if eps := e.GetEndpoints(); len(eps) != 1 || eps[0].GetIp() != s.perf[0].IP {
			return fmt.Errorf("service %s has endpoints %v; want %s (%s) alone", key, eps, s.perf[0].ID(), s.perf[0].IP)
		}
		env.Logf("service %s (VIP %s:%d) → %s:%d", key, svcVIP, svcVMPort, s.perf[0].IP, httpPort)
		return s.l.WaitRealized(2 * time.Minute)
	}
	return fmt.Errorf("service %s has no endpoints in sdnctl get services:\n%s", key, out)
}

// startServer starts `sdnprobe http-serve` in the server workload's
// namespace on host1 (it dies with the VM) and waits until it listens.
func (s *svcVMBench) startServer() error {
	w := s.perf[0]
	addr := fmt.Sprintf("%s:%d", w.IP, httpPort)
	if _, err := s.c.Run(1, fmt.Sprintf("ip netns exec %s setsid %s/sdnprobe http-serve -listen %s </dev/null >/tmp/http-serve.log 2>&1 &", w.NS, vm.RemoteBin, addr)); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := s.c.Run(1, "ip netns exec "+w.NS+" ss -Hltn")
		if err == nil && strings.Contains(out, addr) {
			return nil
		}
		if time.Now().After(deadline) {
			log, _ := s.c.Run(1, "cat /tmp/http-serve.log")
			return fmt.Errorf("host1: nothing listens on %s 30 s after starting sdnprobe http-serve in %s (ss: %v): %s", addr, w.NS, err, log)
		}
		time.Sleep(time.Second)
	}
}

// svcVMConntrackMax is the VMs' nf_conntrack_max. The kernel sizes it by
// memory: 8,192 entries in a 1 GiB VM, where each connection of the figure
// takes 3 on each host (one in the workloads' zone 1, and two in the
// host's own zone 0: the VXLAN packets' UDP flows, one each way). Under
// TCG a round leaves about 3,500; with KVM's rates (thousands
// of connections a second, each entry held 120 s in TIME_WAIT) a full
// table would drop SYNs and measure the table instead of the datapath.
const svcVMConntrackMax = 131072

// raiseConntrackMax sets svcVMConntrackMax on both VMs.
func (s *svcVMBench) raiseConntrackMax() error {
	for i := 1; i <= svcVMHosts; i++ {
		if _, err := s.c.Run(i, fmt.Sprintf("sysctl -q -w net.netfilter.nf_conntrack_max=%d", svcVMConntrackMax)); err != nil {
			return err
		}
	}
	return nil
}

// noteVMs notes the VMs, their kernel, OVS and datapath, and how the
// figure is measured.
func (s *svcVMBench) noteVMs(env *bench.Env, image string) error {
	var hosts []string
	for i := 1; i <= svcVMHosts; i++ {
		out, err := s.c.Run(i, "uname -r; ovs-vswitchd --version | head -n 1; ovs-dpctl show | head -n 1; ovs-dpctl show | grep -c 'port ' || true; cat /proc/sys/net/netfilter/nf_conntrack_max")
		if err != nil {
			return err
		}
		f := strings.Split(strings.TrimSpace(out), "\n")
		if len(f) != 5 || !strings.HasPrefix(f[2], "system@ovs-system") {
			return fmt.Errorf("host%d: not on OVS's kernel datapath? uname, OVS version, ovs-dpctl show:\n%s", i, out)
		}
		hosts = append(hosts, fmt.Sprintf("host%d: kernel %s, %s, `ovs-dpctl show`: %s (%s ports), nf_conntrack_max %s (raised from the kernel's default for 1 GiB)", i, f[0], f[1], strings.TrimSuffix(f[2], ":"), f[3], f[4]))
	}
	env.Note("VMs", fmt.Sprintf("%d QEMU VMs (%s; 1 vCPU, 1 GiB each; absolute rates are the emulation's, only the ratio of a round is to be judged) of the image %s (vm/build-image.sh, Debian 12), provisioned by vm/provision.sh (isolation multitenant, examples/ applied); %s",
		svcVMHosts, s.c.Accel, filepath.Base(image), strings.Join(hosts, "; ")))
	t := s.tools
	env.Note("connections", fmt.Sprintf("`wrk -t1 -c%d -d%ds -H 'Connection: close' http://ADDR/` in %s (host2) against `sdnprobe http-serve` in %s (host1; Go net/http, 3-byte body; every request a new TCP connection; any socket error or non-2xx answer fails the variant); "+
		"ADDR = %s:%d, the VIP of service %s/%s (selector app=web: %s alone, source ports %s) or %s:%d (direct, source ports %s); net.ipv4.ip_local_port_range and net.ipv4.tcp_tw_reuse=1 in the client's namespace as in the services suite; "+
		"before each, on both VMs: `ovs-appctl revalidator/purge` and `ovs-dpctl flush-conntrack` (the kernel's conntrack, every zone)",
		t.wrkConns, t.wrkSeconds, s.perf[1].ID(), s.perf[0].ID(), svcVIP, svcVMPort, svcVMNetwork, svcVMService, s.perf[0].ID(), svcPortRanges[1], s.perf[0].IP, httpPort, svcPortRanges[0]))
	return nil
}

// checkVMTools checks the suite runs as root and finds what booting VMs
// needs, as TestVMKernelDatapath does.
func checkVMTools() error {
	if err := vm.CheckTools(); err != nil {
		return err
	}
	if _, err := exec.LookPath("go"); err != nil {
		return fmt.Errorf("needs go to build the binaries the VMs run: %w", err)
	}
	return nil
}

// moduleRoot is the directory of the module's go.mod (vm/ is there).
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("go env GOMOD: %q, %v: run inside the sdn module", mod, err)
	}
	return filepath.Dir(mod), nil
}

// vmSuiteInputs are what a VM suite boots and provisions from: the
// module's root (vm/provision.sh), the VM image (built once, cached) and
// the binaries build makes.
func vmSuiteInputs(ctx context.Context, env *bench.Env, build func(context.Context, *bench.Env) (string, error)) (root, image, bin string, err error) {
	if root, err = moduleRoot(ctx); err != nil {
		return "", "", "", err
	}
	if image, err = buildVMImage(ctx, env, root); err != nil {
		return "", "", "", err
	}
	if bin, err = build(ctx, env); err != nil {
		return "", "", "", err
	}
	return root, image, bin, nil
}

// closeVMs stops a VM suite's cluster (nil: none was started).
func closeVMs(env *bench.Env, c *vm.Cluster) {
	if c == nil {
		return
	}
	if err := c.Close(); err != nil {
		env.Logf("teardown: %v", err)
	}
}

// buildVMImage runs vm/build-image.sh (a build of minutes, or the cached
// image) and returns the image's directory, its last line of output.
func buildVMImage(ctx context.Context, env *bench.Env, root string) (string, error) {
	start := time.Now()
	image, err := vm.BuildImage(ctx, filepath.Join(root, "vm", "build-image.sh"), envWriter{env})
	if err != nil {
		return "", err
	}
	env.Logf("VM image %s (%.0f s)", image, time.Since(start).Seconds())
	return image, nil
}

// envWriter writes what it gets to the suite's progress lines.
type envWriter struct{ env *bench.Env }

func (w envWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.env.Logf("%s", line)
	}
	return len(p), nil
}
