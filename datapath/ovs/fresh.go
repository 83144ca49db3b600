package ovs

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// # New lines in a trusted reconcile
//
// A trusted reconcile that adds flows never seen before (a new workload's,
// say) needs their canonical forms (canon.go) only to remember what the
// bridge holds afterwards, not to know what to send: every flow the bridge
// holds came from a line canonicalized before, so a new line is an add, and
// a known flow that no cached desired line names any more is a delete
// (deletes come before adds in the bundle, so a new line that turns out to
// replace a deleted flow in place lands the same). So the bundle and the
// parse-flows run that canonicalizes the new lines go at once, two
// processes side by side instead of one after the other; the diff proper
// (planFlows) then runs on the canonical forms, and its view of the bridge
// is what is remembered.

// freshLines returns the indexes of d's flows whose canonical form is not
// cached.
func (i *Instance) freshLines(d *Desired) []int {
	var fresh []int
	for k := range d.Flows {
		if _, ok := i.canon[d.line(k)]; !ok {
			fresh = append(fresh, k)
		}
	}
	return fresh
}

// applyFresh is apply's flows for a trusted reconcile with a known bridge,
// no group change and fresh lines: the bundle and the canonicalization run
// side by side. It returns what the bridge holds afterwards; an error
// leaves the bridge unknown (the caller does not remember it).
func (i *Instance) applyFresh(ctx context.Context, bridge string, d Desired, known []Flow, fresh []int, res *Result) ([]Flow, error) {
	ops, err := provisionalOps(known, d, fresh, i.canon)
	if err != nil {
		return nil, fmt.Errorf("reconcile bridge %q: %w", bridge, err)
	}
	var canon []canonFlow
	var cerr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		canon, cerr = i.canonicalize(ctx, d.Flows, d.lines)
	}()
	berr := i.bundle(ctx, bridge, ops)
	wg.Wait()
	if berr != nil {
		return nil, berr
	}
	if cerr != nil {
		return nil, fmt.Errorf("reconcile bridge %q: the bundle is committed, but %w", bridge, cerr)
	}
	if d.OwnedGroups != (GroupRange{}) {
		if err := checkGroupRefs(d, canon); err != nil {
			return nil, fmt.Errorf("reconcile bridge %q: the bundle is committed, but %w", bridge, err)
		}
	}
	_, _, after, err := planFlows(known, d.Flows, canon, d.Generation, res)
	if err != nil {
		return nil, fmt.Errorf("reconcile bridge %q: the bundle is committed, but %w", bridge, err)
	}
	return after, nil
}

// provisionalOps plans the bundle from the cached canonical forms: the
// diff of the known flows against the desired flows whose forms are
// cached, plus an add for each fresh line.
func provisionalOps(known []Flow, d Desired, fresh []int, cache map[string]canonFlow) ([]op, error) {
	var cached []Flow
	var canon []canonFlow
	for k, f := range d.Flows {
		if c, ok := cache[d.line(k)]; ok { // fresh lines are the ones not cached
			cached = append(cached, f)
			canon = append(canon, c)
		}
	}
	var scratch Result
	dels, adds, _, err := planFlows(known, cached, canon, d.Generation, &scratch)
	if err != nil {
		return nil, err
	}
	for _, k := range fresh {
		add := d.Flows[k]
		add.Cookie = MakeCookie(d.Generation, CookieCategory(d.Flows[k].Cookie))
		adds = append(adds, op{line: "flow add " + add.String(), flow: &d.Flows[k]})
	}
	return slices.Concat(dels, adds), nil
}

// applyFreshAndSettle finishes apply on the fresh-lines path: applyFresh,
// then what apply does after a bundle (remember the bridge, settle).
func (i *Instance) applyFreshAndSettle(ctx context.Context, bridge string, d Desired, known, after *knownBridge, fresh []int, res *Result) (Result, error) {
	flows, err := i.applyFresh(ctx, bridge, d, known.flows, fresh, res)
	if err != nil {
		return Result{}, err
	}
	after.flows = flows
	i.remember(bridge, after)
	if err := i.settle(ctx); err != nil {
		return Result{}, fmt.Errorf("reconcile bridge %q: the bundle is committed, but %w", bridge, err)
	}
	i.log.Debug("reconciled OVS bridge (new lines canonicalized beside the bundle)", "bridge", bridge, "generation", d.Generation, "result", res.String())
	return *res, nil
}
