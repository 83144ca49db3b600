package ovs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Desired is the complete OpenFlow state this package keeps on one bridge.
type Desired struct {
	// Generation goes into every flow's cookie; bump it on every agent start.
	Generation uint16
	Flows      []Flow
	// Groups are managed only when OwnedGroups is set: every group with an
	// ID in that range that is not in Groups is deleted.
	Groups      []Group
	OwnedGroups GroupRange
	// Trusted diffs Flows and Groups against what this Instance's last
	// successful reconcile of the bridge left there instead of reading
	// them back from OVS (known.go): for frequent changes between full
	// reconciles, which still read the world. With nothing remembered (a
	// first reconcile, or after a failure) it reads the bridge as usual.
	Trusted bool

	// lines are Flows' canonInputs, rendered once per reconcile (apply):
	// with 12,000 flows each rendering cost milliseconds.
	lines []string
}

// line returns canonInput(d.Flows[k]).
func (d *Desired) line(k int) string {
	if len(d.lines) == len(d.Flows) {
		return d.lines[k]
	}
	return canonInput(d.Flows[k])
}

// Result counts what a reconcile did. Modified flows were replaced in place
// (an OpenFlow add of an existing table+priority+match) because their
// actions or cookie (generation, category) changed.
type Result struct {
	Added, Modified, Deleted, Unchanged                         int
	GroupsAdded, GroupsModified, GroupsDeleted, GroupsUnchanged int
}

// Changed reports whether the reconcile changed anything.
func (r Result) Changed() bool {
	return r.Added+r.Modified+r.Deleted+r.GroupsAdded+r.GroupsModified+r.GroupsDeleted > 0
}

func (r Result) String() string {
	s := fmt.Sprintf("flows: %d added, %d modified, %d deleted, %d unchanged", r.Added, r.Modified, r.Deleted, r.Unchanged)
	if r.GroupsAdded+r.GroupsModified+r.GroupsDeleted+r.GroupsUnchanged > 0 {
		s += fmt.Sprintf("; groups: %d added, %d modified, %d deleted, %d unchanged",
			r.GroupsAdded, r.GroupsModified, r.GroupsDeleted, r.GroupsUnchanged)
	}
	return s
}

// Reconcile makes our flows on bridge (those with AppTag in their cookie, of
// any generation) exactly desired, stamped with generation gen, in one
// atomic OpenFlow bundle; flows without our tag are left alone. Groups are
// not touched; see Apply.
func (i *Instance) Reconcile(ctx context.Context, bridge string, gen uint16, desired []Flow) (Result, error) {
	return i.apply(ctx, bridge, Desired{Generation: gen, Flows: desired}, true)
}

// ReconcileGroups makes the groups in owned exactly desired, in one atomic
// bundle, and leaves flows alone. Flows that point to a group it deletes
// are deleted by OVS; prefer Apply, which orders both in one bundle.
func (i *Instance) ReconcileGroups(ctx context.Context, bridge string, owned GroupRange, desired []Group) (Result, error) {
	return i.apply(ctx, bridge, Desired{Groups: desired, OwnedGroups: owned}, false)
}

// Apply reconciles flows and (if d.OwnedGroups is set) groups together, in
// one bundle ordered so no packet sees a flow pointing at a missing group:
// new and changed groups, then flow deletes, flow adds, then group deletes.
func (i *Instance) Apply(ctx context.Context, bridge string, d Desired) (Result, error) {
	return i.apply(ctx, bridge, d, true)
}

// op is one line of a bundle file and what it concerns.
type op struct {
	line  string
	flow  *Flow // the desired flow (add) or current flow (delete)
	key   flowKey
	group *Group
}

