package suites

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sdn-dev/sdn/bench"
	"github.com/sdn-dev/sdn/integration/lab"
)

// CNIAdd measures CNI ADD against the goals of issue 15: latency p50 and
// p99 and attachments per second, one ADD at a time and ten at once, on a
// host holding no workload and one holding cniLoad of them, each driving
// the real plugin binary (bin/sdn against a 1-host lab's sdnd) next to
// Debian's containernetworking-plugins `bridge` with `host-local` IPAM
// (/usr/lib/cni), executed the same way (same environment variables, a
// fresh namespace per container, configuration on stdin) in the same run.
// Goal: sdn's p99 within 2× of bridge's, and at least 20 attachments/s.
//
// A round of a variant ADDs cniRound[c] containers at concurrency c (1,
// then 10), timing each plugin run from its start to its exit, then DELs
// them (not timed), so every round starts from the same load. The load
// (the host's other workloads) is attached once, before the first round
// of the loaded batch, by the same plugin at concurrency 10.
func CNIAdd() bench.Suite {
	c := &cniBench{}
	return bench.Suite{
		Name: "cniadd",
		Description: "CNI ADD: latency p50/p99 and attachments/s at concurrency 1 and 10, with 0 and 3,000 workloads on the host; " +
			"sdn's plugin next to containernetworking-plugins bridge + host-local (goal: p99 within 2× of bridge, ≥ 20 attachments/s).",
		Setup:   c.setup,
		Batches: cniBatches(c),
	}
}

// cniBatches are the unloaded batch, and the loaded one only when
// SDNBENCH_CNI_LOADED=1: on OVS's userspace datapath the load of 3,000
// ports does not finish (docs/performance.md, "Attach"); the cniaddvm
// suite measures the loaded batch on the kernel datapath.
func cniBatches(c *cniBench) []bench.Batch {
	if os.Getenv("SDNBENCH_CNI_LOADED") != "1" {
		return []bench.Batch{c.batch(false)}
	}
	return []bench.Batch{c.batch(false), c.batch(true)}
}

// cniSizes are the suite's sizes (full and quick).
type cniSizes struct {
	load  int         // workloads on the host in the loaded batch
	round map[int]int // ADDs per round at each concurrency
}

var (
	fullCNISizes  = cniSizes{load: 3000, round: map[int]int{1: 40, 10: 100}}
	quickCNISizes = cniSizes{load: 100, round: map[int]int{1: 8, 10: 20}}
)

// cniConcurrency are the concurrencies measured, in order.
var cniConcurrency = []int{1, 10}

const cniNetwork = "bench"

// cniBench is what the suite's setup makes and its rounds share.
type cniBench struct {
	sizes  cniSizes
	bin    string
	lab    *lab.Lab
	sdn    *cniDriver
	bridge *cniDriver
	seq    int // containers made so far (names)
}

