//go:build sdn_unsafe_reads

package api

import "os"

// unsafeFollowerReads is read once, when sdnd starts (UnsafeFollowerReadsEnv).
var unsafeFollowerReads = os.Getenv(UnsafeFollowerReadsEnv) == "1"
