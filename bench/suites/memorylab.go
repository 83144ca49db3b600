package suites

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sdn-dev/sdn/bench"
	"github.com/sdn-dev/sdn/integration/lab"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// The memory suite's lab part: a lab of memLabHosts hosts (real sdnd
// agents, each with its own ovs-vswitchd) whose server gets N workloads
// through its API, spread over the hosts, plus a few real workloads per
// host attached by the CNI plugin; then the peak RSS of every sdnd and
// ovs-vswitchd.
const (
	memLabHosts    = 3
	memLabNetworks = 10
)

// memLab is that lab. When its setup fails the suite goes on (the server
// figures stand alone) and every lab variant fails with err.
type memLab struct {
	err     error
	lab     *lab.Lab
	n       int // workloads attached through the API
	added   int // attached by the realize figure's rounds since
	real    int // workloads attached by the CNI plugin, per host
	perHost [memLabHosts + 1]int
}

// memLabHCL is the lab's configuration: host blocks large enough for
// thousands of workloads each (a /18 holds 16,381), 10 networks.
func memLabHCL() string {
	var b strings.Builder
	b.WriteString("cluster {\n  cidr        = \"10.128.0.0/14\"\n  host_prefix = 18\n  isolation   = \"multitenant\"\n}\n")
	for i := range memLabNetworks {
		fmt.Fprintf(&b, "\nnetwork %q {\n  labels = { bench = \"memory\" }\n}\n", memNetwork(i))
	}
	return b.String()
}

// memLabPlacement spreads API workload i over the lab's hosts and the
// networks, like memPlacement.
func memLabPlacement(i int) (host, network int) {
	return i%memLabHosts + 1, (i / memLabHosts) % memLabNetworks
}

