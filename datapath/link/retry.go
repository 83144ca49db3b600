package link

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// dumpAttempts bounds how often an interrupted dump is retried. The kernel
// sets NLM_F_DUMP_INTR when the table changed while it was being dumped; a
// fresh dump normally succeeds at once, so a small number is plenty.
const dumpAttempts = 5

// retryDump calls dump until it returns something other than
// netlink.ErrDumpInterrupted, at most dumpAttempts times. If every attempt was
// interrupted it returns the zero value and an error wrapping
// netlink.ErrDumpInterrupted: the partial result is dropped because callers
// act on it (an address missing from an inconsistent dump would be re-added,
// one present would not be deleted).
func retryDump[T any](what string, dump func() (T, error)) (T, error) {
	var err error
	for range dumpAttempts {
		var v T
		v, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	var zero T
	return zero, fmt.Errorf("%s: netlink dump interrupted %d times in a row because the kernel's table kept changing; try again: %w",
		what, dumpAttempts, err)
}
