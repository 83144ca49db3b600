// Package alloc holds the pure, in-memory allocators the raft FSM uses to hand
// out cluster resources: a subnet per host out of the cluster workload CIDR
// ([SubnetPool]), a 24-bit VNID per network ([VNIDPool]) and an IP address per
// workload out of its host's subnet ([IPPool]). The identifier scheme they
// serve (the reserved VNIDs, the MAC derived from a workload's IP) is
// package model's.
//
// Every replica applies the same raft log, so every allocator here is
// deterministic: no I/O, no clock, no randomness and no map iteration. Given
// the same sequence of calls, two pools return the same results.
//
// The pools are not the source of truth. The FSM persists every assignment in
// bbolt itself, together with [Pool.Cursor], and rebuilds a pool on start by
// calling Claim for each stored assignment (in any order) and then
// [Pool.SetCursor]. A pool rebuilt that way continues exactly as the original
// would have.
//
// All pools share one engine, [Pool]: a bitset of indexes in [0, size) with
// next-fit allocation. Allocate searches from the cursor (the index after the
// last allocated one) and wraps around, so a released index is handed out
// again only after every other free index has been used once; stale ARP and
// conntrack entries for a released address have time to age out. The search
// works on 64-bit words with a second-level summary of full words, so a large,
// nearly full pool still allocates in microseconds.
//
// Pools are not safe for concurrent use; the FSM applies log entries one at a
// time.
package alloc
