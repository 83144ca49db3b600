package bench

import (
	"math"
	"slices"
)

// Sample is one measurement: its value and the round it was taken in
// (0-based). Rounds pair the variants of a figure: round r of A was
// measured right before or after round r of B.
type Sample struct {
	Round int     `json:"round"`
	Value float64 `json:"value"`
}

// Summary is median, min and max of some values. N is how many; a zero
// Summary (N == 0) means nothing was measured.
type Summary struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Summarize returns median (the mean of the two middle values for an even
// count), min and max of vs. NaN and infinite values are left out.
func Summarize(vs []float64) Summary {
	s := make([]float64, 0, len(vs))
	for _, v := range vs {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			s = append(s, v)
		}
	}
	if len(s) == 0 {
		return Summary{}
	}
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Summary{N: n, Median: med, Min: s[0], Max: s[n-1]}
}

// Values returns the values of samples, in order.
func Values(samples []Sample) []float64 {
	vs := make([]float64, len(samples))
	for i, s := range samples {
		vs[i] = s.Value
	}
	return vs
}

// PairRatios returns a.Value/b.Value for every round measured in both a and
// b, in round order. Rounds missing on either side (a failed run) and
// pairs whose b is zero are skipped: a ratio is only ever taken between
// measurements made next to each other.
func PairRatios(a, b []Sample) []float64 {
	bv := make(map[int]float64, len(b))
	for _, s := range b {
		bv[s.Round] = s.Value
	}
	var rs []float64
	for _, s := range a {
		d, ok := bv[s.Round]
		if !ok || d == 0 {
			continue
		}
		rs = append(rs, s.Value/d)
	}
	return rs
}
