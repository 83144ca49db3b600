package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// Report is everything one `make bench` measured. It is what the JSON file
// holds; Markdown renders it for people.
type Report struct {
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished"`
	Quick    bool          `json:"quick"`
	Runs     int           `json:"runs"`
	Machine  Machine       `json:"machine"`
	Suites   []SuiteReport `json:"suites"`
}

// SuiteReport is one suite's results. Error is set when its setup failed
// (then it has no figures) or the run was interrupted.
type SuiteReport struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Notes       []Note         `json:"notes,omitempty"`
	Error       string         `json:"error,omitempty"`
	Figures     []FigureReport `json:"figures"`
}

// Note is a parameter a suite recorded (Env.Note).
type Note struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// FigureReport is one figure: every variant's samples and summary, and the
// pairwise ratios.
type FigureReport struct {
	Name           string          `json:"name"`
	Unit           string          `json:"unit"`
	HigherIsBetter bool            `json:"higher_is_better"`
	Variants       []VariantReport `json:"variants"`
	Ratios         []RatioReport   `json:"ratios,omitempty"`
}

// VariantReport is one variant's measurements. Error is the first failure;
// a variant that failed is not run again, so Samples holds the rounds
// before it.
type VariantReport struct {
	Name    string   `json:"name"`
	Samples []Sample `json:"samples"`
	Summary Summary  `json:"summary"`
	Error   string   `json:"error,omitempty"`
}

// RatioReport is A/B taken round by round (see PairRatios).
type RatioReport struct {
	A       string    `json:"a"`
	B       string    `json:"b"`
	Values  []float64 `json:"values"`
	Summary Summary   `json:"summary"`
}

// Failed reports whether anything in the report failed.
func (r *Report) Failed() bool { return len(r.Errors()) > 0 }

// Errors lists every failure in the report, one line each.
func (r *Report) Errors() []string {
	var errs []string
	for _, s := range r.Suites {
		if s.Error != "" {
			errs = append(errs, fmt.Sprintf("%s: %s", s.Name, s.Error))
		}
		for _, f := range s.Figures {
			for _, v := range f.Variants {
				if v.Error != "" {
					errs = append(errs, fmt.Sprintf("%s / %s / %s: %s", s.Name, f.Name, v.Name, v.Error))
				}
			}
		}
	}
	return errs
}

// Options are the runner's settings.
type Options struct {
	Runs     int       // rounds per figure; default 5
	Quick    bool      // passed to suites as Env.Quick
	Progress io.Writer // progress lines; nil = none
	TempDir  string    // parent of the suites' scratch directories; "" = os.TempDir()
}

// Run runs suites one after the other and returns what was measured. For
// each figure it runs round 0 of every variant in order, then round 1, and
// so on (A B A B …). A failing variant keeps its error and is skipped in
// later rounds; the others go on. A cancelled ctx ends the run early (the
// current suite's teardown still runs) and is recorded as the suite's error.
func Run(ctx context.Context, suites []Suite, opt Options) *Report {
	if opt.Runs <= 0 {
		opt.Runs = 5
	}
	rep := &Report{Started: time.Now().UTC(), Quick: opt.Quick, Runs: opt.Runs, Machine: Describe(ctx)}
	for _, s := range suites {
		rep.Suites = append(rep.Suites, runSuite(ctx, s, opt))
	}
	rep.Machine.LoadEnd = LoadAvg()
	rep.Finished = time.Now().UTC()
	return rep
}

func runSuite(ctx context.Context, s Suite, opt Options) (sr SuiteReport) {
	sr = SuiteReport{Name: s.Name, Description: s.Description}
	progress := func(format string, args ...any) {
		if opt.Progress != nil {
			fmt.Fprintf(opt.Progress, s.Name+": "+format+"\n", args...)
		}
	}
	if err := Validate([]Suite{s}); err != nil {
		sr.Error = err.Error()
		return sr
	}
	dir, err := os.MkdirTemp(opt.TempDir, "sdnbench-"+s.Name+"-")
	if err != nil {
		sr.Error = fmt.Sprintf("scratch directory: %v", err)
		return sr
	}
	defer os.RemoveAll(dir)
	env := &Env{Quick: opt.Quick, Runs: opt.Runs, Dir: dir, log: prefixed{opt.Progress, s.Name + ": "}}
	defer func() { sr.Notes = env.sortedNotes() }()

	progress("setup")
	if s.Setup != nil {
		teardown, err := s.Setup(ctx, env)
		if teardown != nil {
			defer func() {
				progress("teardown")
				teardown()
			}()
		}
		if err != nil {
			sr.Error = fmt.Sprintf("setup: %v", err)
			return sr
		}
	}
	for _, f := range s.Figures {
		sr.Figures = append(sr.Figures, runFigure(ctx, env, f, opt.Runs, progress))
		if ctx.Err() != nil {
			sr.Error = fmt.Sprintf("interrupted: %v", context.Cause(ctx))
			return sr
		}
	}
	for _, b := range s.Batches {
		sr.Figures = append(sr.Figures, runBatch(ctx, env, b, opt.Runs, progress)...)
		if ctx.Err() != nil {
			sr.Error = fmt.Sprintf("interrupted: %v", context.Cause(ctx))
			return sr
		}
	}
	return sr
}

