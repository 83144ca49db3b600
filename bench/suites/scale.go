package suites

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/sdn-dev/sdn/bench"
)

// The scale suite's figures (ScaleResult.Figures keys).
const (
	scaleFigRegistration      = "registration: every host registered with its first snapshot"
	scaleFigRestRSS           = "server RSS at rest (the largest server)"
	scaleFigRestCPU           = "server CPU at rest (the busiest server)"
	scaleFigPeakRSS           = "server peak RSS over the variant (the largest server)"
	scaleFigSingleP50         = "single attach, response to its host receiving it: p50"
	scaleFigSingleP99         = "single attach, response to its host receiving it: p99"
	scaleFigSingleMax         = "single attach, response to its host receiving it: max"
	scaleFigSingleOthers      = "single attach: other hosts receiving anything for it (most of any attach)"
	scaleFigSingleRealizedP50 = "single attach, response to WaitRealized done: p50"
	scaleFigSingleRealizedMax = "single attach, response to WaitRealized done: max"
	scaleFigNetworkP50        = "new network, Apply call to each host receiving it: p50 over hosts"
	scaleFigNetworkP99        = "new network, Apply call to each host receiving it: p99 over hosts"
	scaleFigNetworkMax        = "new network, Apply call to each host receiving it: max over hosts"
	scaleFigNetworkRealized   = "new network, Apply call to WaitRealized done"
	scaleFigBurstP50          = "burst of attaches: attach latency p50"
	scaleFigBurstP99          = "burst of attaches: attach latency p99"
	scaleFigBurstAll          = "burst of attaches: first attach to every host holding its workloads"
	scaleFigBurstRealized     = "burst of attaches: first attach to WaitRealized done"
	scaleFigStorm             = "reconnect storm: leader killed to every host watching again"
	scaleFigStormErrors       = "reconnect storm: agent errors"
	scaleFigWrong             = "hosts whose state differs from the leader's (Verify)"
	scaleFigErrors            = "agent errors over the variant (storm included)"
)

// scaleFigures lists the figures with their units, in report order; the
// storm's are measured with more than one server only.
var scaleFigures = []bench.Figure{
	{Name: scaleFigRegistration, Unit: "s"},
	{Name: scaleFigRestRSS, Unit: "MiB"},
	{Name: scaleFigRestCPU, Unit: "% of a core"},
	{Name: scaleFigPeakRSS, Unit: "MiB"},
	{Name: scaleFigSingleP50, Unit: "ms"},
	{Name: scaleFigSingleP99, Unit: "ms"},
	{Name: scaleFigSingleMax, Unit: "ms"},
	{Name: scaleFigSingleOthers, Unit: "hosts"},
	{Name: scaleFigSingleRealizedP50, Unit: "ms"},
	{Name: scaleFigSingleRealizedMax, Unit: "ms"},
	{Name: scaleFigNetworkP50, Unit: "ms"},
	{Name: scaleFigNetworkP99, Unit: "ms"},
	{Name: scaleFigNetworkMax, Unit: "ms"},
	{Name: scaleFigNetworkRealized, Unit: "ms"},
	{Name: scaleFigBurstP50, Unit: "ms"},
	{Name: scaleFigBurstP99, Unit: "ms"},
	{Name: scaleFigBurstAll, Unit: "s"},
	{Name: scaleFigBurstRealized, Unit: "s"},
	{Name: scaleFigStorm, Unit: "s"},
	{Name: scaleFigStormErrors, Unit: "errors"},
	{Name: scaleFigWrong, Unit: "hosts"},
	{Name: scaleFigErrors, Unit: "errors"},
}

// scaleStormFigures are measured by variants with more than one server.
var scaleStormFigures = []string{scaleFigStorm, scaleFigStormErrors}

// scaleSize is one number of hosts and how many rounds measure it: a
// variant at 5,000 hosts takes minutes and gigabytes, so it runs once.
type scaleSize struct {
	hosts, rounds int
}

// scaleSizes are the numbers of hosts, each with how many rounds measure
// it (0: every round): a variant at 5,000 hosts takes minutes and
// gigabytes, so it runs once. Quick runs measure 100 hosts in their first
// round only.
var (
	scaleSizes      = []scaleSize{{100, 0}, {1000, 2}, {5000, 1}}
	scaleServerSets = []int{1, 3}
)

