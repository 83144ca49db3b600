package bench

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
)

// Suite is a group of figures sharing one setup (e.g. an OVS instance, a
// lab). Its Setup runs once before the first figure and its teardown once
// after the last, also when a figure failed or the run was interrupted.
type Suite struct {
	Name        string // short, lowercase: what `-suite` and SUITE= take
	Description string // one line, for the report
	// Setup prepares what the variants share (nil: nothing to prepare). The
	// teardown it returns (nil: nothing) must not depend on ctx still being
	// live: it also runs after an interrupt.
	Setup   func(ctx context.Context, env *Env) (teardown func(), err error)
	Figures []Figure
	// Batches are figures measured together (see Batch), run after
	// Figures; the report lists their figures after Figures'.
	Batches []Batch
}

// Batch is several figures measured together: each round runs every one
// of its variants once, in order (A B C, then A B C again, as for a
// Figure), and one Run returns a value for each figure that variant
// measures. It is for variants that are costly to switch to (stop daemons,
// replace a flow table) or whose one measurement yields several figures
// (the bytes and the CPU time of one transfer). Ratios are taken round by
// round as for a Figure.
type Batch struct {
	// Figures have no Variants of their own: they are the batch's
	// variants that name them. Their Ratios name batch variants.
	Figures  []Figure
	Variants []BatchVariant
}

// BatchVariant is one way of producing some or all of a batch's figures.
type BatchVariant struct {
	Name string
	// Figures names the batch figures it measures; empty means all.
	Figures []string
	// Run measures once and returns one value per figure it measured,
	// keyed by figure name. A figure it leaves out was not measured in
	// that round (its "runs" in the report says so; e.g. a costly figure
	// measured in the first round only of a quick run); a figure it does
	// not measure is an error. An error fails the variant in every figure
	// it measures, and it is not run again.
	Run func(ctx context.Context, env *Env) (map[string]float64, error)
}

// measures reports whether v measures the figure called name.
func (v BatchVariant) measures(name string) bool {
	if len(v.Figures) == 0 {
		return true
	}
	for _, f := range v.Figures {
		if f == name {
			return true
		}
	}
	return false
}

// Figure is one measured quantity, e.g. "flows/s installing 10,000 flows".
type Figure struct {
	Name           string
	Unit           string // "flows/s", "ms", "Gbit/s", "MiB"
	HigherIsBetter bool
	Variants       []Variant
	// Ratios lists pairs of variant names {A, B}; the report gives A/B of
	// each round (the A and B measured one after the other).
	Ratios [][2]string
	// MinRuns raises the number of rounds of this figure above the run's
	// (-runs, QUICK) when a figure needs more samples to mean anything,
	// e.g. "failover time over at least 10 kills". 0: the run's. QUICK
	// runs ignore it (a smoke test).
	MinRuns int
}

// Variant is one way of producing a figure. Run performs one measurement
// and returns its value in the figure's unit; it does its own timing, so
// whatever it must prepare before each measurement (an empty bridge) stays
// out of the figure.
type Variant struct {
	Name string
	Run  func(ctx context.Context, env *Env) (float64, error)
}

// Env is what the runner hands to a suite's Setup and variants.
type Env struct {
	// Quick asks for smaller sizes (QUICK=1, CI's smoke test): the whole
	// run must finish in minutes and its figures are not judged.
	Quick bool
	// Runs is how many times each variant of each figure runs.
	Runs int
	// Dir is a scratch directory for this suite, removed after it.
	Dir string

	log   io.Writer
	mu    sync.Mutex
	notes map[string]string
}

// Logf writes a progress line to stderr (prefixed with the suite's name).
func (e *Env) Logf(format string, args ...any) {
	if e.log != nil {
		fmt.Fprintf(e.log, format+"\n", args...)
	}
}

// Note records a parameter of the suite in the report, e.g. Note("flows",
// "10,004 (1,000 workloads, 4,000 remote hosts)"), so that two reports
// can be compared knowing what was measured.
func (e *Env) Note(key, value string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.notes == nil {
		e.notes = map[string]string{}
	}
	e.notes[key] = value
}

func (e *Env) sortedNotes() []Note {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ns []Note
	for k, v := range e.notes {
		ns = append(ns, Note{Key: k, Value: v})
	}
	sort.Slice(ns, func(i, j int) bool { return ns[i].Key < ns[j].Key })
	return ns
}