func (i *Instance) apply(ctx context.Context, bridge string, d Desired, manageFlows bool) (Result, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	var res Result
	var groupAdds, flowDels, flowAdds, groupDels []op
	manageGroups := d.OwnedGroups != (GroupRange{})
	// What the last reconcile left is known again only if this one
	// succeeds (known.go).
	known := i.recall(bridge)
	after := &knownBridge{}
	if manageGroups {
		texts := groupTexts(d.Groups)
		var err error
		if groupAdds, groupDels, err = i.planGroups(ctx, bridge, d, texts, known.groupsIf(d.Trusted), &res); err != nil {
			return Result{}, err
		}
		after.groups = groupInputs(d.Groups, texts)
	}
	if manageFlows {
		d.lines = canonInputs(d.Flows)
		if fresh := i.freshLines(&d); len(fresh) > 0 && known.flowsIf(d.Trusted) != nil && len(groupAdds)+len(groupDels) == 0 {
			return i.applyFreshAndSettle(ctx, bridge, d, known, after, fresh, &res)
		}
		var err error
		if flowDels, flowAdds, after.flows, err = i.planBridgeFlows(ctx, bridge, d, known.flowsIf(d.Trusted), &res); err != nil {
			return Result{}, err
		}
	} else {
		after.flows = known.flowsIf(true)
	}
	ops := slices.Concat(groupAdds, flowDels, flowAdds, groupDels)
	if len(ops) > 0 {
		if err := i.bundle(ctx, bridge, ops); err != nil {
			return Result{}, err
		}
	}
	i.remember(bridge, after)
	if len(ops) == 0 {
		return res, nil
	}
	if err := i.settle(ctx); err != nil {
		return Result{}, fmt.Errorf("reconcile bridge %q: the bundle is committed, but %w", bridge, err)
	}
	i.log.Debug("reconciled OVS bridge", "bridge", bridge, "generation", d.Generation, "result", res.String())
	return res, nil
}

// settle makes the datapath follow the flow tables just committed. OVS
// caches datapath flows (megaflows) and revalidates them in the background
// after a change, up to its revalidation interval (500 ms) later; until
// then packets, new connections included, may still take the old actions.
// A purge empties the cache at once (the next packet of each flow takes the
// slow path through the new tables, and is not dropped), so a reconcile
// returns, and the agent reports its revision realized, only when a
// removed rule stops the very next packet. revalidator/wait was measured
// at ~500 ms per call; purge at ~6 ms, the ovs-appctl process included.
// An unchanged reconcile (a restart, a resync) sends no bundle and purges
// nothing.
func (i *Instance) settle(ctx context.Context) error {
	if _, err := i.Appctl(ctx, "ovs-vswitchd", "revalidator/purge"); err != nil {
		return fmt.Errorf("purging OVS's datapath flow cache (revalidator/purge) failed, so packets may follow the old flows for up to 500 ms: %w", err)
	}
	return nil
}

// planFlows diffs current (our flows as OVS holds them) against desired
// (canon[k] is the canonical form of desired[k]). A flow that is already
// right (same key, actions and cookie category) is left alone whatever
// generation wrote it, so an agent restart with an unchanged state sends
// OVS nothing; the generation in a cookie says which round last wrote that
// flow. It never deletes a flow whose key stays desired: an add replaces it
// in place, cookie and actions at once.
func planFlows(current, desired []Flow, canon []canonFlow, gen uint16, res *Result) (dels, adds []op, after []Flow, err error) {
	cur := make(map[flowKey]Flow, len(current))
	for _, f := range current {
		cur[f.key()] = f
	}
	want := make(map[flowKey]int, len(desired))
	for k := range desired {
		c := canon[k]
		cookie := MakeCookie(gen, CookieCategory(desired[k].Cookie))
		if j, dup := want[c.key]; dup {
			if canon[j].actions == c.actions && CookieCategory(desired[j].Cookie) == CookieCategory(desired[k].Cookie) {
				continue // the same flow twice
			}
			return nil, nil, nil, fmt.Errorf("desired flows %s and %s are the same OpenFlow flow (table, priority and match) with different actions or cookies; OVS can hold only one",
				desired[j], desired[k])
		}
		want[c.key] = k
		if f, ok := cur[c.key]; ok && f.Actions == c.actions && CookieTag(f.Cookie) == AppTag && CookieCategory(f.Cookie) == CookieCategory(cookie) {
			res.Unchanged++
			after = append(after, f)
			continue
		} else if ok {
			res.Modified++
		} else {
			res.Added++
		}
		add := desired[k]
		add.Cookie = cookie
		adds = append(adds, op{line: "flow add " + add.String(), flow: &desired[k], key: c.key})
		after = append(after, Flow{Table: c.key.table, Priority: c.key.priority, Match: c.key.match, Actions: c.actions, Cookie: cookie})
	}
	for _, f := range current {
		if _, ok := want[f.key()]; ok {
			continue
		}
		res.Deleted++
		del := fmt.Sprintf("flow delete_strict table=%d,priority=%d,", f.Table, f.Priority)
		if f.Match != "" {
			del += f.Match + ","
		}
		del += fmt.Sprintf("cookie=%#x/-1", f.Cookie)
		dels = append(dels, op{line: del, flow: &f, key: f.key()})
	}
	slices.SortFunc(dels, func(a, b op) int { return cmpKey(a.key, b.key) })
	return dels, adds, after, nil
}

