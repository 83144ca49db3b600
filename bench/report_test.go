package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleReport() *Report {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return &Report{
		Started: start, Finished: start.Add(90 * time.Second), Runs: 2,
		Machine: Machine{CPU: "Test CPU", Cores: 4, MemoryMiB: 8192, Kernel: "6.1", Go: "go1.26", OVS: "3.1.0", LoadStart: "0.1 0.2 0.3", LoadEnd: "0.4 0.5 0.6"},
		Suites: []SuiteReport{{
			Name: "programming", Description: "flows into OVS",
			Notes: []Note{{"flows", "10000"}},
			Figures: []FigureReport{{
				Name: "install", Unit: "flows/s", HigherIsBetter: true,
				Variants: []VariantReport{
					{Name: "reconcile", Samples: []Sample{{0, 20000}, {1, 22000}}, Summary: Summary{2, 21000, 20000, 22000}},
					{Name: "ofctl", Samples: []Sample{{0, 40000}}, Summary: Summary{1, 40000, 40000, 40000}, Error: "exit status 1 | oops"},
				},
				Ratios: []RatioReport{{A: "reconcile", B: "ofctl", Values: []float64{0.5}, Summary: Summary{1, 0.5, 0.5, 0.5}}},
			}},
		}, {Name: "memory", Description: "peak RSS", Error: "setup: needs root"}},
	}
}

func TestMarkdown(t *testing.T) {
	md := sampleReport().Markdown()
	for _, want := range []string{
		"# sdn benchmarks, 2026-01-02 03:04:05Z",
		"full run, 2 rounds per figure, variants interleaved; took 1m30s.",
		"| CPU | Test CPU |",
		"| load average at end | 0.4 0.5 0.6 |",
		"- flows: 10000",
		"### install (flows/s, higher is better)",
		"| reconcile | 21000 | 20000 | 22000 | 2 |",
		`| ofctl | 40000 | 40000 | 40000 | 1 (failed: exit status 1 \| oops) |`,
		"| reconcile / ofctl | 0.500 | 0.500 | 0.500 | 1 | > 1 |",
		"**FAILED: setup: needs root**",
		"## Failures",
		"- programming / install / ofctl: exit status 1 | oops",
		"- memory: setup: needs root",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestFormatValue(t *testing.T) {
	for v, want := range map[float64]string{
		21345.6: "21346", 471.23: "471.2", 12.345: "12.35", 1.5: "1.500", 0: "0.000", 0.012345: "0.01235",
	} {
		if got := FormatValue(v); got != want {
			t.Errorf("FormatValue(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	rep := sampleReport()
	path, err := rep.Write(filepath.Join(dir, "results"))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "20260102T030405Z.md" {
		t.Errorf("path %s", path)
	}
	for _, name := range []string{"20260102T030405Z.md", "20260102T030405Z.json", "latest.md", "latest.json"} {
		if _, err := os.Stat(filepath.Join(dir, "results", name)); err != nil {
			t.Error(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "results", "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Suites[0].Figures[0].Ratios[0].Summary.Median != 0.5 || back.Machine.OVS != "3.1.0" {
		t.Errorf("JSON round trip lost data: %+v", back)
	}
}
