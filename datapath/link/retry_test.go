package link

import (
	"errors"
	"testing"

	"github.com/vishvananda/netlink"
)

func TestRetryDump(t *testing.T) {
	t.Run("interrupted twice", func(t *testing.T) {
		calls := 0
		v, err := retryDump("fake", func() ([]string, error) {
			calls++
			if calls <= 2 {
				return []string{"partial"}, netlink.ErrDumpInterrupted
			}
			return []string{"a", "b"}, nil
		})
		if err != nil || len(v) != 2 || calls != 3 {
			t.Errorf("got %v, %v after %d calls; want [a b], nil after 3", v, err, calls)
		}
	})
	t.Run("always interrupted", func(t *testing.T) {
		calls := 0
		v, err := retryDump("fake", func() ([]string, error) {
			calls++
			return []string{"partial"}, netlink.ErrDumpInterrupted
		})
		if !errors.Is(err, netlink.ErrDumpInterrupted) || v != nil || calls != dumpAttempts {
			t.Errorf("got %v, %v after %d calls; want nil and ErrDumpInterrupted after %d", v, err, calls, dumpAttempts)
		}
	})
	t.Run("other error", func(t *testing.T) {
		calls := 0
		boom := errors.New("boom")
		_, err := retryDump("fake", func() (int, error) {
			calls++
			return 0, boom
		})
		if !errors.Is(err, boom) || calls != 1 {
			t.Errorf("got %v after %d calls; want boom after 1", err, calls)
		}
	})
}
