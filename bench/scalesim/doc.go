// Package scalesim simulates many sdnd agents in one process, against real
// sdnd servers over real gRPC, for the scale benchmark (bench/suites,
// suite scale) and bench/cmd/sdnscale.
//
// Each simulated host behaves as node/agent does, with the datapath left
// out (realizing is a no-op): it has its own gRPC connection, registers
// with a unique underlay address in 198.18.0.0/15, watches from its
// revision (a full snapshot only when it has none), applies snapshot
// chunks, deltas and progress events to a model.Desired, reports the
// revision realized once per burst of events, reports again every resync
// interval, heartbeats every 5 s with its latest report riding along, and
// registers again when the servers do not know it. Host i prefers server
// i mod S and moves to the next one when a registration or its watch
// fails, after a jittered exponential backoff.
//
// Per host it counts what it received (events by type, changes, bytes) and
// what failed (by kind), and says whether it is watching. An Observer sees
// every event with its receive time, so a benchmark keeps only the times
// it needs. Verify compares every host's state with a linearizable List
// from the leader.
//
// Memory: a host holds only what it was sent, but the node objects every
// host receives (N hosts × N nodes) are interned: equal nodes are one
// object shared by every host's model.Desired.
package scalesim
