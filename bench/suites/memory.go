package suites

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sdn-dev/sdn/bench"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Memory measures the sdnd server's memory with many workloads: one
// `sdnd --dev` process (built from this tree) gets 10 networks, 50 hosts
// (registered through the API only: they need not exist, only the control
// plane is measured) and N workloads attached in parallel, then its peak RSS
// (VmHWM), how long listing every workload takes and how fast more attach.
//
// The agent side runs in a lab (memorylab.go): 3 hosts with real agents
// and OVS, N workloads attached through the lab server's API and spread
// over the hosts, a few real ones per host; then the peak RSS of every
// sdnd (goal for an agent: under 150 MB) and ovs-vswitchd.
func Memory() bench.Suite {
	m := &memory{}
	return bench.Suite{
		Name:        "memory",
		Description: "Peak RSS of one sdnd --dev server loaded through its gRPC API with 10 networks, 50 hosts and N workloads (goal: under 1 GB at 100,000 workloads); List and Attach speed at that size; peak RSS of the sdnd agents and ovs-vswitchd of a 3-host lab holding 10,000 workloads (goal: agent under 150 MB).",
		Setup:       m.setup,
		Figures: []bench.Figure{{
			Name: "sdnd server peak RSS (MiB)", Unit: "MiB",
			Variants: []bench.Variant{{Name: "server", Run: m.peakRSS}},
		}, {
			Name: "List workloads latency (ms)", Unit: "ms",
			Variants: []bench.Variant{{Name: "server", Run: m.listLatency}},
		}, {
			Name: "attach throughput (workloads/s)", Unit: "workloads/s", HigherIsBetter: true,
			Variants: []bench.Variant{{Name: "server", Run: m.attachBatch}},
		}, {
			Name: "lab peak RSS (MiB)", Unit: "MiB",
			Variants: m.lab.variants("VmHWM"),
		}, {
			Name: "lab RSS after the load (MiB)", Unit: "MiB",
			Variants: m.lab.variants("VmRSS"),
		}, {
			Name: "lab realize throughput, agents holding the load (revisions/s)", Unit: "revisions/s", HigherIsBetter: true,
			Variants: []bench.Variant{{Name: "lab", Run: m.lab.realizeRate}},
		}},
	}
}

const (
	memNetworks = 10
	memHosts    = 50
	memWorkers  = 32
)

type memory struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when sdnd exits
	conn   *grpc.ClientConn
	n      int // workloads attached so far
	lab    memLab
	batch  int // workloads each attach-throughput round adds
	round  int
}

func (m *memory) setup(ctx context.Context, env *bench.Env) (func(), error) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		return nil, fmt.Errorf("needs Linux /proc to read VmHWM: %v", err)
	}
	n := 100000
	if env.Quick {
		n = 10000
	}
	m.batch = n / 10

	bin := filepath.Join(env.Dir, "sdnd")
	env.Logf("building sdnd into %s", bin)
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/sdn-dev/sdn/sdnd").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build sdnd: %v: %s", err, out)
	}
	api, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	raft, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(env.Dir, "sdnd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	m.cmd = exec.Command(bin, "--dev", "--node-name", "bench-server", "--data-dir", filepath.Join(env.Dir, "data"),
		"--listen", api, "--raft-addr", raft, "--log-level", "warn")
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start sdnd: %w", err)
	}
	m.exited = make(chan struct{})
	go func() { _ = m.cmd.Wait(); logf.Close(); close(m.exited) }()
	teardown := func() {
		if m.conn != nil {
			m.conn.Close()
		}
		_ = m.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-m.exited:
		case <-time.After(15 * time.Second):
			env.Logf("teardown: sdnd did not stop within 15s of SIGTERM; killing it")
			_ = m.cmd.Process.Kill()
			<-m.exited
		}
	}
	env.Logf("sdnd pid %d, API %s, raft %s, log %s", m.cmd.Process.Pid, api, raft, logPath)

	m.conn, err = grpc.NewClient(api, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30)))
	if err != nil {
		return teardown, err
	}
	if err := m.waitServing(ctx, time.Minute); err != nil {
		return teardown, fmt.Errorf("%w (log: %s)", err, tail(logPath))
	}

	nets := make([]*sdnv1.Network, memNetworks)
	for i := range nets {
		nets[i] = &sdnv1.Network{Name: memNetwork(i)}
	}
	cfg := sdnv1.NewConfigServiceClient(m.conn)
	if _, err := cfg.Apply(ctx, &sdnv1.ApplyRequest{
		Cluster:  &sdnv1.ClusterSettings{Cidr: "10.0.0.0/8", HostPrefix: 20},
		Networks: nets,
	}); err != nil {
		return teardown, fmt.Errorf("apply cluster and networks: %w", err)
	}
	nodes := sdnv1.NewNodeServiceClient(m.conn)
	for i := range memHosts {
		if _, err := nodes.Register(ctx, &sdnv1.RegisterNodeRequest{
			Name: memHost(i), UnderlayIp: fmt.Sprintf("198.18.%d.%d", i/250, i%250+1), UnderlayMtu: 1500,
		}); err != nil {
			return teardown, fmt.Errorf("register %s: %w", memHost(i), err)
		}
	}
	env.Logf("cluster 10.0.0.0/8 (/20 per host), %d networks, %d hosts; attaching %d workloads with %d goroutines", memNetworks, memHosts, n, memWorkers)
	took, err := m.attach(ctx, env, n)
	if err != nil {
		return teardown, err
	}
	rate := float64(n) / took.Seconds()
	env.Logf("attached %d workloads in %v (%.0f/s)", n, took.Round(time.Millisecond), rate)

	env.Note("load", fmt.Sprintf("%d workloads (quick: 10,000; full: 100,000) over %d hosts (underlay 198.18.x.y, MTU 1500, registered only: no agents) and %d networks; cluster 10.0.0.0/8, /20 per host; attached through WorkloadService.Attach by %d goroutines", n, memHosts, memNetworks, memWorkers))
	env.Note("initial load", fmt.Sprintf("%d attaches in %v: %.0f workloads/s into an empty store (one sample, not a figure)", n, took.Round(time.Millisecond), rate))
	env.Note("process", "one sdnd --dev process (built from this tree, plaintext gRPC on loopback), loaded once in setup; every round measures that same process. "+
		"Figures run in order: peak RSS (VmHWM from /proc/PID/status, a high-water mark, so every round reads the peak of the load itself), "+
		"then List (all workloads, one call), then attach throughput, each round adding "+strconv.Itoa(m.batch)+" more workloads (so List and RSS see exactly the load, attach rounds a store already holding it and growing)")
	labDown := m.lab.setup(ctx, env)
	return func() { labDown(); teardown() }, nil
}

