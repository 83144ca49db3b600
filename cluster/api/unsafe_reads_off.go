//go:build !sdn_unsafe_reads

package api

// unsafeFollowerReads is off, for good, in a build without the tag
// sdn_unsafe_reads (UnsafeFollowerReadsEnv).
const unsafeFollowerReads = false
