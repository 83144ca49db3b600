package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
)

// signalCause is why the context of a command ended: SIGINT or SIGTERM.
type signalCause struct{ sig syscall.Signal }

func (s signalCause) Error() string { return "interrupted by " + s.sig.String() }

// signalContext returns a context that ends at the first SIGINT or
// SIGTERM, with a signalCause. Every command's work (reading files,
// connecting, calls, waiting) runs under it and stops at once; after the
// first signal sdnctl no longer catches them, so a second one ends it the
// default way even if something still blocks. stop releases the signals.
func signalContext(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-ch:
			signal.Stop(ch)
			sig, _ := s.(syscall.Signal)
			cancel(signalCause{sig})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(nil)
	}
}

// interruptSignal returns the signal that ended ctx, 0 if none did.
func interruptSignal(ctx context.Context) syscall.Signal {
	var sc signalCause
	if errors.As(context.Cause(ctx), &sc) {
		return sc.sig
	}
	return 0
}

// interruptedError is a command cut short by an interruption; its message
// says whether a write it had sent has an unknown outcome. A signal ends
// sdnctl with 128 + its number (130 for SIGINT), as shells do.
type interruptedError struct{ msg string }

func (e *interruptedError) Error() string { return e.msg }

// untilDone runs f in a goroutine of its own and returns its result, or,
// when ctx ends first, an interruptedError saying what was going on
// (doing) at once; f is then left to finish alone, so it must not touch
// what its caller goes on using (sdnctl exits soon after).
func untilDone[T any](ctx context.Context, doing string, f func() T) (T, error) {
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	select {
	case v := <-ch:
		return v, nil
	case <-ctx.Done():
		var zero T
		return zero, &interruptedError{"interrupted while " + doing}
	}
}
