package suites

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/sdn-dev/sdn/bench"
	"github.com/sdn-dev/sdn/integration/lab"
	"github.com/sdn-dev/sdn/model"
)

// Services measures services (docs/services.md) against the goals of
// issue 14, in one 2-host lab loaded with svcSizes.services services of
// svcSizes.endpoints static workloads each:
//
//   - the time from one endpoint change (a workload's label moved from one
//     service's selector to another's, removed, put back) until every host
//     realized it, p50 and p99 (serviceschange.go);
//   - new TCP connections per second from a client on host2 through a VIP
//     whose one endpoint is a server on host1, against the same client
//     straight to the server's address (servicesvip.go).
func Services() bench.Suite {
	s := &svcBench{}
	return bench.Suite{
		Name: "services",
		Description: "Services: one endpoint change with 1,000 services × 10 endpoints installed → realized on every host (goal p99 < 100 ms); " +
			"new TCP connections/s through a VIP vs straight to its one endpoint (goal ≥ 0.8).",
		Setup: s.setup,
		Figures: []bench.Figure{{
			Name: figSvcConns, Unit: "conn/s", HigherIsBetter: true,
			Variants: []bench.Variant{
				{Name: "via VIP", Run: s.conns(true)},
				{Name: "direct", Run: s.conns(false)},
			},
			Ratios: [][2]string{{"via VIP", "direct"}},
		}},
		Batches: []bench.Batch{{
			Figures:  []bench.Figure{{Name: figSvcChange50, Unit: "ms"}, {Name: figSvcChange99, Unit: "ms"}},
			Variants: []bench.BatchVariant{{Name: "endpoint changes", Run: s.changeRound}},
		}},
	}
}

const (
	figSvcChange50 = "endpoint change until realized on every host, p50"
	figSvcChange99 = "endpoint change until realized on every host, p99"
	figSvcConns    = "new TCP connections/s across hosts"
)

// svcSizes are the suite's sizes (full and quick).
type svcSizes struct {
	services, endpoints int // services, and static workloads selected by each
	changes             int // endpoint changes per round
	tools               toolSettings
}

var (
	fullSvcSizes  = svcSizes{services: 1000, endpoints: 10, changes: 100, tools: fullTools}
	quickSvcSizes = svcSizes{services: 50, endpoints: 4, changes: 6, tools: svcQuickTools()}
)

// svcQuickTools is quickTools with a 2-second wrk: a 1-second one through
// a VIP is mostly the connections' ramp.
func svcQuickTools() toolSettings {
	t := quickTools
	t.wrkSeconds = 2
	return t
}

const (
	svcLabHosts    = 2
	svcLabNetworks = 10
	// svcPerf is the network of the connections figure's pair, svcVIP its
	// service's VIP (in the default service_cidr, 172.30.0.0/16, far from
	// where the allocator starts).
	svcPerf    = "perf"
	svcVIPName = "perf-srv"
	svcVIP     = "172.30.255.10"
	// svcFileWorkloads is how many static workloads one HCL file declares.
	svcFileWorkloads = 5000
)

// svcBench is what the suite's setup makes and its figures share.
type svcBench struct {
	sizes svcSizes
	bin   string
	lab   *lab.Lab
	conn  *grpc.ClientConn
	perf  [2]*lab.Workload // server (host1), client (host2)
	dp    *dataplane       // starts and stops the server's http server
	// dpFlows are host2's datapath flows and flow limit after the last
	// wrk: direct, via VIP.
	dpFlows [2]string
	remaps  []string // per round: VIP connections remapped by the NAT

	changeState // the change figure's
}

func (s *svcBench) setup(ctx context.Context, env *bench.Env) (func(), error) {
	if err := checkPolicyTools(); err != nil {
		return nil, err
	}
	s.sizes = fullSvcSizes
	if env.Quick {
		s.sizes = quickSvcSizes
	}
	name := "svc" + runID()
	labDir := filepath.Join(env.Dir, "lab")
	teardown := func() {
		if s.dp != nil {
			s.dp.stopServers()
		}
		if s.conn != nil {
			_ = s.conn.Close()
		}
		downLab(env, s.lab, name, labDir)
	}
	var err error
	if s.bin, err = buildPolicyBinaries(ctx, env); err != nil {
		return teardown, err
	}
	if err := s.labUp(ctx, env, name, labDir); err != nil {
		return teardown, err
	}
	if s.conn, err = s.lab.Dial(); err != nil {
		return teardown, err
	}
	if err := s.checkEndpoints(ctx, env); err != nil {
		return teardown, err
	}
	s.dp = &dataplane{probe: filepath.Join(s.bin, "sdnprobe")}
	if err := s.dp.startServers(ctx, s.directEndpoints()); err != nil {
		return teardown, err
	}
	s.noteConns(env)
	return teardown, s.noteBridges(ctx, env)
}