// Validate checks what the compiler cannot: unique, non-empty suite,
// figure and variant names, a Run for every variant, and ratios naming
// variants of their figure.
func Validate(suites []Suite) error {
	seen := map[string]bool{}
	for _, s := range suites {
		if s.Name == "" || seen[s.Name] {
			return fmt.Errorf("suite name %q is empty or used twice", s.Name)
		}
		seen[s.Name] = true
		figs := map[string]bool{}
		for _, b := range s.Batches {
			if err := validateBatch(s.Name, b, figs); err != nil {
				return err
			}
		}
		for _, f := range s.Figures {
			if f.Name == "" || figs[f.Name] {
				return fmt.Errorf("suite %s: figure name %q is empty or used twice", s.Name, f.Name)
			}
			figs[f.Name] = true
			if len(f.Variants) == 0 {
				return fmt.Errorf("suite %s, figure %q: no variants", s.Name, f.Name)
			}
			vs := map[string]bool{}
			for _, v := range f.Variants {
				if v.Name == "" || vs[v.Name] || v.Run == nil {
					return fmt.Errorf("suite %s, figure %q: variant %q is unnamed, has no Run, or is listed twice", s.Name, f.Name, v.Name)
				}
				vs[v.Name] = true
			}
			for _, r := range f.Ratios {
				if !vs[r[0]] || !vs[r[1]] || r[0] == r[1] {
					return fmt.Errorf("suite %s, figure %q: ratio %s/%s must name two different variants of the figure", s.Name, f.Name, r[0], r[1])
				}
			}
		}
	}
	return nil
}

// validateBatch checks one batch of suite; figs holds the suite's figure
// names seen so far and gets the batch's.
func validateBatch(suite string, b Batch, figs map[string]bool) error {
	if len(b.Figures) == 0 || len(b.Variants) == 0 {
		return fmt.Errorf("suite %s: a batch needs figures and variants", suite)
	}
	mine := map[string]bool{}
	for _, f := range b.Figures {
		if f.Name == "" || figs[f.Name] {
			return fmt.Errorf("suite %s: figure name %q is empty or used twice", suite, f.Name)
		}
		if len(f.Variants) > 0 {
			return fmt.Errorf("suite %s, figure %q: a batch figure takes its variants from the batch, not Variants", suite, f.Name)
		}
		figs[f.Name], mine[f.Name] = true, true
	}
	vs := map[string]BatchVariant{}
	for _, v := range b.Variants {
		if _, dup := vs[v.Name]; v.Name == "" || dup || v.Run == nil {
			return fmt.Errorf("suite %s: batch variant %q is unnamed, has no Run, or is listed twice", suite, v.Name)
		}
		for _, f := range v.Figures {
			if !mine[f] {
				return fmt.Errorf("suite %s: batch variant %q names figure %q, which is not in its batch", suite, v.Name, f)
			}
		}
		vs[v.Name] = v
	}
	for _, f := range b.Figures {
		n := 0
		for _, v := range b.Variants {
			if v.measures(f.Name) {
				n++
			}
		}
		if n == 0 {
			return fmt.Errorf("suite %s, figure %q: no batch variant measures it", suite, f.Name)
		}
		for _, r := range f.Ratios {
			a, aok := vs[r[0]]
			c, cok := vs[r[1]]
			if !aok || !cok || r[0] == r[1] || !a.measures(f.Name) || !c.measures(f.Name) {
				return fmt.Errorf("suite %s, figure %q: ratio %s/%s must name two different batch variants that measure the figure", suite, f.Name, r[0], r[1])
			}
		}
	}
	return nil
}

// Select returns the suites named in names (all when names is empty), in
// the order of suites, or an error naming the unknown ones and the known.
func Select(suites []Suite, names []string) ([]Suite, error) {
	if len(names) == 0 {
		return suites, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []Suite
	var known []string
	for _, s := range suites {
		known = append(known, s.Name)
		if want[s.Name] {
			out = append(out, s)
			delete(want, s.Name)
		}
	}
	if len(want) > 0 {
		var unknown []string
		for n := range want {
			unknown = append(unknown, n)
		}
		sort.Strings(unknown)
		return nil, fmt.Errorf("unknown suite(s) %v; known: %v", unknown, known)
	}
	return out, nil
}
