package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/integration/lab"
	"github.com/sdn-dev/sdn/integration/vm"
)

// TestVMKernelDatapath runs sdn on Open vSwitch's kernel datapath
// (--datapath system), which this machine's kernel lacks: two QEMU VMs of
// the image vm/build-image.sh makes, provisioned by vm/provision.sh (the
// Vagrant lab's provisioning, the netns lab's sdnd flags and CNI attach),
// checked by packets. It boots VMs for minutes, so it runs only with
// SDN_VM_TEST=1 (`make test-vm`).
func TestVMKernelDatapath(t *testing.T) {
	if os.Getenv("SDN_VM_TEST") != "1" {
		t.Skip("boots QEMU VMs for minutes: run with SDN_VM_TEST=1 (make test-vm)")
	}
	if err := vm.CheckTools(); err != nil {
		t.Fatalf("SDN_VM_TEST=1: %v", err)
	}
	ctx := context.Background()
	var timings []string
	timed := func(what string, start time.Time) {
		timings = append(timings, fmt.Sprintf("%s %.0f s", what, time.Since(start).Seconds()))
	}
	defer func() { t.Logf("timings: %s", strings.Join(timings, ", ")) }()

	start := time.Now()
	image := vmImage(t)
	timed("image", start)
	bin := vmBinaries(t)

	start = time.Now()
	dir := t.TempDir()
	c, err := vm.Start(ctx, vm.Config{Name: "sdnvmt", N: 2, Image: image, Dir: dir, Logger: tWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	timed("boot", start)
	start = time.Now()
	l, err := vm.Provision(ctx, c, vm.Setup{Name: c.Name(), Bin: bin, Script: "../vm/provision.sh",
		Dir: filepath.Join(dir, "lab"), Isolation: "multitenant", Logger: tWriter{t}})
	if err != nil {
		t.Fatalf("%v\n%s", err, vmDiagnostics(c))
	}
	timed("provision", start)
	defer func() {
		if t.Failed() {
			t.Log(vmDiagnostics(c))
		}
	}()
	ws := l.Workloads
	networks, _, err := l.Networks()
	if err != nil {
		t.Fatal(err)
	}
	step := func(name string, fn func(t *testing.T)) {
		start := time.Now()
		t.Run(name, fn)
		timed(name, start)
	}

	step("kernel-datapath", func(t *testing.T) {
		for i := 1; i <= c.N(); i++ {
			out, err := c.Run(i, "ovs-dpctl show; ovs-vsctl get Bridge br-int datapath_type; ip -o addr show eth0; ip -o link show vxlan_sys_4789; ovs-vsctl list-br; ovs-appctl dpif/show | grep '^[a-z]'")
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"system@ovs-system", "vxlan_sys_4789", "system", c.IP(i).String() + "/24"} {
				if !strings.Contains(out, want) {
					t.Errorf("host%d: no %q in:\n%s", i, want, out)
				}
			}
			if strings.Contains(out, "br-phy") {
				t.Errorf("host%d: a br-phy on the kernel datapath (the tunnel endpoint stays on eth0):\n%s", i, out)
			}
			t.Logf("host%d:\n%s", i, out)
		}
	})
	step("mtu-and-offloads", func(t *testing.T) { vmMTU(t, l, ws) })
	step("multitenant", func(t *testing.T) { vmCheckMatrix(t, l, ws, lab.Expected("multitenant", ws, networks)) })
	step("anti-spoofing", func(t *testing.T) { vmAntiSpoofing(t, l, ws) })
	step("agent-kill-9", func(t *testing.T) {
		n := vmStream(t, l, ws, func() {
			if _, err := c.Run(2, "systemctl kill -s KILL sdnd.service"); err != nil {
				t.Error(err)
			}
		})
		t.Logf("host2's sdnd killed with SIGKILL mid-stream, restarted by systemd: %s", n)
		if out, err := c.Run(2, "systemctl show -p NRestarts --value sdnd.service"); err != nil || strings.TrimSpace(out) == "0" {
			t.Errorf("host2's sdnd was not restarted: NRestarts %q, %v", out, err)
		}
	})
	step("vswitchd-restart-flow-restore-wait", func(t *testing.T) { vmFlowRestoreWait(t, l, ws) })
	step("flat", func(t *testing.T) {
		if _, err := c.Run(1, `rm -rf /tmp/flat && cp -r `+vm.RemoteDir+`/hcl /tmp/flat && sed -i -E 's/isolation *= *"[a-z]+"/isolation = "flat"/' /tmp/flat/*.hcl`); err != nil {
			t.Fatal(err)
		}
		if out, err := l.Sdnctl("apply", "-f", "/tmp/flat", "--wait"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		vmCheckMatrix(t, l, ws, lab.Expected("flat", ws, networks))
	})
	step("policy", func(t *testing.T) { vmPolicy(t, l, ws) })
	step("service", func(t *testing.T) { vmService(t, l, ws) })
}

// vmImage builds (or reuses) the VM image and returns its directory.
func vmImage(t *testing.T) string {
	t.Helper()
	image, err := vm.BuildImage(context.Background(), "../vm/build-image.sh", tWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	return image
}

// vmBinaries is binaries' directory with sdnlab added (vm/provision.sh
// runs it inside the VMs).
func vmBinaries(t *testing.T) string {
	t.Helper()
	bin := binaries(t)
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "sdnlab"), "./cmd/sdnlab").CombinedOutput(); err != nil {
		t.Fatalf("go build sdnlab: %v\n%s", err, out)
	}
	return bin
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// vmDiagnostics is what a failure shows: each VM's sdnd journal and serial log.
func vmDiagnostics(c *vm.Cluster) string {
	var b strings.Builder
	for i := 1; i <= c.N(); i++ {
		out, _ := c.Run(i, "journalctl -u sdnd.service --no-pager | tail -n 40; cat /tmp/provision.log 2>/dev/null | tail -n 20")
		fmt.Fprintf(&b, "--- host%d: sdnd journal, provision log:\n%s\n", i, out)
	}
	return b.String() + c.SerialTail(15)
}

func vmCheckMatrix(t *testing.T, l *vm.Lab, ws []*lab.Workload, want lab.Matrix) {
	t.Helper()
	got, err := l.Matrix(ws)
	if err != nil {
		t.Fatal(err)
	}
	if d := lab.Diff(got, want); len(d) > 0 {
		t.Fatalf("connectivity differs:\n%s\n%s", strings.Join(d, "\n"), got)
	}
	t.Logf("\n%s", got)
}

// vmProbe runs sdnprobe in w's namespace on its VM.
func vmProbe(t *testing.T, l *vm.Lab, w *lab.Workload, args ...string) string {
	t.Helper()
	out, err := l.InNS(w, vm.RemoteBin+"/sdnprobe "+strings.Join(args, " "))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// vmDelivered sends 5 UDP frames from `from` (source MAC and IP as given)
// to `to` on another VM and returns how many arrived.
func vmDelivered(t *testing.T, l *vm.Lab, from, to *lab.Workload, srcMAC, srcIP string, port int) int {
	t.Helper()
	token := fmt.Sprintf("tok%d", port)
	var out bytes.Buffer
	recv, err := l.C.Start(l.Host(to), fmt.Sprintf("ip netns exec %s %s/sdnprobe udp-count -port %d -token %s -seconds 4", to.NS, vm.RemoteBin, port, token), &out)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	vmProbe(t, l, from, "udp-send", "-src-mac", srcMAC, "-src-ip", srcIP, "-dst-ip", to.IP, "-port", strconv.Itoa(port), "-count", "5", "-token", token)
	if err := recv.Wait(); err != nil {
		t.Fatalf("udp-count: %v: %s", err, out.String())
	}
	n, err := strconv.Atoi(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatalf("receiver said %q", out.String())
	}
	return n
}

func vmFind(t *testing.T, ws []*lab.Workload, host, network string) *lab.Workload {
	return find(t, ws, host, network)
}

// vmAntiSpoofing: host1's proj1 workload forging host1's infra workload's
// address, or a MAC, gets nothing across the kernel VXLAN to host2; its own
// addresses do.
func vmAntiSpoofing(t *testing.T, l *vm.Lab, ws []*lab.Workload) {
	x, y, to := vmFind(t, ws, "host1", "proj1"), vmFind(t, ws, "host1", "infra"), vmFind(t, ws, "host2", "proj1")
	if n := vmDelivered(t, l, x, to, x.MAC, x.IP, 20001); n == 0 {
		t.Fatalf("positive control: %s's own packets to %s: none delivered", x.ID(), to.ID())
	}
	if n := vmDelivered(t, l, x, to, x.MAC, y.IP, 20002); n != 0 {
		t.Errorf("%s forging %s's IP %s: %d packets delivered to %s", x.ID(), y.ID(), y.IP, n, to.ID())
	}
	if n := vmDelivered(t, l, x, to, "0a:58:de:ad:be:ef", x.IP, 20003); n != 0 {
		t.Errorf("%s forging MAC 0a:58:de:ad:be:ef: %d packets delivered to %s", x.ID(), n, to.ID())
	}
}

// vmStream sends a numbered UDP stream (1200 datagrams, 5 ms apart) from
// host1's proj1 workload to host2's, runs during() 1.5 s in, and fails
// unless every datagram arrived; it returns the receiver's words.
func vmStream(t *testing.T, l *vm.Lab, ws []*lab.Workload, during func()) string {
	t.Helper()
	from, to := vmFind(t, ws, "host1", "proj1"), vmFind(t, ws, "host2", "proj1")
	const count = 1200
	var out bytes.Buffer
	recv, err := l.C.Start(2, fmt.Sprintf("ip netns exec %s %s/sdnprobe udp-seq-recv -port 21000 -seconds 14", to.NS, vm.RemoteBin), &out)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	var sendOut bytes.Buffer
	send, err := l.C.Start(1, fmt.Sprintf("ip netns exec %s %s/sdnprobe udp-seq-send -dst %s -port 21000 -count %d -interval 5ms", from.NS, vm.RemoteBin, to.IP, count), &sendOut)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	during()
	if err := send.Wait(); err != nil {
		t.Fatalf("udp-seq-send: %v: %s", err, sendOut.String())
	}
	if err := recv.Wait(); err != nil {
		t.Fatalf("udp-seq-recv: %v: %s", err, out.String())
	}
	m := regexp.MustCompile(`received (\d+) missing (\d+)`).FindStringSubmatch(out.String())
	if m == nil || m[1] != strconv.Itoa(count) || m[2] != "0" {
		t.Fatalf("stream %s -> %s: %s (want all %d received)", from.ID(), to.ID(), out.String(), count)
	}
	return strings.TrimSpace(out.String())
}

// vmFlowRestoreWait restarts host2's ovs-vswitchd with flow-restore-wait
// set, under a stream: the kernel datapath keeps forwarding on its flows,
// the agent reinstalls the OpenFlow flows and clears the wait, and then
// new flows (a pair not used before) are forwarded too.
func vmFlowRestoreWait(t *testing.T, l *vm.Lab, ws []*lab.Workload) {
	n := vmStream(t, l, ws, func() {
		if _, err := l.C.Run(2, "ovs-vsctl set Open_vSwitch . other_config:flow-restore-wait=true && systemctl restart ovs-vswitchd.service"); err != nil {
			t.Error(err)
		}
	})
	t.Logf("host2's ovs-vswitchd restarted with flow-restore-wait mid-stream: %s", n)
	start := time.Now()
	for {
		out, err := l.C.Run(2, "ovs-vsctl --if-exists get Open_vSwitch . other_config:flow-restore-wait; ovs-ofctl -O OpenFlow15 dump-flows br-int | wc -l")
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(out)
		if len(f) == 1 && f[0] != "0" {
			t.Logf("the agent reinstalled %s flows and cleared flow-restore-wait %.0f s after the restart", f[0], time.Since(start).Seconds())
			break
		}
		if time.Since(start) > 90*time.Second {
			t.Fatalf("90 s after the restart: flow-restore-wait and flow count: %q", out)
		}
		time.Sleep(2 * time.Second)
	}
	a, b := vmFind(t, ws, "host1", "proj2"), vmFind(t, ws, "host2", "proj2")
	if _, err := l.InNS(b, "ping -c 3 -W 2 -n -q "+a.IP); err != nil {
		t.Fatalf("a new flow after the restart (%s -> %s): %v", b.ID(), a.ID(), err)
	}
}

// vmPolicy applies examples/policy/hello-web.hcl (host1's proj1 workload is
// app=web, host2's app=foo): foo still reaches web, host2's infra
// workload no longer does, and web's own egress is untouched.
func vmPolicy(t *testing.T, l *vm.Lab, ws []*lab.Workload) {
	if err := l.C.Copy(1, "/tmp/hello-web.hcl", "../examples/policy/hello-web.hcl"); err != nil {
		t.Fatal(err)
	}
	if out, err := l.Sdnctl("apply", "-f", "/tmp/hello-web.hcl", "--wait"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	web, foo, infra := vmFind(t, ws, "host1", "proj1"), vmFind(t, ws, "host2", "proj1"), vmFind(t, ws, "host2", "infra")
	got, err := l.Matrix([]*lab.Workload{web, foo, infra})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		a, b *lab.Workload
		want bool
	}{{foo, web, true}, {infra, web, false}, {web, foo, true}, {web, infra, true}} {
		if got.Reach[c.a.ID()][c.b.ID()] != c.want {
			t.Errorf("with hello-web: %s -> %s reached %v, want %v\n%s", c.a.ID(), c.b.ID(), !c.want, c.want, got)
		}
	}
}

// vmService: proj1's service hello (port 80 -> 8080, endpoints app in
// [foo, bar]) has host2's proj1 workload as endpoint; host1's proj1
// workload reaches it at the VIP across the kernel datapath's conntrack NAT.
func vmService(t *testing.T, l *vm.Lab, ws []*lab.Workload) {
	client, server := vmFind(t, ws, "host1", "proj1"), vmFind(t, ws, "host2", "proj1")
	out, err := l.Sdnctl("get", "services", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`"vip":\s*"([0-9.]+)"`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no VIP in sdnctl get services:\n%s", out)
	}
	if _, err := l.InNS(server, "sh -c 'timeout 120 "+vm.RemoteBin+"/sdnprobe serve -tcp 8080 >/tmp/serve.log 2>&1 &'"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	var r string
	for try := 0; try < 5; try++ {
		if r = vmProbe(t, l, client, "probe", "-targets", m[1]+":tcp:80", "-timeout", "2s"); strings.HasSuffix(r, " ok") {
			break
		}
		time.Sleep(time.Second)
	}
	if !strings.HasSuffix(r, " ok") {
		t.Fatalf("%s -> service hello %s:80 (endpoint %s:8080): %s", client.ID(), m[1], server.ID(), r)
	}
	t.Logf("%s -> service hello at %s:80: %s", client.ID(), m[1], r)
	// The kernel datapath by name: ovs-vswitchd also runs a userspace
	// one for the scratch bridge sdn-canon, and dpctl/ commands without a
	// name then fail with "multiple datapaths, specify one".
	zones, err := l.C.Run(1, "ovs-appctl dpctl/dump-conntrack system@ovs-system | grep -F "+m[1]+" || true")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(zones, "zone=1") {
		t.Errorf("host1's kernel conntrack holds no entry in zone 1 for the VIP %s:\n%s", m[1], zones)
	}
	t.Logf("host1's kernel conntrack for the VIP:\n%s", zones)
}

// vmMTU: a datagram of the workloads' full MTU with DF set crosses the
// kernel VXLAN both ways, and a TCP stream (segmentation and checksum
// offloads through vxlan_sys_4789) carries data.
func vmMTU(t *testing.T, l *vm.Lab, ws []*lab.Workload) {
	a, b := vmFind(t, ws, "host1", "proj1"), vmFind(t, ws, "host2", "proj1")
	out, err := l.InNS(a, "cat /sys/class/net/eth0/mtu")
	if err != nil {
		t.Fatal(err)
	}
	mtu, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || mtu != 1450 {
		t.Fatalf("workload MTU %q, want 1450 (the 1500 underlay minus VXLAN's 50)", out)
	}
	for _, p := range [][2]*lab.Workload{{a, b}, {b, a}} {
		if out, err := l.InNS(p[0], fmt.Sprintf("ping -c 2 -W 3 -M do -s %d -n -q %s", mtu-28, p[1].IP)); err != nil {
			t.Errorf("%s -> %s: %d-byte packets with DF: %v\n%s", p[0].ID(), p[1].ID(), mtu, err, out)
		}
	}
	if _, err := l.InNS(b, "iperf3 -s -1 -D"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	out, err = l.InNS(a, "iperf3 -c "+b.IP+" -t 3 -f m")
	if err != nil {
		t.Fatalf("TCP (iperf3) %s -> %s: %v", a.ID(), b.ID(), err)
	}
	m := regexp.MustCompile(`([0-9.]+) Mbits/sec\s+\d*\s*receiver`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("iperf3 gave no receiver rate:\n%s", out)
	}
	t.Logf("TCP %s -> %s across the kernel VXLAN: %s Mbit/s (TCG; not a figure to judge)", a.ID(), b.ID(), m[1])
}