// setupLab brings the lab up and loads it; it returns the teardown (nil
// when nothing was made) and records any failure in ml.err.
func (ml *memLab) setup(ctx context.Context, env *bench.Env) func() {
	ml.n, ml.real = 10000, 100
	if env.Quick {
		ml.n, ml.real = 2000, 5
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := "mem" + hex.EncodeToString(b)
	dir := filepath.Join(env.Dir, "lab")
	teardown := func() { downLab(env, ml.lab, name, dir) }
	ml.err = ml.load(ctx, env, name, dir)
	if ml.err != nil {
		env.Logf("lab: %v (the lab figures fail with this; the server's stand)", ml.err)
		env.Note("lab", "not measured: "+ml.err.Error())
	}
	return teardown
}

func (ml *memLab) load(ctx context.Context, env *bench.Env, name, dir string) error {
	if os.Geteuid() != 0 {
		return errors.New("the lab needs root (network namespaces, OVS); run as root")
	}
	bin := filepath.Join(env.Dir, "bin")
	if err := buildLabBinaries(ctx, env, bin); err != nil {
		return err
	}
	hcl := filepath.Join(env.Dir, "lab-hcl")
	if err := os.MkdirAll(hcl, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(hcl, "memory.hcl"), []byte(memLabHCL()), 0o644); err != nil {
		return err
	}
	env.Logf("lab %s: underlay and OVS (%d hosts)", name, memLabHosts)
	cfg := lab.Config{Name: name, Hosts: memLabHosts, Dir: dir, Bin: bin, Examples: hcl, UnderlayOnly: true}
	var err error
	if ml.lab, err = lab.Up(ctx, cfg); err != nil {
		return fmt.Errorf("lab up (underlay): %w", err)
	}
	attachTook, err := ml.seed(ctx, env, hcl)
	if err != nil {
		return err
	}
	env.Logf("lab %s: sdnd on every host", name)
	start := time.Now()
	cfg.UnderlayOnly = false
	if ml.lab, err = lab.Up(ctx, cfg); err != nil {
		return fmt.Errorf("lab up: %w", err)
	}
	if err := ml.lab.WaitRealized(ctx, 10*time.Minute); err != nil {
		return err
	}
	upTook := time.Since(start)
	env.Logf("lab: agents started and realized %d workloads in %v", ml.n, upTook.Round(time.Millisecond))

	env.Logf("lab: attaching %d real workloads per host with the CNI plugin", ml.real)
	start = time.Now()
	errs := make([]error, memLabHosts)
	var wg sync.WaitGroup
	for h := 1; h <= memLabHosts; h++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ml.real {
				if _, err := ml.lab.Attach(lab.HostName(h), memNetwork(j%memLabNetworks), fmt.Sprintf("cni-%03d", j), nil); err != nil {
					errs[h-1] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := ml.lab.WaitRealized(ctx, 10*time.Minute); err != nil {
		return err
	}
	cniTook := time.Since(start)
	env.Logf("lab: %d real workloads attached and realized in %v", ml.real*memLabHosts, cniTook.Round(time.Millisecond))

	var brInt []string
	for h := 1; h <= memLabHosts; h++ {
		out, err := ml.lab.OVS(h).Ofctl(ctx, "-O", "OpenFlow15", "dump-flows", "--no-stats", "br-int")
		if err != nil {
			return err
		}
		ports, err := ml.lab.OVS(h).Vsctl(ctx, "list-ports", "br-int")
		if err != nil {
			return err
		}
		brInt = append(brInt, fmt.Sprintf("%s %d flows, %d ports", lab.HostName(h), strings.Count(out, "cookie="), len(strings.Fields(ports))))
	}
	env.Note("lab", fmt.Sprintf("lab %s: %d hosts (underlay MTU %d, OVS netdev datapath per host); cluster 10.128.0.0/14, /18 per host, multitenant, %d networks. "+
		"First a server alone on host1's raft state (no agent yet): HCL applied, the %d hosts registered, %d workloads (quick: 2,000; full: 10,000) attached through WorkloadService.Attach by %d goroutines in %v, host = i mod %d (%s); "+
		"then sdnd started on every host (host1: server and agent on that state), the agents receiving their workloads as one snapshot: up and realized in %v. "+
		"Then %d real workloads per host (quick: 5; full: 100) attached one by one by the CNI plugin (veth, OVS port, flows; each a revision every agent realizes): attached and realized in %v. br-int at the end: %s",
		name, memLabHosts, lab.DefaultUnderlayMTU, memLabNetworks, memLabHosts, ml.n, memWorkers, attachTook.Round(time.Millisecond), memLabHosts, ml.perHostText(),
		upTook.Round(time.Millisecond), ml.real, cniTook.Round(time.Millisecond), strings.Join(brInt, "; ")))
	env.Note("lab caveat", "a workload attached through the API has no veth on its host: its agent holds it in its desired state (and the server in its store) but gives it no OVS port and no flows (datapath/host/ports.go), "+
		"so ovs-vswitchd's size reflects only the real workloads, and the agents' the API ones as state, not as flows. "+
		"The API workloads are attached before the agents start, the quickest way to a loaded lab (every host gets every revision; an agent applies all the revisions it has received, then realizes once). The realize figure measures how fast running agents keep up with attaches: 2,000 attaches to 3 running agents were realized everywhere 5.5-5.7 s after the first (2026-12-05, this VM; 2 min 49 s before agents batched revisions). "+
		"host1's sdnd is the lab's server and host1's agent in one process (the lab runs them so): its figures are both together; host2 and host3 run agents only")
	return nil
}

func (ml *memLab) perHostText() string {
	var parts []string
	for h := 1; h <= memLabHosts; h++ {
		parts = append(parts, fmt.Sprintf("%s %d", lab.HostName(h), ml.perHost[h]))
	}
	return strings.Join(parts, ", ")
}

// memLabRealizeBatch is how many workloads each round of the realize
// figure attaches.
const memLabRealizeBatch = 30

// realizeRate attaches memLabRealizeBatch more workloads through the lab's
// API, to running agents (each attach is a revision every agent realizes),
// and returns how many revisions per second the lab realized: the batch over
// the time from the first attach until every host reported the last.
func (ml *memLab) realizeRate(ctx context.Context, env *bench.Env) (float64, error) {
	if ml.err != nil {
		return 0, fmt.Errorf("lab not loaded: %w", ml.err)
	}
	conn, err := ml.lab.Dial()
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	start := time.Now()
	_, done, err := attachMany(ctx, env, conn, ml.n+ml.added, memLabRealizeBatch, func(i int) *sdnv1.Workload {
		host, network := memLabPlacement(i)
		return &sdnv1.Workload{Name: fmt.Sprintf("api-%05d", i), Network: memNetwork(network), Node: lab.HostName(host)}
	})
	ml.added += done
	if err != nil {
		return 0, err
	}
	if err := ml.lab.WaitRealized(ctx, 5*time.Minute); err != nil {
		return 0, err
	}
	return float64(memLabRealizeBatch) / time.Since(start).Seconds(), nil
}

// labVariants returns one variant per process of the lab reading key
// ("VmHWM", "VmRSS") of its /proc/PID/status, in MiB.
func (ml *memLab) variants(key string) []bench.Variant {
	var vs []bench.Variant
	for h := 1; h <= memLabHosts; h++ {
		role := "agent"
		if h == 1 {
			role = "server+agent"
		}
		vs = append(vs, bench.Variant{Name: fmt.Sprintf("sdnd %s (%s)", lab.HostName(h), role), Run: ml.read(key, "sdnd", h)})
	}
	for h := 1; h <= memLabHosts; h++ {
		vs = append(vs, bench.Variant{Name: "ovs-vswitchd " + lab.HostName(h), Run: ml.read(key, "ovs-vswitchd", h)})
	}
	return vs
}

func (ml *memLab) read(key, prog string, host int) func(context.Context, *bench.Env) (float64, error) {
	return func(ctx context.Context, env *bench.Env) (float64, error) {
		if ml.err != nil {
			return 0, fmt.Errorf("lab not loaded: %w", ml.err)
		}
		var pid int
		if prog == "sdnd" {
			pid = ml.lab.SDNDPID(host)
		} else {
			pid = vswitchdPID(ml.lab, host)
		}
		if pid == 0 {
			return 0, fmt.Errorf("%s's %s does not run", lab.HostName(host), prog)
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0, fmt.Errorf("%s's %s: %w", lab.HostName(host), prog, err)
		}
		kb, err := parseStatusKB(b, key)
		if err != nil {
			return 0, err
		}
		return float64(kb) / 1024, nil
	}
}

// vswitchdPID is host's ovs-vswitchd, from the pidfile OVS keeps in the
// instance's run directory (checked against /proc/PID/cmdline); 0 if it
// does not run.
func vswitchdPID(l *lab.Lab, host int) int {
	pidfile := filepath.Join(l.OVS(host).RunDir, "ovs-vswitchd.pid")
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmd), "--pidfile="+pidfile) {
		return 0
	}
	return pid
}

// seed loads the lab's raft state before any agent runs, and returns how
// long the attaches took. The lab registers every host (giving it a block of
// the default /23s) before it applies its HCL, and a block size cannot
// change while hosts hold blocks, yet 3,333 workloads on one host need a
// larger one; and agents realize once per revision, so thousands of
// attaches to running agents take long to be realized. So seedServer runs
// host1's sdnd first as a server alone: hcl applied, the hosts registered,
// ml.n workloads attached; then lab.Up starts host1's server and agent on
// that state.
func (ml *memLab) seed(ctx context.Context, env *bench.Env, hcl string) (time.Duration, error) {
	var took time.Duration
	err := seedServer(ctx, ml.lab, hcl, func(conn *grpc.ClientConn) error {
		env.Logf("lab: attaching %d workloads through the API over %d hosts and %d networks (no agent running yet)", ml.n, memLabHosts, memLabNetworks)
		var err error
		if took, _, err = attachMany(ctx, env, conn, 0, ml.n, func(i int) *sdnv1.Workload {
			host, network := memLabPlacement(i)
			return &sdnv1.Workload{Name: fmt.Sprintf("api-%05d", i), Network: memNetwork(network), Node: lab.HostName(host)}
		}); err != nil {
			return fmt.Errorf("attach: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for i := range ml.n {
		host, _ := memLabPlacement(i)
		ml.perHost[host]++
	}
	env.Logf("lab: attached %d in %v", ml.n, took.Round(time.Millisecond))
	return took, nil
}

// seedServer prepares the raft state of a lab brought up UnderlayOnly
// before any agent runs: host1's sdnd runs as a server alone on the data
// directory and raft address the lab gives host1 (integration/lab/up.go:
// HostDir/data, HostIP:7421), hcl (a file or directory) is applied, every
// host of the lab registered as its agent will register (name, underlay
// address, MTU: they keep their blocks when they do), load runs with a
// connection to that server (nil: nothing more); then the server stops, and
// lab.Up starts host1's server and agent on that state. This is how a lab
// gets a cluster block (host_prefix) other than the default before its
// hosts take their blocks.
func seedServer(ctx context.Context, l *lab.Lab, hcl string, load func(*grpc.ClientConn) error) error {
	sock := filepath.Join(l.HostDir(1), "seed.sock")
	logPath := filepath.Join(l.HostDir(1), "seed-sdnd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("ip", "netns", "exec", l.HostNS(1), filepath.Join(l.Bin, "sdnd"),
		"--server", "--bootstrap", "--node-name="+lab.HostName(1), "--data-dir="+filepath.Join(l.HostDir(1), "data"),
		"--listen=unix:"+sock, "--raft-addr="+l.HostIP(1).String()+":7421", "--log-level=warn", "--insecure-plaintext")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("seed server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	fail := func(what string, err error) error {
		return fmt.Errorf("seed server: %s: %w (log %s: %s)", what, err, logPath, tail(logPath))
	}
	sdnctl := filepath.Join(l.Bin, "sdnctl")
	for deadline := time.Now().Add(time.Minute); ; {
		out, err := exec.CommandContext(ctx, sdnctl, "--server", "unix://"+sock, "apply", "-f", hcl).CombinedOutput()
		if err == nil {
			break
		}
		select {
		case <-exited:
			return fail("exited", fmt.Errorf("%v", cmd.ProcessState))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fail("sdnctl apply -f "+hcl, fmt.Errorf("%v: %s", err, out))
		}
		time.Sleep(200 * time.Millisecond)
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	mtu := l.UnderlayMTU()
	if mtu == 0 {
		mtu = lab.DefaultUnderlayMTU
	}
	nodes := sdnv1.NewNodeServiceClient(conn)
	for h := 1; h <= l.Hosts; h++ {
		if _, err := nodes.Register(ctx, &sdnv1.RegisterNodeRequest{
			Name: lab.HostName(h), UnderlayIp: l.HostIP(h).String(), UnderlayMtu: uint32(mtu),
		}); err != nil {
			return fail("register "+lab.HostName(h), err)
		}
	}
	if load != nil {
		if err := load(conn); err != nil {
			return fail("load", err)
		}
	}
	return nil
}
