package ovs

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Group is an OpenFlow group (services use type select).
type Group struct {
	ID   uint32
	Type string // "select", "all", "indirect" or "ff"
	// SelectionMethod ("hash" or "dp_hash"; "" = OVS's default) and Fields
	// (for "hash", in OVS's canonical order, e.g. ip_src,ip_dst,tcp_dst)
	// apply to select groups.
	SelectionMethod string
	Fields          []string
	// Buckets get bucket_id 0, 1, ... in this order.
	Buckets []Bucket
}

// Bucket is one group bucket.
type Bucket struct {
	Weight  uint16 // select groups only; 0 means OVS's default, 1
	Actions string // ovs-ofctl action syntax
}

// GroupRange is the span of group IDs this package owns on a bridge.
type GroupRange struct{ Min, Max uint32 }

func (r GroupRange) contains(id uint32) bool { return id >= r.Min && id <= r.Max }

// render writes the group as ovs-ofctl reads it (and, given canonical
// actions and fields, close to how dump-groups prints it).
func (g Group) render(actions []string) string {
	var b strings.Builder
	b.WriteString("group_id=" + strconv.FormatUint(uint64(g.ID), 10) + ",type=" + g.Type)
	if g.SelectionMethod != "" {
		b.WriteString(",selection_method=" + g.SelectionMethod)
	}
	if len(g.Fields) > 0 {
		b.WriteString(",fields(" + strings.Join(g.Fields, ",") + ")")
	}
	for k, bk := range g.Buckets {
		b.WriteString(",bucket=bucket_id:" + strconv.Itoa(k))
		if g.Type == "select" && bk.Weight != 0 && bk.Weight != 1 {
			b.WriteString(",weight:" + strconv.FormatUint(uint64(bk.Weight), 10))
		}
		b.WriteString(",actions=" + actions[k])
	}
	return b.String()
}

// DumpGroups returns the bridge's groups by ID, in dump-groups text.
func (i *Instance) DumpGroups(ctx context.Context, bridge string) (map[uint32]string, error) {
	out, err := i.Ofctl(ctx, "-O", "OpenFlow15", "--no-names", "dump-groups", i.mgmt(bridge))
	if err != nil {
		return nil, fmt.Errorf("dump groups of bridge %q: %w", bridge, err)
	}
	groups := map[uint32]string{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, "group_id=")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(rest, ",")
		id, err := strconv.ParseUint(n, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("dump groups of bridge %q: parse %q: %w", bridge, line, err)
		}
		groups[uint32(id)] = line
	}
	return groups, nil
}

// CanonBridge is the scratch bridge (netdev, no ports, no flows) in which
// groups are canonicalized: OVS prints group bucket actions as it prints
// flow actions, but `ovs-ofctl parse-flows` cannot stand in for it here,
// because a flow checks actions against its match (ct(nat) needs "ip")
// and a bucket has no match, and `ovs-ofctl parse-group` takes one group
// per process (9 ms each). So new group texts take one round trip through
// this bridge: one bundle, one dump.
const CanonBridge = "sdn-canon"

// canonGroups returns the canonical (dump-groups) text of each group, from
// the cache or through CanonBridge. Callers hold i.mu.
// texts are the groups' input texts (groupTexts).
func (i *Instance) canonGroups(ctx context.Context, groups []Group, texts []string) ([]string, error) {
	out := make([]string, len(groups))
	var lines []string
	var missing []int
	for k := range groups {
		if c, ok := i.gcanon[texts[k]]; ok {
			out[k] = c
			continue
		}
		missing = append(missing, k)
		lines = append(lines, "group add "+texts[k])
	}
	if len(missing) == 0 {
		return out, nil
	}
	if err := i.EnsureBridge(ctx, BridgeConfig{Name: CanonBridge, DatapathType: "netdev"}); err != nil {
		return nil, err
	}
	ops := []op{{line: "group delete group_id=all"}}
	for j, k := range missing {
		ops = append(ops, op{line: lines[j], group: &groups[k]})
	}
	if err := i.bundle(ctx, CanonBridge, ops); err != nil {
		var be *BundleError
		if errors.As(err, &be) {
			be.Bridge = "" // the caller names the real bridge
		}
		return nil, err
	}
	dumped, err := i.DumpGroups(ctx, CanonBridge)
	if err != nil {
		return nil, err
	}
	if i.gcanon == nil || len(i.gcanon) > 2*len(groups)+1024 {
		i.gcanon = map[string]string{}
	}
	for _, k := range missing {
		c, ok := dumped[groups[k].ID]
		if !ok {
			return nil, fmt.Errorf("canonicalize group %d: OVS accepted but did not list it on bridge %q", groups[k].ID, CanonBridge)
		}
		out[k], i.gcanon[texts[k]] = c, c
	}
	return out, nil
}

