// Package suites holds the benchmark suites `make bench` runs (see package
// bench for the harness). Each suite is a function returning a bench.Suite,
// in its own file, listed in All.
package suites

import "github.com/sdn-dev/sdn/bench"

// All returns every suite, in the order `make bench` runs them.
func All() []bench.Suite {
	return []bench.Suite{
		Programming(),
		Memory(),
		Dataplane(),
		Megaflows(),
		Raft(),
		Policy(),
		Services(),
		ServicesVM(),
		CNIAdd(),
		CNIAddVM(),
		Scale(),
	}
}
