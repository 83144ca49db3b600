package ovs

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestApplyGroupsAndFlows(t *testing.T) {
	t.Parallel()
	inst := startTestInstance(t, "")
	ctx := testCtx(t)
	const br = "br-grp"
	mustBridge(t, inst, br)
	// A group outside our range, e.g. someone's by hand: never touched.
	if _, err := inst.Ofctl(ctx, "-O", "OpenFlow15", "add-group", br, "group_id=5,type=all,bucket=actions=drop"); err != nil {
		t.Fatal(err)
	}
	owned := GroupRange{Min: 1000, Max: 1999}
	svc := Group{ID: 1000, Type: "select", SelectionMethod: "hash", Fields: []string{"ip_src", "ip_dst", "tcp_dst"},
		Buckets: []Bucket{
			{Weight: 100, Actions: "ct(commit,table=20,zone=1,nat(dst=10.128.0.5:8080))"},
			{Actions: "load:0x1->NXM_NX_REG3[],ct(commit,table=20,zone=1,nat(dst=10.128.2.7:8080))"},
		}}
	flood := Group{ID: 1001, Type: "all", Buckets: []Bucket{{Actions: "output:1"}, {Actions: ""}}}
	flows := []Flow{
		{Table: 10, Priority: 100, Match: "tcp,nw_dst=172.30.0.10,tp_dst=80", Actions: "group:1000"},
		{Table: 10, Priority: 90, Match: "arp", Actions: "group:1001"},
		{Table: 10, Priority: 80, Match: "ip", Actions: "group:5"},
	}
	d := Desired{Generation: 1, Flows: flows, Groups: []Group{svc, flood}, OwnedGroups: owned}
	apply := func(d Desired, want Result) {
		t.Helper()
		got, err := inst.Apply(ctx, br, d)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("Apply = %v; want %v", got, want)
		}
	}
	apply(d, Result{Added: 3, GroupsAdded: 2})
	apply(d, Result{Unchanged: 3, GroupsUnchanged: 2})

	// An endpoint goes: the group changes, the flow stays.
	svc.Buckets = svc.Buckets[:1]
	d.Groups = []Group{svc, flood}
	apply(d, Result{Unchanged: 3, GroupsModified: 1, GroupsUnchanged: 1})
	groups, err := inst.DumpGroups(ctx, br)
	if err != nil {
		t.Fatal(err)
	}
	const want1000 = "group_id=1000,type=select,selection_method=hash,fields(ip_src,ip_dst,tcp_dst)," +
		"bucket=bucket_id:0,weight:100,actions=ct(commit,table=20,zone=1,nat(dst=10.128.0.5:8080))"
	if groups[1000] != want1000 || groups[5] == "" {
		t.Errorf("groups = %v; want 1000 = %q and group 5 untouched", groups, want1000)
	}

	// A flow may not point to an owned group that is going away.
	d2 := d
	d2.Groups = []Group{flood}
	var fe *FlowError
	_, err = inst.Apply(ctx, br, d2)
	if !errors.As(err, &fe) || fe.Flow != flows[0] {
		t.Errorf("Apply with a flow to a deleted group: err = %v; want a FlowError naming %v", err, flows[0])
	}

	// The service goes: flow and group go in one bundle.
	d.Flows, d.Groups = flows[1:], []Group{flood}
	apply(d, Result{Deleted: 1, Unchanged: 2, GroupsDeleted: 1, GroupsUnchanged: 1})
	groups, _ = inst.DumpGroups(ctx, br)
	if _, ok := groups[1000]; ok || len(groups) != 2 {
		t.Errorf("groups after delete = %v; want 1001 and 5", groups)
	}

	// Groups alone: flows stay.
	res, err := inst.ReconcileGroups(ctx, br, owned, []Group{flood, {ID: 1002, Type: "indirect", Buckets: []Bucket{{Actions: "output:2"}}}})
	if err != nil || res != (Result{GroupsAdded: 1, GroupsUnchanged: 1}) {
		t.Fatalf("ReconcileGroups = %v, %v", res, err)
	}
	if all, _ := inst.DumpFlows(ctx, br, TagCookie(), TagMask); len(all) != 2 {
		t.Errorf("ReconcileGroups touched flows: %v", all)
	}

	// Bad groups are refused, naming the group, before touching the bridge.
	for _, g := range []Group{
		{ID: 1003, Type: "ff", Buckets: []Bucket{{Actions: "output:1"}}},
		{ID: 1003, Type: "select", Buckets: []Bucket{{Actions: "bogus"}}},
	} {
		_, err := inst.ReconcileGroups(ctx, br, owned, []Group{flood, g})
		var be *BundleError
		if !errors.As(err, &be) || be.Group == nil || be.Group.ID != 1003 {
			t.Errorf("ReconcileGroups with bad group %+v: err = %v; want a BundleError naming group 1003", g, err)
		}
	}
	if _, err := inst.ReconcileGroups(ctx, br, owned, []Group{{ID: 7, Type: "all"}}); err == nil || !strings.Contains(err.Error(), "outside the owned range") {
		t.Errorf("group outside the range: err = %v", err)
	}
}

