package suites

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/sdn-dev/sdn/bench"
	"github.com/sdn-dev/sdn/bench/cnidrive"
)

// batch is the figures of one load level, sdn and bridge measured in turn.
func (c *cniVMBench) batch(loaded bool) bench.Batch {
	figs := cniFigures(func(what string, conc int) string { return c.figure(what, conc, loaded) })
	return bench.Batch{Figures: figs, Variants: []bench.BatchVariant{
		{Name: "sdn", Run: func(ctx context.Context, env *bench.Env) (map[string]float64, error) {
			return c.round(ctx, env, c.sdn, loaded)
		}},
		{Name: "bridge", Run: func(ctx context.Context, env *bench.Env) (map[string]float64, error) {
			return c.round(ctx, env, c.bridge, loaded)
		}},
	}}
}

// round measures one driver at every concurrency on the load level
// asked, as cniadd's round does, each batch of ADDs run by cnidrive in
// the VM.
func (c *cniVMBench) round(ctx context.Context, env *bench.Env, d *cniVMDriver, loaded bool) (map[string]float64, error) {
	if loaded && d.load == 0 {
		if err := c.attachLoad(ctx, env, d); err != nil {
			return nil, err
		}
	}
	out := map[string]float64{}
	for _, conc := range cniConcurrency {
		r, err := c.drive(ctx, d, c.sizes.round[conc], conc, true)
		if err != nil {
			return nil, fmt.Errorf("%s at concurrency %d: %w%s", d.name, conc, err, c.keepLog(d))
		}
		out[c.figure("ADD latency p50", conc, loaded)] = r.Percentile(50)
		out[c.figure("ADD latency p99", conc, loaded)] = r.Percentile(99)
		out[c.figure("attachments/s", conc, loaded)] = r.Throughput()
		env.Logf("%s, concurrency %d, loaded %v: %d ADDs, p50 %.1f ms, p99 %.1f ms, %.1f ADD/s", d.name, conc, loaded, r.Ops, r.Percentile(50), r.Percentile(99), r.Throughput())
		if d == c.sdn {
			c.noteStages(env, conc, loaded)
		}
	}
	return out, nil
}

// cniVMLoadChunk is how many load containers one cnidrive run attaches:
// the suite logs its progress between runs.
const cniVMLoadChunk = 250

// attachLoad attaches the host's load with d at concurrency 10, in runs of
// cniVMLoadChunk, logging the progress after each.
func (c *cniVMBench) attachLoad(ctx context.Context, env *bench.Env, d *cniVMDriver) error {
	start := time.Now()
	var all cnidrive.Result
	for d.load < c.sizes.load {
		n := min(cniVMLoadChunk, c.sizes.load-d.load)
		r, err := c.drive(ctx, d, n, 10, false)
		if err != nil {
			return fmt.Errorf("%s: load of %d workloads, after %d: %w%s", d.name, c.sizes.load, d.load, err, c.keepLog(d))
		}
		d.load += n
		all = all.Join(r)
		env.Logf("%s load: %d/%d attached, last %d at %.1f ADD/s (p50 %.0f ms, p99 %.0f ms), %v elapsed",
			d.name, d.load, c.sizes.load, n, r.Throughput(), r.Percentile(50), r.Percentile(99), time.Since(start).Round(time.Second))
	}
	mem, _ := c.c.Run(1, "free -m | awk 'NR == 2 {print $3 \" MiB used, \" $7 \" MiB available\"}'; ovs-dpctl show | grep -c 'port '")
	env.Note(d.name+" load", fmt.Sprintf("%d ADDs at concurrency 10 in %v: %.1f ADD/s, p50 %.1f ms, p99 %.1f ms; the VM afterwards: %s",
		all.Ops, time.Since(start).Round(time.Second), all.Throughput(), all.Percentile(50), all.Percentile(99), vmLoadState(mem)))
	return nil
}

