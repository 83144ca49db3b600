package api

import "os"

// UnsafeFollowerReadsEnv names a switch for tests only: sdnd started with
// it set to "1" breaks linearizable reads on purpose. A follower then
// answers them (List, Members without stale) from its own, possibly stale,
// state instead of sending them to the leader, and does no read barrier.
// integration/linearizability_test.go turns it on to show that its checker
// catches a stale read; nothing else may. sdnd logs a warning at start
// while it is on.
const UnsafeFollowerReadsEnv = "SDND_TEST_UNSAFE_FOLLOWER_READS"

// unsafeFollowerReads is read once, when sdnd starts.
var unsafeFollowerReads = os.Getenv(UnsafeFollowerReadsEnv) == "1"
