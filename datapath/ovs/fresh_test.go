package ovs

import (
	"slices"
	"testing"
)

// TestTrustedFreshLines: a trusted reconcile with lines never canonicalized
// before (bundle and parse-flows side by side) adds the new flows, replaces
// one whose actions changed and deletes one no longer desired, counts them
// as the plain path does, and leaves the bridge known exactly: a full
// reconcile afterwards finds nothing to change, and so does the next trusted
// one.
func TestTrustedFreshLines(t *testing.T) {
	t.Parallel()
	inst := startTestInstance(t, "")
	ctx := testCtx(t)
	const br = "br-fresh"
	mustBridge(t, inst, br)
	base := []Flow{
		{Table: 10, Priority: 100, Match: "ip,nw_dst=10.128.0.2", Actions: "output:1"},
		{Table: 10, Priority: 100, Match: "ip,nw_dst=10.128.0.3", Actions: "output:2"},
		{Table: 10, Priority: 100, Match: "ip,nw_dst=10.128.0.4", Actions: "output:3"},
	}
	d := Desired{Generation: 1, Flows: base, Trusted: true}
	if _, err := inst.Apply(ctx, br, d); err != nil {
		t.Fatal(err)
	}
	d.Flows = []Flow{
		base[0],
		{Table: 10, Priority: 100, Match: "ip,nw_dst=10.128.0.3", Actions: "output:4"}, // changed in place
		{Table: 10, Priority: 100, Match: "ip,nw_dst=10.128.0.5", Actions: "output:5"}, // new
		{Table: 20, Priority: 5, Match: "arp,arp_tpa=10.128.0.5", Actions: "output:5"}, // new
	} // 10.128.0.4 gone
	if fresh := inst.freshLines(&d); len(fresh) != 3 {
		t.Fatalf("fresh lines %v; want 3", fresh)
	}
	got, err := inst.Apply(ctx, br, d)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Result{Added: 2, Modified: 1, Deleted: 1, Unchanged: 1}); got != want {
		t.Errorf("trusted reconcile with fresh lines = %v; want %v", got, want)
	}
	dump, err := inst.DumpFlows(ctx, br, TagCookie(), TagMask)
	if err != nil {
		t.Fatal(err)
	}
	var have []string
	for _, f := range dump {
		have = append(have, f.Match+" "+f.Actions)
	}
	slices.Sort(have)
	want := []string{"arp,arp_tpa=10.128.0.5 output:5", "ip,nw_dst=10.128.0.2 output:1", "ip,nw_dst=10.128.0.3 output:4", "ip,nw_dst=10.128.0.5 output:5"}
	if !slices.Equal(have, want) {
		t.Errorf("bridge holds %q; want %q", have, want)
	}
	if r, err := inst.Apply(ctx, br, d); err != nil || r != (Result{Unchanged: 4}) {
		t.Errorf("the next trusted reconcile = %v, %v; want 4 unchanged", r, err)
	}
	full := d
	full.Trusted = false
	if r, err := inst.Apply(ctx, br, full); err != nil || r != (Result{Unchanged: 4}) {
		t.Errorf("a full reconcile afterwards = %v, %v; want 4 unchanged", r, err)
	}
}
