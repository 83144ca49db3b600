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

// The memory figures: the lab grown to sizes.memWorkloads static workloads
// and sizes.memPolicies background policies (HCL applied once, in the
// first round), then each round reads every sdnd's RSS and peak RSS. sdnd
// exposes no Go heap figure (no pprof or expvar endpoint), so RSS is what
// is reported.

// polMemReads are the figures of each sdnd process: name part, status key.
var polMemReads = []struct{ name, key string }{
	{"RSS", "VmRSS"},
	{"peak RSS", "VmHWM"},
}

func polMemFigure(what string, host int) string {
	role := "agent"
	if host == 1 {
		role = "server+agent"
	}
	return fmt.Sprintf("sdnd %s with the policy load, %s (%s)", what, lab.HostName(host), role)
}

func polMemFigures() []bench.Figure {
	var fs []bench.Figure
	for _, r := range polMemReads {
		for h := 1; h <= polLabHosts; h++ {
			fs = append(fs, bench.Figure{Name: polMemFigure(r.name, h), Unit: "MiB"})
		}
	}
	return fs
}

// memRound grows the lab (first round only) and reads the processes.
func (p *policyBench) memRound(ctx context.Context, env *bench.Env) (map[string]float64, error) {
	if !p.memGrown {
		if err := p.grow(ctx, env); err != nil {
			return nil, err
		}
		p.memGrown = true
	}
	vals := map[string]float64{}
	for h := 1; h <= polLabHosts; h++ {
		pid := p.lab.SDNDPID(h)
		if pid == 0 {
			return nil, fmt.Errorf("%s's sdnd does not run", lab.HostName(h))
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return nil, fmt.Errorf("%s's sdnd: %w", lab.HostName(h), err)
		}
		for _, r := range polMemReads {
			kb, err := parseStatusKB(b, r.key)
			if err != nil {
				return nil, err
			}
			vals[polMemFigure(r.name, h)] = float64(kb) / 1024
		}
	}
	return vals, nil
}

// grow applies the static workloads and background policies the lab lacks
// for the memory load, in files of at most 5,000 workloads, and waits until
// both hosts realized them.
func (p *policyBench) grow(ctx context.Context, env *bench.Env) error {
	dir := filepath.Join(env.Dir, "hcl-memory")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	start := time.Now()
	for first := p.sizes.workloads; first < p.sizes.memWorkloads; first += 5000 {
		f := filepath.Join(dir, fmt.Sprintf("static-%05d.hcl", first))
		if err := os.WriteFile(f, []byte(polStaticHCL(first, min(first+5000, p.sizes.memWorkloads))), 0o644); err != nil {
			return err
		}
		env.Logf("memory load: applying %s", filepath.Base(f))
		if err := p.sdnctlApply("-f", f); err != nil {
			return err
		}
	}
	f := filepath.Join(dir, "background.hcl")
	if err := os.WriteFile(f, []byte(polBackgroundHCL(p.sizes.policies, p.sizes.memPolicies)), 0o644); err != nil {
		return err
	}
	if err := p.sdnctlApply("-f", f); err != nil {
		return err
	}
	took := time.Since(start)
	var flows []string
	for i := 1; i <= polLabHosts; i++ {
		n, err := brIntFlows(ctx, p.lab, i)
		if err != nil {
			return err
		}
		flows = append(flows, fmt.Sprintf("%s %d", lab.HostName(i), n))
	}
	rules := "without"
	if p.rulesOn {
		rules = "with"
	}
	env.Note("memory load", fmt.Sprintf("the lab grown to %d static workloads and %d background policies (quick: 1,000 and 100; full: 10,000 and 1,000), %s the rules figures' %d rules, by `sdnctl apply --wait` of HCL files of at most 5,000 workloads: applied and realized in %v; br-int flows then: %s. "+
		"Figures: VmRSS and VmHWM of each sdnd (/proc/PID/status), read every round after that (peak RSS includes the lab's earlier work). sdnd exposes no Go heap figure, so none is reported",
		p.sizes.memWorkloads, p.sizes.memPolicies, rules, p.sizes.rules, took.Round(time.Millisecond), strings.Join(flows, ", ")))
	return nil
}
