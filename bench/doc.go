// Package bench is the harness behind `make bench`: a suite is a set of
// figures (a measured quantity with a unit), each measured by one or more
// variants (our code, a baseline); the runner measures every variant of a
// figure N times, interleaved (A B A B …) so that drift on the machine
// (thermal, other load) falls on all variants alike, and reports median, min
// and max per variant plus ratios between variants taken pair by pair (the
// A and B of the same round), then median, min and max of those ratios.
//
// A report (Report) carries the machine's description and every figure; it
// renders as markdown (Markdown) and JSON and is written under bench/results/
// by Write. The suites themselves live in bench/suites; this package does no
// I/O beyond what Describe and Write do, and its statistics are pure.
//
// Adding a suite: a function returning a Suite (Name, Description, Setup
// creating what the variants share and returning its teardown, Figures),
// listed in suites.All. Adding a variant: one more Variant in a Figure, and
// a Ratio if it is to be compared with another.
package bench
