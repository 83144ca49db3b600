// Package integration holds end-to-end tests that run the real binaries:
// sdnd as a separate process with raft and bbolt on disk, sdnctl as a user
// would type it, and (from the datapath on) real Open vSwitch instances,
// network namespaces and packets. It has no non-test code beyond helpers.
package integration
