package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// maxPendingShown bounds how many pending hosts a line names; with
// thousands of hosts the rest are counted.
const maxPendingShown = 10

// waitRealized streams StatusService.WaitRealized for revision, printing a
// progress line to stderr whenever the picture changes. It returns nil when
// every host realized revision and an error naming the pending hosts when
// timeout passes first.
func (a *app) waitRealized(ctx context.Context, c *client, revision uint64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var (
		last     *sdnv1.WaitRealizedProgress
		lastLine string
		lastErr  error
	)
	for first := true; ; first = false {
		left := time.Until(deadline)
		if first {
			left = timeout
		}
		if left <= 0 {
			break
		}
		done, err := a.waitStream(ctx, c, revision, left, &last, &lastLine)
		if done {
			return err
		}
		if err == nil {
			break // the timeout passed with hosts still pending
		}
		// Realized revisions live in the leader's memory: when the leader
		// changes (or the server we talk to goes away) the stream ends
		// Unavailable; the revision is committed, so ask again, and the
		// new leader learns every host's state from its next heartbeat.
		if status.Code(err) != codes.Unavailable || ctx.Err() != nil {
			return a.rpcError(ctx, err)
		}
		if lastErr == nil {
			fmt.Fprintf(a.stderr, "the wait for revision %d was cut off (%s); asking again\n", revision, status.Convert(err).Message())
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return a.rpcError(ctx, err)
		case <-time.After(min(waitRetryPause, max(time.Until(deadline), 0))):
		}
	}
	msg := timeoutMessage(revision, timeout, last)
	if last == nil && lastErr != nil {
		msg += " (last error: " + status.Convert(lastErr).Message() + ")"
	}
	return &exitError{code: 1, msg: msg}
}

// waitRetryPause is how long sdnctl waits before asking again after a
// WaitRealized stream was cut off.
const waitRetryPause = 500 * time.Millisecond

// waitStream runs one WaitRealized stream for at most timeout. done is
// true when the wait has an outcome (err nil: printed; err non-nil: the
// error to return). done false with err nil means the server gave up at
// its timeout; with err non-nil, the stream failed.
func (a *app) waitStream(ctx context.Context, c *client, revision uint64, timeout time.Duration, last **sdnv1.WaitRealizedProgress, lastLine *string) (bool, error) {
	// The server enforces timeout; the slack lets its last answer arrive
	// before our own deadline cuts the stream.
	ctx, cancel := context.WithTimeout(ctx, timeout+a.timeout)
	defer cancel()
	stream, err := c.status.WaitRealized(ctx, &sdnv1.WaitRealizedRequest{
		Revision:  revision,
		TimeoutMs: max(timeout.Milliseconds(), 1),
	})
	if err != nil {
		return false, err
	}
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			if status.Code(err) == codes.DeadlineExceeded {
				return false, nil
			}
			return false, err
		}
		*last = p
		if p.GetTotal() == 0 && len(p.GetDown()) == 0 {
			fmt.Fprintln(a.stdout, "no hosts registered; nothing to wait for")
			return true, nil
		}
		if p.GetTotal() == 0 {
			fmt.Fprintf(a.stdout, "every host is down (%s); nothing to wait for: they realize revision %d when they come back\n", pendingList(p.GetDown()), revision)
			return true, nil
		}
		if p.GetDone() && len(p.GetPending()) == 0 {
			if down := p.GetDown(); len(down) > 0 {
				fmt.Fprintf(a.stdout, "revision %d realized on all %s that are up; not waited for, down: %s (they catch up when they come back)\n",
					revision, count(int(p.GetTotal()), "host"), pendingList(down))
				return true, nil
			}
			fmt.Fprintf(a.stdout, "revision %d realized on all %s\n", revision, count(int(p.GetTotal()), "host"))
			return true, nil
		}
		if p.GetDone() {
			return false, nil // the server gave up with hosts still pending
		}
		if line := progressLine(revision, p); line != *lastLine {
			fmt.Fprintln(a.stderr, line)
			*lastLine = line
		}
	}
}

// progressLine renders a WaitRealized progress report, e.g.
// "waiting for hosts to realize revision 13: 2/3 realized (pending: host3)".
func progressLine(revision uint64, p *sdnv1.WaitRealizedProgress) string {
	line := fmt.Sprintf("waiting for hosts to realize revision %d: %d/%d realized", revision, p.GetRealized(), p.GetTotal())
	if len(p.GetPending()) > 0 {
		line += " (pending: " + pendingList(p.GetPending()) + ")"
	}
	return line
}

func timeoutMessage(revision uint64, timeout time.Duration, last *sdnv1.WaitRealizedProgress) string {
	if last == nil {
		return fmt.Sprintf("timed out after %s waiting for hosts to realize revision %d (no progress reported); see `sdnctl status`",
			timeout, revision)
	}
	msg := fmt.Sprintf("timed out after %s waiting for hosts to realize revision %d: %d/%d realized",
		timeout, revision, last.GetRealized(), last.GetTotal())
	if len(last.GetPending()) > 0 {
		msg += "; pending: " + pendingList(last.GetPending())
	}
	return msg + "; see `sdnctl status`"
}

// pendingList names hosts, at most maxPendingShown of them.
func pendingList(hosts []string) string {
	if len(hosts) <= maxPendingShown {
		return strings.Join(hosts, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(hosts[:maxPendingShown], ", "), len(hosts)-maxPendingShown)
}
