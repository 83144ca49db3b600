package bench

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want Summary
	}{
		{nil, Summary{}},
		{[]float64{3}, Summary{N: 1, Median: 3, Min: 3, Max: 3}},
		{[]float64{5, 1, 3}, Summary{N: 3, Median: 3, Min: 1, Max: 5}},
		{[]float64{4, 1, 3, 2}, Summary{N: 4, Median: 2.5, Min: 1, Max: 4}},
		{[]float64{2, math.NaN(), math.Inf(1), 4}, Summary{N: 2, Median: 3, Min: 2, Max: 4}},
	} {
		if got := Summarize(tc.in); got != tc.want {
			t.Errorf("Summarize(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestSummarizeDoesNotReorderInput(t *testing.T) {
	in := []float64{3, 1, 2}
	Summarize(in)
	if !slices.Equal(in, []float64{3, 1, 2}) {
		t.Fatalf("input reordered: %v", in)
	}
}

func TestPairRatios(t *testing.T) {
	a := []Sample{{0, 10}, {1, 20}, {2, 30}, {4, 50}}
	b := []Sample{{0, 5}, {2, 10}, {3, 99}, {4, 0}}
	// Round 1 has no B, round 3 no A, round 4's B is zero: only 0 and 2 pair.
	if got, want := PairRatios(a, b), []float64{2, 3}; !slices.Equal(got, want) {
		t.Fatalf("PairRatios = %v, want %v", got, want)
	}
	if got := PairRatios(nil, b); len(got) != 0 {
		t.Fatalf("PairRatios(nil, b) = %v", got)
	}
}

// TestRunInterleaves checks the order of runs (A B A B …), per-round
// pairing when a variant fails midway, and that the teardown runs.
func TestRunInterleaves(t *testing.T) {
	var order []string
	vals := map[string][]float64{"A": {10, 20, 30}, "B": {5, 5, 10}}
	calls := map[string]int{}
	variant := func(name string, failAt int) Variant {
		return Variant{Name: name, Run: func(context.Context, *Env) (float64, error) {
			k := calls[name]
			calls[name]++
			order = append(order, name)
			if k == failAt {
				return 0, errors.New("boom")
			}
			return vals[name][k], nil
		}}
	}
	tornDown := false
	s := Suite{
		Name: "t",
		Setup: func(_ context.Context, env *Env) (func(), error) {
			env.Note("size", "3")
			return func() { tornDown = true }, nil
		},
		Figures: []Figure{{
			Name: "f", Unit: "x", HigherIsBetter: true,
			Variants: []Variant{variant("A", -1), variant("B", 1), variant("C", 99)},
			Ratios:   [][2]string{{"A", "B"}},
		}},
	}
	vals["C"] = []float64{1, 1, 1}
	rep := Run(context.Background(), []Suite{s}, Options{Runs: 3, TempDir: t.TempDir()})
	if got := strings.Join(order, ""); got != "ABCABCAC" {
		t.Errorf("run order %s, want ABCABCAC (B failed in round 2 and is not run again)", got)
	}
	if !tornDown {
		t.Error("teardown did not run")
	}
	f := rep.Suites[0].Figures[0]
	if got := f.Variants[0].Summary; got != (Summary{N: 3, Median: 20, Min: 10, Max: 30}) {
		t.Errorf("A: %+v", got)
	}
	if f.Variants[1].Error != "boom" || f.Variants[1].Summary.N != 1 {
		t.Errorf("B: %+v", f.Variants[1])
	}
	if got := f.Ratios[0].Values; !slices.Equal(got, []float64{2}) {
		t.Errorf("A/B ratios %v, want [2] (only round 1 has both)", got)
	}
	if !rep.Failed() || len(rep.Errors()) != 1 || !strings.Contains(rep.Errors()[0], "t / f / B: boom") {
		t.Errorf("Errors() = %q", rep.Errors())
	}
	if n := rep.Suites[0].Notes; len(n) != 1 || n[0] != (Note{"size", "3"}) {
		t.Errorf("notes %v", n)
	}
}

func TestRunSetupFailure(t *testing.T) {
	ran := false
	s := Suite{
		Name:    "t",
		Setup:   func(context.Context, *Env) (func(), error) { return nil, errors.New("no OVS") },
		Figures: []Figure{{Name: "f", Variants: []Variant{{Name: "A", Run: func(context.Context, *Env) (float64, error) { ran = true; return 1, nil }}}}},
	}
	rep := Run(context.Background(), []Suite{s}, Options{Runs: 1, TempDir: t.TempDir()})
	if ran || rep.Suites[0].Error != "setup: no OVS" || !rep.Failed() {
		t.Fatalf("ran=%v suite=%+v", ran, rep.Suites[0])
	}
}

func TestValidate(t *testing.T) {
	run := func(context.Context, *Env) (float64, error) { return 0, nil }
	ok := Figure{Name: "f", Variants: []Variant{{Name: "a", Run: run}, {Name: "b", Run: run}}, Ratios: [][2]string{{"a", "b"}}}
	if err := Validate([]Suite{{Name: "s", Figures: []Figure{ok}}}); err != nil {
		t.Fatal(err)
	}
	bad := ok
	bad.Ratios = [][2]string{{"a", "c"}}
	for name, suites := range map[string][]Suite{
		"ratio names unknown variant": {{Name: "s", Figures: []Figure{bad}}},
		"duplicate suite":             {{Name: "s"}, {Name: "s"}},
		"no variants":                 {{Name: "s", Figures: []Figure{{Name: "f"}}}},
		"variant without Run":         {{Name: "s", Figures: []Figure{{Name: "f", Variants: []Variant{{Name: "a"}}}}}},
	} {
		if Validate(suites) == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
	if _, err := Select([]Suite{{Name: "a"}, {Name: "b"}}, []string{"b", "zz"}); err == nil || !strings.Contains(err.Error(), "zz") {
		t.Errorf("Select of an unknown suite: %v", err)
	}
}