func (c *cniBench) setup(ctx context.Context, env *bench.Env) (func(), error) {
	if _, err := os.Stat(filepath.Join(bridgePluginDir, "bridge")); err != nil {
		return nil, fmt.Errorf("containernetworking-plugins' bridge is not installed (%v): apt-get install containernetworking-plugins (make deps)", err)
	}
	c.sizes = fullCNISizes
	if env.Quick {
		c.sizes = quickCNISizes
	}
	name := "cni" + runID()
	labDir := filepath.Join(env.Dir, "lab")
	teardown := func() {
		for _, d := range []*cniDriver{c.sdn, c.bridge} {
			if d != nil {
				d.close(env)
			}
		}
		downLab(env, c.lab, name, labDir)
	}
	var err error
	if c.bin, err = buildPolicyBinaries(ctx, env); err != nil {
		return teardown, err
	}
	hcl := filepath.Join(env.Dir, "hcl")
	if err := os.MkdirAll(hcl, 0o755); err != nil {
		return teardown, err
	}
	// /18 host blocks: room for the load and the rounds.
	base := "cluster {\n  cidr        = \"10.128.0.0/14\"\n  host_prefix = 18\n}\n\nnetwork \"" + cniNetwork + "\" {}\n"
	if err := os.WriteFile(filepath.Join(hcl, "base.hcl"), []byte(base), 0o644); err != nil {
		return teardown, err
	}
	// The raft state is seeded before the agent starts, as the services
	// suite does: the host's block is then a /18.
	start := time.Now()
	cfg := lab.Config{Name: name, Hosts: 1, Dir: labDir, Bin: c.bin, Examples: hcl, UnderlayOnly: true}
	if c.lab, err = lab.Up(ctx, cfg); err != nil {
		return teardown, fmt.Errorf("lab up (underlay): %w", err)
	}
	if err := seedServer(ctx, c.lab, hcl, nil); err != nil {
		return teardown, err
	}
	cfg.UnderlayOnly = false
	if c.lab, err = lab.Up(ctx, cfg); err != nil {
		return teardown, fmt.Errorf("lab up: %w", err)
	}
	env.Logf("lab %s up in %v", name, time.Since(start).Round(time.Millisecond))
	if c.sdn, err = newSDNDriver(c.lab, c.bin); err != nil {
		return teardown, err
	}
	if c.bridge, err = newBridgeDriver(c.lab, env.Dir); err != nil {
		return teardown, err
	}
	env.Note("lab", fmt.Sprintf("lab %s: 1 host (OVS netdev datapath; one sdnd: server and agent), cluster 10.128.0.0/14 with /18 host blocks, network %s; "+
		"sdn: bin/sdn with cniVersion 1.0.0, network %s, the host's CNI socket; bridge: %s/bridge (bridges cni-brK of 1,000 containers each, as a Linux bridge holds at most 1,024 ports; isGateway, host-local 10.(200+K).0.0/16) "+
		"run from a thread in its own host namespace; both: CNI_IFNAME=eth0, one fresh namespace per container, made before the clock starts",
		name, cniNetwork, cniNetwork, bridgePluginDir))
	env.Note("sizes", fmt.Sprintf("load %d workloads; per round %d ADDs at concurrency 1, %d at concurrency 10 (then DEL, untimed)",
		c.sizes.load, c.sizes.round[1], c.sizes.round[10]))
	return teardown, nil
}

// cniFigure names a figure: what ("ADD p50"), concurrency and load.
func cniFigure(what string, conc int, loaded bool) string {
	load := "no other workload"
	if loaded {
		load = "3,000 workloads on the host"
	}
	return fmt.Sprintf("%s, concurrency %d, %s", what, conc, load)
}

// cniFigures are the figures of one load level (cniadd's and
// cniaddvm's), each named by name: latency p50 and p99 and attachments/s
// at each concurrency, sdn against bridge.
func cniFigures(name func(what string, conc int) string) []bench.Figure {
	var figs []bench.Figure
	for _, conc := range cniConcurrency {
		figs = append(figs,
			bench.Figure{Name: name("ADD latency p50", conc), Unit: "ms", Ratios: [][2]string{{"sdn", "bridge"}}},
			bench.Figure{Name: name("ADD latency p99", conc), Unit: "ms", Ratios: [][2]string{{"sdn", "bridge"}}},
			bench.Figure{Name: name("attachments/s", conc), Unit: "ADD/s", HigherIsBetter: true, Ratios: [][2]string{{"sdn", "bridge"}}},
		)
	}
	return figs
}

// batch is the figures of one load level, sdn and bridge measured in turn.
func (c *cniBench) batch(loaded bool) bench.Batch {
	figs := cniFigures(func(what string, conc int) string { return cniFigure(what, conc, loaded) })
	return bench.Batch{Figures: figs, Variants: []bench.BatchVariant{
		{Name: "sdn", Run: func(ctx context.Context, env *bench.Env) (map[string]float64, error) {
			return c.round(ctx, env, c.sdn, loaded)
		}},
		{Name: "bridge", Run: func(ctx context.Context, env *bench.Env) (map[string]float64, error) {
			return c.round(ctx, env, c.bridge, loaded)
		}},
	}}
}

