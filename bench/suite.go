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
