package cluster

import (
	"strings"
	"testing"
	"time"
)

// TestRealizationLearnFillsGapsOnly: a report relayed by a heartbeat is
// taken for a host with no report yet, moves a successful one forward
// (a filtered watch's PROGRESS), and never overrides an error, goes back,
// or brings an error over a report.
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
	if r.Learn("h1", 6, "", at) {
		t.Fatal("Learn moved a host back")
	}
	if !r.Learn("h1", 9, "", at) {
		t.Fatal("Learn did not move a successful report forward")
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

// TestRealizationNeeds: with a filtered watch a host reports only the
// revisions that concerned it; it has realized R once it reported the
// latest of those up to R (or the latest that concerned every host).
func TestRealizationNeeds(t *testing.T) {
	r := NewRealization()
	at := time.Unix(100, 0)
	one := func(h string) map[string]struct{} { return map[string]struct{}{h: {}} }
	r.Need(10, false, nil, true) // the feed started at 10: everyone needs it
	r.Report("h1", 10, "", at)
	r.Report("h2", 10, "", at)
	r.Need(11, false, one("h1"), false)
	r.Need(12, true, nil, false)
	r.Need(13, false, one("h2"), false)
	r.Need(14, false, nil, false) // concerned no one
	cases := []struct {
		rev  uint64
		want string
	}{{10, ""}, {11, "h1"}, {12, "h1 h2"}, {13, "h1 h2"}, {14, "h1 h2"}}
	for _, c := range cases {
		if got := strings.Join(r.Pending([]string{"h1", "h2"}, c.rev), " "); got != c.want {
			t.Errorf("pending at %d: %q, want %q", c.rev, got, c.want)
		}
	}
	r.Report("h1", 12, "", at)
	r.Report("h2", 13, "", at)
	if p := r.Pending([]string{"h1", "h2"}, 14); len(p) != 0 {
		t.Errorf("pending at 14 after h1 reported 12 and h2 13: %v", p)
	}
	if n := r.Needed("h1", 14); n != 0 {
		t.Errorf("h1 still needs %d for 14, want 0 (current)", n)
	}
	r.Need(15, false, one("h2"), false)
	if n := r.Needed("h2", 15); n != 15 {
		t.Errorf("h2 needs %d for 15, want 15", n)
	}
	if p := r.Pending([]string{"h3"}, 14); len(p) != 1 {
		t.Errorf("a host that never reported is not pending: %v", p)
	}
	// A revision the feed has not told about yet: whom it concerns is
	// unknown, so every host is pending (a race seen in a test: WaitRealized
	// asked before the feed took the revision its Apply committed).
	if p := r.Pending([]string{"h1", "h2"}, 16); len(p) != 2 {
		t.Errorf("pending at 16, not known yet: %v", p)
	}
}

// TestSpansMergeConservatively: a silent host's list stays bounded, and
// what merging forgets makes a revision inside a merged span need itself.
func TestSpansMergeConservatively(t *testing.T) {
	var s spans
	for rev := uint64(2); rev <= 2*(maxSpans+10); rev += 2 {
		s = s.add(rev)
	}
	if len(s) != maxSpans {
		t.Fatalf("%d spans, want %d", len(s), maxSpans)
	}
	if s[0].lo != 2 {
		t.Fatalf("oldest span %+v, want it to start at 2", s[0])
	}
	if n := s.need(3); n != 3 {
		t.Errorf("need(3) inside the merged span = %d, want 3", n)
	}
	last := s[len(s)-1].hi
	if n := s.need(last + 1); n != last {
		t.Errorf("need past the last = %d, want %d", n, last)
	}
	if a := s.after(last); len(a) != 0 {
		t.Errorf("after the last: %v", a)
	}
	if n := s.need(1); n != 0 {
		t.Errorf("need before any = %d", n)
	}
}