// labUp writes the HCL, seeds the lab's raft state with it before the
// agents start (as the policy suite does: /18 host blocks for the static
// workloads, and no agent realizing thousands of revisions), brings the
// lab up and attaches the connections figure's pair.
func (s *svcBench) labUp(ctx context.Context, env *bench.Env, name, dir string) error {
	hcl := filepath.Join(env.Dir, "hcl")
	if err := writeSvcHCL(hcl, s.sizes); err != nil {
		return err
	}
	env.Logf("lab %s: underlay and OVS (%d hosts)", name, svcLabHosts)
	cfg := lab.Config{Name: name, Hosts: svcLabHosts, Dir: dir, Bin: s.bin, Examples: hcl, UnderlayOnly: true}
	var err error
	if s.lab, err = lab.Up(ctx, cfg); err != nil {
		return fmt.Errorf("lab up (underlay): %w", err)
	}
	start := time.Now()
	if err := seedServer(ctx, s.lab, hcl, nil); err != nil {
		return err
	}
	env.Logf("lab %s: seeded in %v; sdnd on every host", name, time.Since(start).Round(time.Millisecond))
	cfg.UnderlayOnly = false
	if s.lab, err = lab.Up(ctx, cfg); err != nil {
		return fmt.Errorf("lab up: %w", err)
	}
	for i, w := range []struct{ host, name, role string }{{"host1", "perf-srv", "srv"}, {"host2", "perf-cli", "cli"}} {
		if s.perf[i], err = s.lab.Attach(w.host, svcPerf, w.name, map[string]string{"perf": w.role}); err != nil {
			return err
		}
	}
	if err := s.lab.WaitRealized(ctx, 5*time.Minute); err != nil {
		return err
	}
	env.Logf("lab %s: up, loaded and realized %v after the seed", name, time.Since(start).Round(time.Millisecond))
	env.Note("lab", fmt.Sprintf("lab %s: %d hosts (OVS netdev datapath each; host1 runs the server and an agent in one sdnd, host2 an agent); cluster 10.128.0.0/14, /18 per host (raft state seeded before the agents start, as the policy suite does), networks svc-0..svc-%d and %s. "+
		"Load: %d services s-NNNN (one tcp port each, 80 → 8080, VIP allocated), service i in network svc-(i mod %d) selecting svc=s-NNNN; %d static workloads declared in HCL (node set, no veth), %d labelled for each service, alternating over the hosts. "+
		"Real workloads (CNI): %s (%s, server) and %s (%s, client) in %s; service %s/%s (VIP %s, tcp/%d → %d) selects the server alone",
		name, svcLabHosts, svcLabNetworks-1, svcPerf, s.sizes.services, svcLabNetworks, s.sizes.services*s.sizes.endpoints, s.sizes.endpoints,
		s.perf[0].ID(), s.perf[0].IP, s.perf[1].ID(), s.perf[1].IP, svcPerf, svcPerf, svcVIPName, svcVIP, httpPort, httpPort))
	return nil
}

// checkEndpoints checks the servers derived what the HCL asks: every
// load service with its endpoints, and the VIP service with the server.
func (s *svcBench) checkEndpoints(ctx context.Context, env *bench.Env) error {
	list, _, err := s.lab.Services(ctx)
	if err != nil {
		return err
	}
	eps := map[string]int{}
	for _, e := range list.GetServiceEndpoints() {
		eps[e.GetService()] = len(e.GetEndpoints())
	}
	total := 0
	for _, v := range list.GetServices() {
		if v.GetNetwork() != svcPerf {
			total += eps[model.ServiceKey(v)]
		}
	}
	want := s.sizes.services * s.sizes.endpoints
	if len(list.GetServices()) != s.sizes.services+1 || total != want {
		return fmt.Errorf("the servers hold %d services with %d endpoints (not counting %s's); the HCL declares %d with %d",
			len(list.GetServices()), total, svcPerf, s.sizes.services+1, want)
	}
	if n := eps[svcPerf+"/"+svcVIPName]; n != 1 {
		return fmt.Errorf("service %s/%s has %d endpoints, want 1 (%s)", svcPerf, svcVIPName, n, s.perf[0].ID())
	}
	env.Logf("servers: %d services, %d endpoints", len(list.GetServices()), total+1)
	return nil
}

