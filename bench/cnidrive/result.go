package cnidrive

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Result is a batch of ADDs: how many, the wall time from the first
// start to the last exit, and each one's latency. It is the cnidrive
// command's JSON output.
type Result struct {
	Ops     int             `json:"ops"`
	Window  time.Duration   `json:"window_ns"`
	Latency []time.Duration `json:"latency_ns"`
}

// Throughput is ADDs per second over the window.
func (r Result) Throughput() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Window.Seconds()
}

// Percentile returns the p-th percentile (0 < p ≤ 100) latency in
// milliseconds (nearest rank), or 0 without samples.
func (r Result) Percentile(p float64) float64 {
	if len(r.Latency) == 0 {
		return 0
	}
	s := slices.Clone(r.Latency)
	slices.Sort(s)
	rank := int(p/100*float64(len(s))+0.999999) - 1
	rank = max(0, min(rank, len(s)-1))
	return float64(s[rank]) / float64(time.Millisecond)
}

// Join is r followed by o, run one after the other: the ops and windows
// add up, the latencies are both's.
func (r Result) Join(o Result) Result {
	return Result{Ops: r.Ops + o.Ops, Window: r.Window + o.Window, Latency: append(slices.Clone(r.Latency), o.Latency...)}
}

// ParseResult reads the cnidrive command's output: its last line is the
// Result; anything before it (a shell's noise) is ignored. A result whose
// latencies do not match its ops, or hold a zero (an ADD never timed), is
// an error.
func ParseResult(out []byte) (Result, error) {
	lines := splitLines(out)
	if len(lines) == 0 {
		return Result{}, fmt.Errorf("cnidrive printed nothing")
	}
	var r Result
	if err := json.Unmarshal(lines[len(lines)-1], &r); err != nil {
		return Result{}, fmt.Errorf("cnidrive's last line is not its result: %w: %q", err, lines[len(lines)-1])
	}
	if len(r.Latency) != r.Ops {
		return Result{}, fmt.Errorf("cnidrive's result has %d latencies for %d ADDs", len(r.Latency), r.Ops)
	}
	if slices.Contains(r.Latency, 0) {
		return Result{}, fmt.Errorf("cnidrive's result has an ADD of no latency (not run)")
	}
	return r, nil
}

func splitLines(b []byte) [][]byte {
	var lines [][]byte
	for len(b) > 0 {
		i := slices.Index(b, '\n')
		line := b
		if i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) > 0 {
			lines = append(lines, line)
		}
	}
	return lines
}