func cmpKey(a, b flowKey) int {
	return cmp.Or(cmp.Compare(a.table, b.table), cmp.Compare(b.priority, a.priority), strings.Compare(a.match, b.match))
}

// bundle runs ops as one atomic, ordered OpenFlow bundle. OVS commits all or
// nothing, and packets see either the old or the new tables, never a mix.
// Our flows name ports by number, so ovs-ofctl runs with --no-names:
// without it, it first asks the switch for its port and table names
// (OFPMP_PORT_DESC, OFPMP_TABLE_FEATURES), which made a one-group bundle
// take 19 ms instead of 5 (a process's start-up).
func (i *Instance) bundle(ctx context.Context, bridge string, ops []op) error {
	var b strings.Builder
	for _, o := range ops {
		b.WriteString(o.line)
		b.WriteByte('\n')
	}
	_, err := i.runInput(ctx, b.String(), "ovs-ofctl", "-O", "OpenFlow15", "--no-names", "bundle", i.mgmt(bridge), "-")
	if err != nil {
		return explainBundleError(bridge, ops, err)
	}
	return nil
}

var (
	bundleLineErr = regexp.MustCompile(`-:(\d+): (.*)`)
	flowModErr    = regexp.MustCompile(`Error (\S+) for: OFPT_FLOW_MOD \([^)]*\) \([^)]*\): (.*)`)
	groupModErr   = regexp.MustCompile(`Error (\S+) for: OFPT_GROUP_MOD \([^)]*\) \([^)]*\):\s*\n?\s*\S+ group_id=(\d+)`)
)

// BundleError is a bundle OVS (or ovs-ofctl, while parsing) refused. Nothing
// of it was applied.
type BundleError struct {
	Bridge string // "" when the bundle went to CanonBridge
	Code   string // OpenFlow error, e.g. OFPBAC_BAD_OUT_GROUP; or ovs-ofctl's message
	Flow   *Flow  // the flow that was refused, if known
	Group  *Group // the group that was refused, if known
	Err    error  // the ovs-ofctl failure
}

func (e *BundleError) Error() string {
	what := "a flow or group"
	switch {
	case e.Flow != nil:
		what = "flow " + e.Flow.String()
	case e.Group != nil:
		what = fmt.Sprintf("group %d", e.Group.ID)
	}
	msg := fmt.Sprintf("OVS refused %s (%s); nothing was applied: %v", what, e.Code, e.Err)
	if e.Bridge != "" {
		msg = fmt.Sprintf("reconcile bridge %q: %s", e.Bridge, msg)
	}
	return msg
}

func (e *BundleError) Unwrap() error { return e.Err }

func explainBundleError(bridge string, ops []op, err error) error {
	be := &BundleError{Bridge: bridge, Err: err, Code: "unknown"}
	var ce *CommandError
	if !errors.As(err, &ce) {
		return be
	}
	if m := flowModErr.FindStringSubmatch(ce.Stderr); m != nil {
		be.Code = m[1]
		if f, perr := parseFlowMod(m[2]); perr == nil {
			for _, o := range ops {
				if o.flow != nil && o.key == f.key() {
					be.Flow = o.flow
					break
				}
			}
		}
	} else if m := groupModErr.FindStringSubmatch(ce.Stderr); m != nil {
		be.Code = m[1]
		id, _ := strconv.ParseUint(m[2], 10, 32)
		for _, o := range ops {
			if o.group != nil && uint64(o.group.ID) == id {
				be.Group = o.group
				break
			}
		}
	} else if m := bundleLineErr.FindStringSubmatch(ce.Stderr); m != nil {
		be.Code = m[2]
		if n, _ := strconv.Atoi(m[1]); n >= 1 && n <= len(ops) {
			be.Flow, be.Group = ops[n-1].flow, ops[n-1].group
		}
	}
	return be
}