// Scale measures the control plane with thousands of agents: simulated
// hosts (bench/scalesim: one gRPC connection each, registering, watching,
// heartbeating and reporting as sdnd's agent does) against real sdnd
// servers, one and three, each variant from fresh servers (see
// bench/README.md, "scale").
func Scale() bench.Suite {
	s := &scaleSuite{}
	b := bench.Batch{Figures: scaleFigures}
	for _, sz := range scaleSizes {
		for _, n := range scaleServerSets {
			v := bench.BatchVariant{Name: scaleVariantName(sz.hosts, n), Run: s.variant(sz, n)}
			if n < 2 {
				v.Figures = withoutNames(scaleFigures, scaleStormFigures)
			}
			b.Variants = append(b.Variants, v)
		}
	}
	return bench.Suite{
		Name: "scale",
		Description: "N simulated agents (100, 1,000, 5,000; real gRPC, one connection each) against 1 and 3 real sdnd servers: registration, " +
			"server memory and CPU, fan-out of single attaches and of a change every host needs, a burst of 1,000 attaches, the reconnect storm after killing the leader, every host's state verified.",
		Setup:   s.setup,
		Batches: []bench.Batch{b},
	}
}

// scaleVariantName names a variant, e.g. "1000 hosts, 3 servers".
func scaleVariantName(hosts, servers int) string {
	name := fmt.Sprintf("%d hosts, %d server", hosts, servers)
	if servers > 1 {
		name += "s"
	}
	return name
}

func withoutNames(figs []bench.Figure, drop []string) []string {
	var out []string
	for _, f := range figs {
		if !slices.Contains(drop, f.Name) {
			out = append(out, f.Name)
		}
	}
	return out
}

// scaleSuite is what the variants share: the sdnd binary.
type scaleSuite struct {
	bin string
}

func (s *scaleSuite) setup(ctx context.Context, env *bench.Env) (func(), error) {
	s.bin = filepath.Join(env.Dir, "sdnd")
	env.Logf("building sdnd into %s", s.bin)
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", s.bin, "github.com/sdn-dev/sdn/sdnd").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build sdnd: %v: %s", err, out)
	}
	env.Note("scale", "simulated hosts in the bench process (bench/scalesim), each with its own gRPC connection, heartbeat every 5 s, "+
		"report per burst of events and every 15 s, filtered watch asked for; servers: `sdnd --dev`, or 3 `sdnd --server --peers` (plaintext, loopback), fresh per variant; "+
		"cluster 10.0.0.0/8 in /22 blocks; 20 single attaches, 1,000 attaches from 32 clients; rounds: 100 hosts every round, 1,000 the first 2, 5,000 the first only")
	return nil, nil
}

// variant returns the Run of one variant: it measures in its first
// sz.rounds rounds (all when 0) and nothing later; quick runs measure 100
// hosts in the first round only, with 3 s at rest.
func (s *scaleSuite) variant(sz scaleSize, servers int) func(context.Context, *bench.Env) (map[string]float64, error) {
	round := 0
	return func(ctx context.Context, env *bench.Env) (map[string]float64, error) {
		round++
		quick := env.Quick
		if quick && (sz.hosts > 100 || round > 1) || sz.rounds > 0 && round > sz.rounds {
			return map[string]float64{}, nil
		}
		o := ScaleOptions{Hosts: sz.hosts, Servers: servers, SDND: s.bin, Logf: env.Logf,
			Dir: filepath.Join(env.Dir, fmt.Sprintf("h%d-s%d-r%d", sz.hosts, servers, round))}
		if quick {
			o.Rest = 3 * time.Second
		}
		res, err := RunScale(ctx, o)
		name := scaleVariantName(sz.hosts, servers)
		for _, n := range res.Notes {
			env.Note(fmt.Sprintf("%s, round %d: %s", name, round, n.Key), n.Value)
		}
		if err != nil {
			env.Note(fmt.Sprintf("%s, round %d: FAILED", name, round), fmt.Sprintf("%v; measured before: %v", err, res.Figures))
		}
		return res.Figures, err
	}
}

// ScaleFigures returns the scale figures (names and units) in report
// order, for printing a ScaleResult.
func ScaleFigures() []bench.Figure { return slices.Clone(scaleFigures) }
