package cluster

import (
	"testing"
	"time"
)

// TestRealizationLearnFillsGapsOnly: a report relayed by a heartbeat is
// taken only for a host with no report yet, and never overrides one.
func TestRealizationLearnFillsGapsOnly(t *testing.T) {
	r := NewRealization()
	at := time.Unix(100, 0)
	ch := r.Changed()
	if !r.Learn("h1", 7, "", at) {
		t.Fatal("Learn on an unknown host was not taken")
	}
	select {
	case <-ch:
	default:
		t.Error("Learn did not signal a change")
	}
	if got, _ := r.Get("h1"); got.Revision != 7 {
		t.Fatalf("after Learn: %+v", got)
	}
	if r.Learn("h1", 9, "", at) {
		t.Fatal("Learn overrode a known host")
	}
	r.Report("h1", 10, "", at)
	if r.Learn("h1", 3, "boom", at) {
		t.Fatal("Learn overrode a report")
	}
	if got, _ := r.Get("h1"); got.Revision != 10 || got.Error != "" {
		t.Fatalf("after a report and a stale Learn: %+v; want revision 10, no error", got)
	}
	// An error Learned for an unknown host is kept as the host's state.
	if !r.Learn("h2", 4, "ovs down", at) {
		t.Fatal("Learn on an unknown host was not taken")
	}
	if got, _ := r.Get("h2"); got.Error != "ovs down" || got.Revision != 0 {
		t.Fatalf("h2: %+v; want the error and no realized revision", got)
	}
	if p := r.Pending([]string{"h1", "h2"}, 5); len(p) != 1 || p[0] != "h2" {
		t.Fatalf("pending at 5: %v", p)
	}
}