// runBatch runs round 0 of every batch variant, then round 1, and so on,
// and returns one FigureReport per batch figure, holding the variants that
// measure it.
func runBatch(ctx context.Context, env *Env, b Batch, runs int, progress func(string, ...any)) []FigureReport {
	// vrs[f][k]: figure f, variant k (only those that measure f are used).
	vrs := make([][]VariantReport, len(b.Figures))
	for f := range b.Figures {
		vrs[f] = make([]VariantReport, len(b.Variants))
		for k, v := range b.Variants {
			vrs[f][k].Name = v.Name
		}
	}
	failed := make([]string, len(b.Variants))
	for round := 0; round < runs && ctx.Err() == nil; round++ {
		for k, v := range b.Variants {
			if failed[k] != "" || ctx.Err() != nil {
				continue
			}
			start := time.Now()
			vals, err := v.Run(ctx, env)
			took := time.Since(start).Round(time.Millisecond)
			if err == nil && ctx.Err() != nil {
				err = context.Cause(ctx)
			}
			var got []string
			if err == nil {
				var unknown []string
				for _, fig := range b.Figures {
					if val, ok := vals[fig.Name]; ok && v.measures(fig.Name) {
						got = append(got, fmt.Sprintf("%s %s %s", fig.Name, FormatValue(val), fig.Unit))
					}
				}
				for name := range vals {
					if !v.measures(name) {
						unknown = append(unknown, fmt.Sprintf("%q", name))
					}
				}
				if len(unknown) > 0 {
					sort.Strings(unknown)
					err = fmt.Errorf("returned values for %s, which it does not measure", strings.Join(unknown, ", "))
				}
			}
			if err != nil {
				failed[k] = err.Error()
				if errors.Is(err, context.Canceled) {
					failed[k] = "interrupted"
				}
				for f := range b.Figures {
					vrs[f][k].Error = failed[k]
				}
				progress("[%d/%d] %s: FAILED after %v: %v", round+1, runs, v.Name, took, err)
				continue
			}
			for f, fig := range b.Figures {
				if val, ok := vals[fig.Name]; ok {
					vrs[f][k].Samples = append(vrs[f][k].Samples, Sample{Round: round, Value: val})
				}
			}
			if len(got) == 0 {
				got = []string{"nothing measured this round"}
			}
			progress("[%d/%d] %s (%v): %s", round+1, runs, v.Name, took, strings.Join(got, "; "))
		}
	}
	var out []FigureReport
	for f, fig := range b.Figures {
		fr := FigureReport{Name: fig.Name, Unit: fig.Unit, HigherIsBetter: fig.HigherIsBetter}
		byName := map[string][]Sample{}
		for k, v := range b.Variants {
			if !v.measures(fig.Name) {
				continue
			}
			vr := vrs[f][k]
			vr.Summary = Summarize(Values(vr.Samples))
			byName[vr.Name] = vr.Samples
			fr.Variants = append(fr.Variants, vr)
		}
		for _, r := range fig.Ratios {
			vs := PairRatios(byName[r[0]], byName[r[1]])
			fr.Ratios = append(fr.Ratios, RatioReport{A: r[0], B: r[1], Values: vs, Summary: Summarize(vs)})
		}
		out = append(out, fr)
	}
	return out
}

func runFigure(ctx context.Context, env *Env, f Figure, runs int, progress func(string, ...any)) FigureReport {
	fr := FigureReport{Name: f.Name, Unit: f.Unit, HigherIsBetter: f.HigherIsBetter}
	if !env.Quick { // a smoke test need not reach a figure's minimum
		runs = max(runs, f.MinRuns)
	}
	vrs := make([]VariantReport, len(f.Variants))
	for k, v := range f.Variants {
		vrs[k].Name = v.Name
	}
	for round := 0; round < runs && ctx.Err() == nil; round++ {
		for k, v := range f.Variants {
			if vrs[k].Error != "" || ctx.Err() != nil {
				continue
			}
			start := time.Now()
			val, err := v.Run(ctx, env)
			took := time.Since(start).Round(time.Millisecond)
			if err == nil && ctx.Err() != nil {
				err = context.Cause(ctx)
			}
			if err != nil {
				vrs[k].Error = err.Error()
				progress("%s [%d/%d] %s: FAILED after %v: %v", f.Name, round+1, runs, v.Name, took, err)
				if errors.Is(err, context.Canceled) {
					vrs[k].Error = "interrupted"
				}
				continue
			}
			vrs[k].Samples = append(vrs[k].Samples, Sample{Round: round, Value: val})
			progress("%s [%d/%d] %s: %s %s (%v)", f.Name, round+1, runs, v.Name, FormatValue(val), f.Unit, took)
		}
	}
	byName := map[string][]Sample{}
	for k := range vrs {
		vrs[k].Summary = Summarize(Values(vrs[k].Samples))
		byName[vrs[k].Name] = vrs[k].Samples
	}
	fr.Variants = vrs
	for _, r := range f.Ratios {
		vs := PairRatios(byName[r[0]], byName[r[1]])
		fr.Ratios = append(fr.Ratios, RatioReport{A: r[0], B: r[1], Values: vs, Summary: Summarize(vs)})
	}
	return fr
}

// prefixed writes each line with a prefix.
type prefixed struct {
	w      io.Writer
	prefix string
}

func (p prefixed) Write(b []byte) (int, error) {
	if p.w == nil {
		return len(b), nil
	}
	if _, err := io.WriteString(p.w, p.prefix+string(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}
