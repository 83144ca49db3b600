package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Markdown renders the report for people: the machine, then per suite its
// notes and one table per figure (variants, then ratios).
func (r *Report) Markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	mode := "full"
	if r.Quick {
		mode = "quick (smaller sizes, figures not to be judged)"
	}
	p("# sdn benchmarks, %s", r.Started.Format("2006-01-02 15:04:05Z"))
	p("")
	p("%s run, %d rounds per figure, variants interleaved; took %v.", mode, r.Runs, r.Finished.Sub(r.Started).Round(1e9))
	p("")
	m := r.Machine
	p("| machine | |")
	p("|---|---|")
	for _, kv := range [][2]string{
		{"host", m.Hostname},
		{"CPU", m.CPU},
		{"cores", strconv.Itoa(m.Cores)},
		{"memory", fmt.Sprintf("%d MiB", m.MemoryMiB)},
		{"kernel", m.Kernel},
		{"Go", m.Go},
		{"OVS", m.OVS},
		{"commit", m.Commit},
		{"load average at start", m.LoadStart},
		{"load average at end", m.LoadEnd},
	} {
		p("| %s | %s |", kv[0], cell(kv[1]))
	}
	for _, s := range r.Suites {
		p("")
		p("## %s", s.Name)
		p("")
		p("%s", s.Description)
		if len(s.Notes) > 0 {
			p("")
			for _, n := range s.Notes {
				p("- %s: %s", n.Key, n.Value)
			}
		}
		if s.Error != "" {
			p("")
			p("**FAILED: %s**", cell(s.Error))
		}
		for _, f := range s.Figures {
			renderFigure(&b, f)
		}
	}
	if errs := r.Errors(); len(errs) > 0 {
		p("")
		p("## Failures")
		p("")
		for _, e := range errs {
			p("- %s", e)
		}
	}
	return b.String()
}

func renderFigure(b *strings.Builder, f FigureReport) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	better := "lower is better"
	if f.HigherIsBetter {
		better = "higher is better"
	}
	p("")
	p("### %s (%s, %s)", f.Name, f.Unit, better)
	p("")
	p("| variant | median | min | max | runs |")
	p("|---|--:|--:|--:|--:|")
	for _, v := range f.Variants {
		runs := strconv.Itoa(v.Summary.N)
		if v.Error != "" {
			runs += " (failed: " + cell(v.Error) + ")"
		}
		p("| %s | %s | %s | %s | %s |", v.Name, sumCell(v.Summary.N, v.Summary.Median), sumCell(v.Summary.N, v.Summary.Min), sumCell(v.Summary.N, v.Summary.Max), runs)
	}
	if len(f.Ratios) == 0 {
		return
	}
	p("")
	p("| ratio (per round) | median | min | max | pairs | %s is better when |", "A")
	p("|---|--:|--:|--:|--:|---|")
	for _, r := range f.Ratios {
		when := "< 1"
		if f.HigherIsBetter {
			when = "> 1"
		}
		p("| %s / %s | %s | %s | %s | %d | %s |", r.A, r.B, ratioCell(r.Summary.N, r.Summary.Median), ratioCell(r.Summary.N, r.Summary.Min), ratioCell(r.Summary.N, r.Summary.Max), r.Summary.N, when)
	}
}

func sumCell(n int, v float64) string {
	if n == 0 {
		return "-"
	}
	return FormatValue(v)
}

func ratioCell(n int, v float64) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// cell keeps a value on one table row.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// FormatValue prints a measurement with about four significant digits and
// no exponent: 21345, 471.2, 12.35, 0.1234.
func FormatValue(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case a >= 1 || a == 0:
		return strconv.FormatFloat(v, 'f', 3, 64)
	default:
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
}

// Write writes the report to dir as STAMP.md and STAMP.json (STAMP is the
// UTC start time, 20060102T150405Z) and copies both to latest.md and
// latest.json. It returns the markdown file's path.
func (r *Report) Write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("write benchmark report: %w", err)
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", fmt.Errorf("write benchmark report: %w", err)
	}
	md := []byte(r.Markdown())
	stamp := r.Started.UTC().Format("20060102T150405Z")
	for name, data := range map[string][]byte{
		stamp + ".md": md, stamp + ".json": append(js, '\n'),
		"latest.md": md, "latest.json": append(js, '\n'),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return "", fmt.Errorf("write benchmark report: %w", err)
		}
	}
	return filepath.Join(dir, stamp+".md"), nil
}
