package bench

import (
	"context"
	"testing"
)

func TestMinRunsRaisesRoundsOfOneFigure(t *testing.T) {
	count := map[string]int{}
	v := func(fig string) []Variant {
		return []Variant{{Name: "v", Run: func(context.Context, *Env) (float64, error) {
			count[fig]++
			return 1, nil
		}}}
	}
	s := Suite{Name: "t", Figures: []Figure{
		{Name: "plain", Unit: "x", Variants: v("plain")},
		{Name: "kills", Unit: "s", Variants: v("kills"), MinRuns: 10},
	}}
	rep := Run(context.Background(), []Suite{s}, Options{Runs: 3, TempDir: t.TempDir()})
	if count["plain"] != 3 || count["kills"] != 10 {
		t.Errorf("rounds: plain %d (want 3), kills %d (want 10)", count["plain"], count["kills"])
	}
	if n := rep.Suites[0].Figures[1].Variants[0].Summary.N; n != 10 {
		t.Errorf("kills summary over %d samples, want 10", n)
	}
	rep = Run(context.Background(), []Suite{s}, Options{Runs: 12, TempDir: t.TempDir()})
	if n := rep.Suites[0].Figures[1].Variants[0].Summary.N; n != 12 {
		t.Errorf("with -runs 12 the kills figure has %d samples, want 12 (MinRuns only raises)", n)
	}
}

func TestQuickIgnoresMinRuns(t *testing.T) {
	n := 0
	s := Suite{Name: "t", Figures: []Figure{{Name: "kills", Unit: "s", MinRuns: 10,
		Variants: []Variant{{Name: "v", Run: func(context.Context, *Env) (float64, error) { n++; return 1, nil }}}}}}
	Run(context.Background(), []Suite{s}, Options{Runs: 3, Quick: true, TempDir: t.TempDir()})
	if n != 3 {
		t.Errorf("quick run made %d rounds, want 3", n)
	}
}