// input is the group as we hand it to ovs-ofctl.
func (g Group) input() string {
	actions := make([]string, len(g.Buckets))
	for k, b := range g.Buckets {
		actions[k] = b.Actions
	}
	return g.render(actions)
}

// planGroups diffs the owned groups on the bridge against d.Groups.
// texts are d.Groups' input texts (groupTexts).
func (i *Instance) planGroups(ctx context.Context, bridge string, d Desired, texts []string, known map[uint32]string, res *Result) (adds, dels []op, err error) {
	for k, g := range d.Groups {
		if !d.OwnedGroups.contains(g.ID) {
			return nil, nil, fmt.Errorf("reconcile bridge %q: group %d lies outside the owned range %d-%d", bridge, g.ID, d.OwnedGroups.Min, d.OwnedGroups.Max)
		}
		if strings.ContainsAny(texts[k], "\n\r") {
			return nil, nil, fmt.Errorf("reconcile bridge %q: group %d: actions must be one line", bridge, g.ID)
		}
	}
	current, canon, err := i.currentGroups(ctx, bridge, d, texts, known)
	if err != nil {
		return nil, nil, err
	}
	want := map[uint32]bool{}
	for gi := range d.Groups {
		g := &d.Groups[gi]
		if want[g.ID] {
			return nil, nil, fmt.Errorf("reconcile bridge %q: group %d is desired twice", bridge, g.ID)
		}
		want[g.ID] = true
		have, ok := current[g.ID]
		switch {
		case ok && have == canon[gi]:
			res.GroupsUnchanged++
			continue
		case ok:
			res.GroupsModified++
		default:
			res.GroupsAdded++
		}
		adds = append(adds, op{line: "group add_or_mod " + texts[gi], group: g})
	}
	var ids []uint32
	for id := range current {
		if d.OwnedGroups.contains(id) && !want[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		res.GroupsDeleted++
		dels = append(dels, op{line: fmt.Sprintf("group delete group_id=%d", id), group: &Group{ID: id}})
	}
	return adds, dels, nil
}

// currentGroups returns the owned groups on the bridge and, in the same
// form, the desired ones: by input text from what the last reconcile left
// (known) when d.Trusted and that is known, else dumped and canonicalized.
func (i *Instance) currentGroups(ctx context.Context, bridge string, d Desired, texts []string, known map[uint32]string) (current map[uint32]string, want []string, err error) {
	if known != nil && d.Trusted {
		return known, texts, nil
	}
	if want, err = i.canonGroups(ctx, d.Groups, texts); err != nil {
		return nil, nil, fmt.Errorf("reconcile bridge %q: %w", bridge, err)
	}
	if current, err = i.DumpGroups(ctx, bridge); err != nil {
		return nil, nil, err
	}
	return current, want, nil
}

var groupRef = regexp.MustCompile(`group:(\d+)`)

// checkGroupRefs refuses desired flows that point to an owned group that is
// not desired: OVS would refuse them or, if the group exists now, delete
// them together with the group.
func checkGroupRefs(d Desired, canon []canonFlow) error {
	want := map[uint64]bool{}
	for _, g := range d.Groups {
		want[uint64(g.ID)] = true
	}
	for k, c := range canon[:len(d.Flows)] {
		for _, m := range groupRef.FindAllStringSubmatch(c.actions, -1) {
			id, _ := strconv.ParseUint(m[1], 10, 32)
			if d.OwnedGroups.contains(uint32(id)) && !want[id] {
				return &FlowError{Flow: d.Flows[k], Reason: fmt.Sprintf("points to group %d, which is in the owned range but not desired", id)}
			}
		}
	}
	return nil
}