// vmLoadState reads attachLoad's `free` and port count lines.
func vmLoadState(out string) string {
	f := strings.Split(strings.TrimSpace(out), "\n")
	if len(f) != 2 {
		return strings.TrimSpace(out)
	}
	return f[0] + ", " + f[1] + " kernel datapath ports"
}

// drive runs n new containers of d through cnidrive in the VM at
// concurrency conc (then DELs them when del) and returns its result.
func (c *cniVMBench) drive(ctx context.Context, d *cniVMDriver, n, conc int, del bool) (cnidrive.Result, error) {
	if err := ctx.Err(); err != nil {
		return cnidrive.Result{}, err
	}
	cmd := cniVMDriveCommand(d, c.seq+1, n, conc, del)
	c.seq += n
	out, err := c.c.Run(1, cmd)
	if err != nil {
		return cnidrive.Result{}, err
	}
	return cnidrive.ParseResult([]byte(out))
}

// cniVMDriveCommand is the cnidrive command line of n containers of d
// numbered from first.
func cniVMDriveCommand(d *cniVMDriver, first, n, conc int, del bool) string {
	cmd := fmt.Sprintf("%s %s -prefix %s -first %d -n %d -c %d", cniVMDrive, d.flags, d.prefix, first, n, conc)
	if del {
		cmd += " -del"
	}
	return cmd
}

// portsAdded matches a realize's result that added ports.
var portsAdded = regexp.MustCompile(`ports: [1-9][0-9]* added`)

// cniVMJournal is the agent's log in the VM (sdnd.service's journal).
const cniVMJournal = "journalctl -u sdnd.service -o cat --no-pager"

// noteStages logs, and notes in the report, the agent's stage split of
// the last ADDs (cnisrv's "workload added" log line).
func (c *cniVMBench) noteStages(env *bench.Env, conc int, loaded bool) {
	out, err := c.c.Run(1, cniVMJournal+" -n 5000 | grep -E 'workload added|realized desired state' | tail -n 300")
	if err != nil {
		env.Logf("stages: %v", err)
		return
	}
	last := lastStages(out, 3)
	for _, l := range last {
		env.Logf("sdn ADD, concurrency %d, loaded %v: %s", conc, loaded, l)
	}
	if len(last) > 0 {
		env.Note(fmt.Sprintf("sdn ADD stages, concurrency %d, loaded %v (the agent's last)", conc, loaded), last[len(last)-1])
	}
	if r := lastRealize(out); r != "" {
		env.Note(fmt.Sprintf("sdn realize, concurrency %d, loaded %v (the agent's last)", conc, loaded), r)
	}
}

// lastRealize returns the result of the last "realized desired state"
// line of an agent's log that added ports (an ADD's, not the round's
// DELs'): workloads, flows, ports, where the time went.
func lastRealize(log string) string {
	var last string
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "realized desired state") || !portsAdded.MatchString(line) {
			continue
		}
		if i := strings.Index(line, "result="); i >= 0 {
			last = strings.Trim(strings.TrimSpace(line[i+len("result="):]), `"`)
		}
	}
	return last
}

// lastStages returns the "took=… stages=…" part of the last n "workload
// added" lines of an agent's log.
func lastStages(log string, n int) []string {
	var last []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "workload added") {
			if i := strings.Index(line, "took="); i >= 0 {
				last = append(last, strings.TrimSpace(line[i:]))
			}
		}
	}
	if len(last) > n {
		last = last[len(last)-n:]
	}
	return last
}

// keepLog saves the VM's agent log of a failed sdn run on this machine
// (the VM is gone afterwards) and says where it is.
func (c *cniVMBench) keepLog(d *cniVMDriver) string {
	if d != c.sdn {
		return ""
	}
	out, err := c.c.Run(1, cniVMJournal)
	if err != nil {
		return ""
	}
	f, err := os.CreateTemp("", "sdnbench-cniaddvm-sdnd-*.log")
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.WriteString(out); err != nil {
		return ""
	}
	return " (the agent's log: " + f.Name() + ")"
}
