package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// batchSuite has one batch: figures x and y; variant a measures both, b
// only x, c fails in its second round.
func batchSuite(calls *[]string) Suite {
	round := map[string]int{}
	run := func(name string, vals func(r int) map[string]float64) func(context.Context, *Env) (map[string]float64, error) {
		return func(context.Context, *Env) (map[string]float64, error) {
			*calls = append(*calls, name)
			r := round[name]
			round[name]++
			if name == "c" && r == 1 {
				return nil, errors.New("boom")
			}
			return vals(r), nil
		}
	}
	return Suite{Name: "s", Batches: []Batch{{
		Figures: []Figure{
			{Name: "x", Unit: "u", HigherIsBetter: true, Ratios: [][2]string{{"a", "b"}}},
			{Name: "y", Unit: "v"},
		},
		Variants: []BatchVariant{
			{Name: "a", Run: run("a", func(r int) map[string]float64 { return map[string]float64{"x": 2 * float64(r+1), "y": 7} })},
			{Name: "b", Figures: []string{"x"}, Run: run("b", func(r int) map[string]float64 { return map[string]float64{"x": float64(r + 1)} })},
			{Name: "c", Figures: []string{"y"}, Run: run("c", func(r int) map[string]float64 { return map[string]float64{"y": 1} })},
		},
	}}}
}

func TestBatchInterleavesAndSplitsFigures(t *testing.T) {
	var calls []string
	s := batchSuite(&calls)
	if err := Validate([]Suite{s}); err != nil {
		t.Fatal(err)
	}
	rep := Run(context.Background(), []Suite{s}, Options{Runs: 3, TempDir: t.TempDir()})
	if got := strings.Join(calls, " "); got != "a b c a b c a b" {
		t.Errorf("calls %q, want a b c a b c a b (interleaved; c not run after failing)", got)
	}
	figs := rep.Suites[0].Figures
	if len(figs) != 2 || figs[0].Name != "x" || figs[1].Name != "y" {
		t.Fatalf("figures %+v, want x and y", figs)
	}
	x, y := figs[0], figs[1]
	if len(x.Variants) != 2 || x.Variants[0].Name != "a" || x.Variants[1].Name != "b" {
		t.Errorf("x's variants %+v, want a and b", x.Variants)
	}
	if x.Variants[0].Summary.Median != 4 || x.Variants[1].Summary.Median != 2 {
		t.Errorf("x's medians %v and %v, want 4 and 2", x.Variants[0].Summary.Median, x.Variants[1].Summary.Median)
	}
	if len(x.Ratios) != 1 || x.Ratios[0].Summary.Median != 2 || x.Ratios[0].Summary.N != 3 {
		t.Errorf("x's ratio a/b %+v, want 2 over 3 pairs", x.Ratios)
	}
	if len(y.Variants) != 2 || y.Variants[1].Name != "c" || y.Variants[1].Error != "boom" || len(y.Variants[1].Samples) != 1 {
		t.Errorf("y's variants %+v, want a, and c failed with boom after one sample", y.Variants)
	}
	if errs := rep.Errors(); len(errs) != 1 || !strings.Contains(errs[0], "s / y / c: boom") {
		t.Errorf("errors %q, want c's boom once", errs)
	}
}

func TestBatchVariantMayOmitButNotInvent(t *testing.T) {
	n := 0
	s := Suite{Name: "s", Batches: []Batch{{
		Figures: []Figure{{Name: "x"}, {Name: "y"}, {Name: "z"}},
		Variants: []BatchVariant{{Name: "a", Figures: []string{"x", "y"}, Run: func(context.Context, *Env) (map[string]float64, error) {
			n++
			if n == 3 {
				return map[string]float64{"x": 1, "z": 1}, nil
			}
			return map[string]float64{"x": 1}, nil
		}}, {Name: "b", Figures: []string{"z"}, Run: func(context.Context, *Env) (map[string]float64, error) {
			return map[string]float64{"z": 1}, nil
		}}},
	}}}
	rep := Run(context.Background(), []Suite{s}, Options{Runs: 3, TempDir: t.TempDir()})
	figs := rep.Suites[0].Figures
	if got := len(figs[0].Variants[0].Samples); got != 2 {
		t.Errorf("x: %d samples of a, want 2 (the third round failed)", got)
	}
	if got := len(figs[1].Variants[0].Samples); got != 0 || figs[1].Variants[0].Error == "" {
		t.Errorf("y: %d samples of a, error %q; want none, and the failure", got, figs[1].Variants[0].Error)
	}
	if errs := rep.Errors(); len(errs) != 2 || !strings.Contains(errs[0], `"z", which it does not measure`) {
		t.Errorf("errors %q, want a's unknown z reported in x and y", errs)
	}
}

func TestValidateBatch(t *testing.T) {
	ok := func(context.Context, *Env) (map[string]float64, error) { return nil, nil }
	fig := func(context.Context, *Env) (float64, error) { return 0, nil }
	for name, b := range map[string]Batch{
		"no variants":        {Figures: []Figure{{Name: "x"}}},
		"no figures":         {Variants: []BatchVariant{{Name: "a", Run: ok}}},
		"figure variants":    {Figures: []Figure{{Name: "x", Variants: []Variant{{Name: "v", Run: fig}}}}, Variants: []BatchVariant{{Name: "a", Run: ok}}},
		"duplicate variant":  {Figures: []Figure{{Name: "x"}}, Variants: []BatchVariant{{Name: "a", Run: ok}, {Name: "a", Run: ok}}},
		"no run":             {Figures: []Figure{{Name: "x"}}, Variants: []BatchVariant{{Name: "a"}}},
		"unknown figure":     {Figures: []Figure{{Name: "x"}}, Variants: []BatchVariant{{Name: "a", Figures: []string{"z"}, Run: ok}}},
		"unmeasured figure":  {Figures: []Figure{{Name: "x"}, {Name: "y"}}, Variants: []BatchVariant{{Name: "a", Figures: []string{"x"}, Run: ok}}},
		"ratio of non-taker": {Figures: []Figure{{Name: "x", Ratios: [][2]string{{"a", "b"}}}, {Name: "y"}}, Variants: []BatchVariant{{Name: "a", Run: ok}, {Name: "b", Figures: []string{"y"}, Run: ok}}},
	} {
		if err := Validate([]Suite{{Name: "s", Batches: []Batch{b}}}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	dup := Suite{Name: "s", Figures: []Figure{{Name: "x", Variants: []Variant{{Name: "v", Run: fig}}}},
		Batches: []Batch{{Figures: []Figure{{Name: "x"}}, Variants: []BatchVariant{{Name: "a", Run: ok}}}}}
	if err := Validate([]Suite{dup}); err == nil {
		t.Error("a batch figure named like a plain figure: accepted")
	}
}