// noteBridges notes how many flows and groups each host's br-int holds
// with the load.
func (s *svcBench) noteBridges(ctx context.Context, env *bench.Env) error {
	var parts []string
	for i := 1; i <= svcLabHosts; i++ {
		flows, err := brIntFlows(ctx, s.lab, i)
		if err != nil {
			return err
		}
		groups, err := s.lab.OVS(i).DumpGroups(ctx, "br-int")
		if err != nil {
			return err
		}
		parts = append(parts, fmt.Sprintf("%s %d flows, %d groups", lab.HostName(i), flows, len(groups)))
	}
	env.Note("br-int with the load", strings.Join(parts, "; "))
	return nil
}

// directEndpoints is the connections figure's pair, straight to the
// server's address; viaVIP the same through the VIP.
func (s *svcBench) directEndpoints() endpoints {
	return endpoints{serverNS: s.perf[0].NS, clientNS: s.perf[1].NS, serverIP: s.perf[0].IP}
}

// writeSvcHCL writes the suite's HCL into dir: base.hcl (cluster,
// networks, the VIP service), services.hcl, and the static workloads in
// files of svcFileWorkloads.
func writeSvcHCL(dir string, sz svcSizes) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string]string{"base.hcl": svcBaseHCL(), "services.hcl": svcServicesHCL(sz.services)}
	n := sz.services * sz.endpoints
	for first := 0; first < n; first += svcFileWorkloads {
		files[fmt.Sprintf("endpoints-%05d.hcl", first)] = svcWorkloadsHCL(first, min(first+svcFileWorkloads, n), sz.endpoints)
	}
	for f, text := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// svcBaseHCL is the lab's configuration: /18 host blocks (room for the
// static workloads), the networks, and the connections figure's service.
func svcBaseHCL() string {
	var b strings.Builder
	b.WriteString("cluster {\n  cidr        = \"10.128.0.0/14\"\n  host_prefix = 18\n}\n")
	for i := range svcLabNetworks {
		fmt.Fprintf(&b, "\nnetwork %q {}\n", svcNetwork(i))
	}
	fmt.Fprintf(&b, `
network %q {}

# The connections figure: a VIP over the server workload alone.
service %q {
  network = %q
  selector {
    match_labels = { perf = "srv" }
  }
  vip = %q
  port {
    port = %d
  }
}
`, svcPerf, svcVIPName, svcPerf, svcVIP, httpPort)
	return b.String()
}

// svcServicesHCL declares the load's n services: service i in network
// svcNetwork(i mod svcLabNetworks), selecting svc = svcName(i).
func svcServicesHCL(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "service %q {\n  network = %q\n  selector {\n    match_labels = { svc = %q }\n  }\n  port {\n    port        = 80\n    target_port = 8080\n  }\n}\n",
			svcName(i), svcNetwork(i%svcLabNetworks), svcName(i))
	}
	return b.String()
}

// svcWorkloadsHCL declares static workloads first..last-1: workload j is
// an endpoint of service j / per, on the hosts in turn.
func svcWorkloadsHCL(first, last, per int) string {
	var b strings.Builder
	for j := first; j < last; j++ {
		svc := j / per
		fmt.Fprintf(&b, "workload %q {\n  network = %q\n  node    = %q\n  labels  = { svc = %q }\n}\n",
			svcWorkload(j), svcNetwork(svc%svcLabNetworks), lab.HostName(j%svcLabHosts+1), svcName(svc))
	}
	return b.String()
}

func svcNetwork(i int) string  { return fmt.Sprintf("svc-%d", i) }
func svcName(i int) string     { return fmt.Sprintf("s-%04d", i) }
func svcWorkload(j int) string { return fmt.Sprintf("e-%05d", j) }