// waitServing polls the gRPC health service until it says SERVING, sdnd
// exits, or the timeout passes.
func (m *memory) waitServing(ctx context.Context, timeout time.Duration) error {
	hc := healthpb.NewHealthClient(m.conn)
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		res, err := hc.Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && res.Status == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		last = err
		if err == nil {
			last = fmt.Errorf("health %s", res.Status)
		}
		select {
		case <-m.exited:
			return fmt.Errorf("sdnd exited before serving: %v", m.cmd.ProcessState)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("sdnd not SERVING after %v: %v", timeout, last)
}

// attach attaches workloads m.n .. m.n+count-1 with memWorkers goroutines
// and returns how long it took; the first error stops it.
func (m *memory) attach(ctx context.Context, env *bench.Env, count int) (time.Duration, error) {
	took, done, err := attachMany(ctx, env, m.conn, m.n, count, func(i int) *sdnv1.Workload {
		host, network := memPlacement(i)
		return &sdnv1.Workload{Name: memWorkload(i), Network: memNetwork(network), Node: memHost(host)}
	})
	m.n += done
	return took, err
}

// attachMany attaches workloads first .. first+count-1 (w(i) says what
// each is) through conn's WorkloadService with memWorkers goroutines, and
// returns how long it took and how many attached; the first error stops it.
func attachMany(ctx context.Context, env *bench.Env, conn *grpc.ClientConn, first, count int, w func(i int) *sdnv1.Workload) (time.Duration, int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wc := sdnv1.NewWorkloadServiceClient(conn)
	var next, done atomic.Int64
	var once sync.Once
	var firstErr error
	var wg sync.WaitGroup
	stopProgress := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				env.Logf("  %d/%d attached", done.Load(), count)
			}
		}
	}()
	start := time.Now()
	for range memWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= count || ctx.Err() != nil {
					return
				}
				wl := w(first + k)
				if _, err := wc.Attach(ctx, &sdnv1.AttachWorkloadRequest{Workload: wl}); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("attach %s/%s on %s: %w", wl.Network, wl.Name, wl.Node, err); cancel() })
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(stopProgress)
	if firstErr != nil {
		return 0, int(done.Load()), firstErr
	}
	return took, int(done.Load()), nil
}

func (m *memory) peakRSS(ctx context.Context, env *bench.Env) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", m.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("sdnd's status: %w", err)
	}
	kb, err := parseVmHWM(b)
	if err != nil {
		return 0, err
	}
	return float64(kb) / 1024, nil
}

func (m *memory) listLatency(ctx context.Context, env *bench.Env) (float64, error) {
	cfg := sdnv1.NewConfigServiceClient(m.conn)
	start := time.Now()
	res, err := cfg.List(ctx, &sdnv1.ListRequest{Kind: "workloads"})
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("list workloads: %w", err)
	}
	if len(res.Workloads) != m.n {
		return 0, fmt.Errorf("list returned %d workloads, want %d", len(res.Workloads), m.n)
	}
	return float64(took.Microseconds()) / 1000, nil
}

func (m *memory) attachBatch(ctx context.Context, env *bench.Env) (float64, error) {
	m.round++
	env.Logf("attach round %d: %d more workloads onto %d", m.round, m.batch, m.n)
	took, err := m.attach(ctx, env, m.batch)
	if err != nil {
		return 0, err
	}
	return float64(m.batch) / took.Seconds(), nil
}

// memPlacement spreads workload i over the hosts and networks: consecutive
// workloads go to different hosts, and every host gets every network.
func memPlacement(i int) (host, network int) {
	return i % memHosts, (i / memHosts) % memNetworks
}

func memHost(i int) string     { return fmt.Sprintf("bench-host-%02d", i) }
func memNetwork(i int) string  { return fmt.Sprintf("net-%d", i) }
func memWorkload(i int) string { return fmt.Sprintf("w-%06d", i) }

// parseVmHWM returns the VmHWM line of a /proc/PID/status, in kB.
func parseVmHWM(status []byte) (int64, error) { return parseStatusKB(status, "VmHWM") }

// parseStatusKB returns the field called key ("VmHWM", "VmRSS") of a
// /proc/PID/status, in kB.
func parseStatusKB(status []byte, key string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), key+":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%s line %q: want \"N kB\"", key, sc.Text())
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, fmt.Errorf("no %s in /proc/PID/status", key)
}

// freeLoopbackPort returns 127.0.0.1:PORT for a port the kernel just had
// free (there is a small race until sdnd binds it).
func freeLoopbackPort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// tail returns the last lines of a log file, for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " / ")
}