// round measures one driver at every concurrency on the load level asked.
func (c *cniBench) round(ctx context.Context, env *bench.Env, d *cniDriver, loaded bool) (map[string]float64, error) {
	if loaded && len(d.load) == 0 {
		start := time.Now()
		ids := c.names(d, c.sizes.load)
		r, err := d.addAll(ctx, ids, 10)
		d.load = ids
		if err != nil {
			return nil, fmt.Errorf("%s: load of %d workloads: %w%s", d.name, c.sizes.load, err, c.keepLog(d))
		}
		env.Logf("%s: %d load workloads attached in %v (%.1f ADD/s, p50 %.1f ms, p99 %.1f ms)", d.name, len(ids),
			time.Since(start).Round(time.Millisecond), r.Throughput(), r.Percentile(50), r.Percentile(99))
		env.Note(d.name+" load", fmt.Sprintf("%d ADDs at concurrency 10: %.1f ADD/s, p50 %.1f ms, p99 %.1f ms", len(ids), r.Throughput(), r.Percentile(50), r.Percentile(99)))
	}
	out := map[string]float64{}
	for _, conc := range cniConcurrency {
		ids := c.names(d, c.sizes.round[conc])
		r, err := d.addAll(ctx, ids, conc)
		if derr := d.delAll(ctx, ids, 10); err == nil && derr != nil {
			err = derr
		}
		if err != nil {
			return nil, fmt.Errorf("%s at concurrency %d: %w%s", d.name, conc, err, c.keepLog(d))
		}
		out[cniFigure("ADD latency p50", conc, loaded)] = r.Percentile(50)
		out[cniFigure("ADD latency p99", conc, loaded)] = r.Percentile(99)
		out[cniFigure("attachments/s", conc, loaded)] = r.Throughput()
		env.Logf("%s, concurrency %d, loaded %v: %d ADDs, p50 %.1f ms, p99 %.1f ms, %.1f ADD/s", d.name, conc, loaded, len(ids), r.Percentile(50), r.Percentile(99), r.Throughput())
		if d == c.sdn {
			c.noteStages(env, conc, loaded)
		}
	}
	return out, nil
}

// keepLog copies the agent's log of a failed sdn round out of the run's
// directory, which is removed afterwards, and says where it is.
func (c *cniBench) keepLog(d *cniDriver) string {
	if d != c.sdn {
		return ""
	}
	raw, err := os.ReadFile(filepath.Join(c.lab.HostDir(1), "sdnd.log"))
	if err != nil {
		return ""
	}
	f, err := os.CreateTemp("", "sdnbench-cniadd-sdnd-*.log")
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Write(raw); err != nil {
		return ""
	}
	return " (the agent's log: " + f.Name() + ")"
}

// noteStages logs, and notes in the report, the agent's stage split of
// the last ADDs (cnisrv's "workload added" log line).
func (c *cniBench) noteStages(env *bench.Env, conc int, loaded bool) {
	raw, err := os.ReadFile(filepath.Join(c.lab.HostDir(1), "sdnd.log"))
	if err != nil {
		env.Logf("stages: %v", err)
		return
	}
	var last []string
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.Contains(line, "workload added") {
			if i := strings.Index(line, "took="); i >= 0 {
				last = append(last, line[i:])
			}
		}
	}
	if len(last) > 3 {
		last = last[len(last)-3:]
	}
	for _, l := range last {
		env.Logf("sdn ADD, concurrency %d, loaded %v: %s", conc, loaded, l)
	}
	if len(last) > 0 {
		env.Note(fmt.Sprintf("sdn ADD stages, concurrency %d, loaded %v (the agent's last)", conc, loaded), last[len(last)-1])
	}
}

// names returns n new container names for d.
func (c *cniBench) names(d *cniDriver, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		c.seq++
		ids[i] = fmt.Sprintf("%s%05d", d.prefix, c.seq)
	}
	return ids
}
