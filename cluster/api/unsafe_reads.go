package api

// UnsafeFollowerReadsEnv names a switch for tests only: an sdnd built with
// the build tag sdn_unsafe_reads and started with it set to "1" breaks
// linearizable reads on purpose. A follower then answers them (List,
// Members without stale) from its own, possibly stale, state instead of
// sending them to the leader, and does no read barrier.
// integration/linearizability_test.go builds such an sdnd to show that its
// checker catches a stale read; nothing else may. sdnd logs a warning at
// start while it is on.
//
// Without the tag (every build but that test's) the switch is the constant
// false (unsafe_reads_off.go): the compiler drops the code it guards, and
// neither this name nor the warning is in the binary
// (sdnd's TestProductionBinaryHasNoUnsafeReads checks).
const UnsafeFollowerReadsEnv = "SDND_TEST_UNSAFE_FOLLOWER_READS"