// A trusted reconcile diffs against what the last one left: it sends the
// changed group or flow only, does not see a change made behind its back
// (the next full reconcile repairs that), and after a failed bundle reads
// the bridge again.
func TestTrustedReconciles(t *testing.T) {
	t.Parallel()
	inst := startTestInstance(t, "")
	ctx := testCtx(t)
	const br = "br-trust"
	mustBridge(t, inst, br)
	owned := GroupRange{Min: 1000, Max: 1999}
	group := func(id uint32, ep string) Group {
		return Group{ID: id, Type: "select", SelectionMethod: "hash", Fields: []string{"ip_src", "ip_dst", "tcp_dst"},
			Buckets: []Bucket{{Actions: "ct(commit,table=20,zone=1,nat(dst=" + ep + ":8080))"}}}
	}
	flows := []Flow{{Table: 10, Priority: 100, Match: "tcp,nw_dst=172.30.0.10,tp_dst=80", Actions: "group:1000"}}
	d := Desired{Generation: 1, Flows: flows, Groups: []Group{group(1000, "10.128.0.5"), group(1001, "10.128.0.6")}, OwnedGroups: owned, Trusted: true}
	apply := func(d Desired, want Result) {
		t.Helper()
		got, err := inst.Apply(ctx, br, d)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("Apply = %v; want %v", got, want)
		}
	}
	// Nothing known yet: the bridge is read.
	apply(d, Result{Added: 1, GroupsAdded: 2})
	d.Groups[1] = group(1001, "10.128.0.7")
	apply(d, Result{Unchanged: 1, GroupsModified: 1, GroupsUnchanged: 1})
	if g, _ := inst.DumpGroups(ctx, br); !strings.Contains(g[1001], "10.128.0.7") {
		t.Fatalf("group 1001 = %q, want the new endpoint", g[1001])
	}
	// Changed behind sdn's back: a trusted reconcile does not see it, a
	// full one repairs it.
	if _, err := inst.Ofctl(ctx, "-O", "OpenFlow15", "mod-group", br, "group_id=1001,type=select,bucket=actions=drop"); err != nil {
		t.Fatal(err)
	}
	apply(d, Result{Unchanged: 1, GroupsUnchanged: 2})
	full := d
	full.Trusted = false
	apply(full, Result{Unchanged: 1, GroupsModified: 1, GroupsUnchanged: 1})
	// Flows the same way: a new one is added, one deleted behind sdn's back
	// is not seen by a trusted reconcile, and a full one puts it back.
	d.Flows = append(slices.Clone(flows), Flow{Table: 10, Priority: 90, Match: "udp,nw_dst=172.30.0.10,tp_dst=53", Actions: "group:1001"})
	apply(d, Result{Added: 1, Unchanged: 1, GroupsUnchanged: 2})
	if _, err := inst.Ofctl(ctx, "-O", "OpenFlow15", "del-flows", br, "--strict", "table=10,priority=90,udp,nw_dst=172.30.0.10,tp_dst=53"); err != nil {
		t.Fatal(err)
	}
	apply(d, Result{Unchanged: 2, GroupsUnchanged: 2})
	full = d
	full.Trusted = false
	apply(full, Result{Added: 1, Unchanged: 1, GroupsUnchanged: 2})
	d.Flows = flows
	apply(d, Result{Deleted: 1, Unchanged: 1, GroupsUnchanged: 2})
	// A failed bundle (a flow to a group no one declares) forgets what is
	// known: the next trusted reconcile reads the bridge, and sees group
	// 1001 deleted behind its back.
	bad := d
	bad.Flows = append(slices.Clone(flows), Flow{Table: 10, Priority: 90, Match: "ip", Actions: "group:1500"})
	if _, err := inst.Apply(ctx, br, bad); err == nil {
		t.Fatal("a flow to an undeclared owned group was accepted")
	}
	if _, err := inst.Ofctl(ctx, "-O", "OpenFlow15", "del-groups", br, "group_id=1001"); err != nil {
		t.Fatal(err)
	}
	apply(d, Result{Unchanged: 1, GroupsAdded: 1, GroupsUnchanged: 1})

	// ovs-vswitchd restarted (another pid) comes back with the bridge but
	// none of its flows or groups: a trusted reconcile reads the bridge.
	restartVswitchd(ctx, t, inst)
	apply(d, Result{Added: 1, GroupsAdded: 2})
}
