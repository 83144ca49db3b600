package suites

import (
	"testing"
	"time"

	"github.com/sdn-dev/sdn/bench"
	"github.com/sdn-dev/sdn/bench/scalesim"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func TestPercentile(t *testing.T) {
	ds := func(ms ...int) []time.Duration {
		var out []time.Duration
		for _, m := range ms {
			out = append(out, time.Duration(m)*time.Millisecond)
		}
		return out
	}
	for _, tc := range []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ds(7), 99, 7 * time.Millisecond},
		{ds(4, 1, 3, 2), 50, 2 * time.Millisecond}, // nearest rank: the 2nd of 4
		{ds(4, 1, 3, 2), 100, 4 * time.Millisecond},
		{ds(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
		{ds(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{ds(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 1, 1 * time.Millisecond},
	} {
		if got := percentile(tc.in, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tc.in, tc.p, got, tc.want)
		}
	}
	in := ds(3, 1, 2)
	percentile(in, 50)
	if in[0] != 3*time.Millisecond {
		t.Error("percentile sorted its input")
	}
}

func TestParseStatTicks(t *testing.T) {
	// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
	stat := "4242 (sdnd (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 567 0 0 20 0 12 0 100 0\n"
	if got, err := parseStatTicks([]byte(stat)); err != nil || got != 1801 {
		t.Errorf("parseStatTicks = %d, %v; want 1801", got, err)
	}
	for _, bad := range []string{"4242 sdnd S 1", "4242 (sdnd) S 1 2 3", "4242 (sdnd) S 1 4242 4242 0 -1 4194560 1000 0 0 0 x 567 0"} {
		if _, err := parseStatTicks([]byte(bad)); err == nil {
			t.Errorf("parseStatTicks(%q) succeeded", bad)
		}
	}
}

// newTestHosts returns n simulated hosts (not started: nothing is sent).
func newTestHosts(t *testing.T, n int) []*scalesim.Host {
	t.Helper()
	sim, err := scalesim.New(scalesim.Config{Servers: []string{"127.0.0.1:1"}, Hosts: n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Stop)
	return sim.Hosts()
}

func delta(rev uint64, cs ...*sdnv1.ObjectChange) *sdnv1.WatchEvent {
	return &sdnv1.WatchEvent{Type: sdnv1.WatchEventType_WATCH_EVENT_TYPE_DELTA, Revision: rev, Changes: cs}
}

func TestFanoutOthers(t *testing.T) {
	hosts := newTestHosts(t, 4)
	f := newFanout(4)
	id := f.watch("scale/w")
	t0 := time.Now()
	put := &sdnv1.ObjectChange{Kind: "workload", Name: "scale/w", Workload: &sdnv1.Workload{Name: "w", Network: "scale", Node: hosts[0].Name}}
	f.Event(hosts[0], delta(10, put), t0.Add(time.Millisecond))
	// Host 1 gets a bare delete of it, host 2 an empty delta at its
	// revision, host 3 only a progress event.
	f.Event(hosts[1], delta(10, &sdnv1.ObjectChange{Kind: "workload", Name: "scale/w", Op: sdnv1.ChangeOp_CHANGE_OP_DELETE}), t0)
	f.Event(hosts[2], delta(10), t0)
	f.Event(hosts[3], &sdnv1.WatchEvent{Type: sdnv1.WatchEventType_WATCH_EVENT_TYPE_PROGRESS, Revision: 10}, t0)
	if at, ok := f.first(0, id); !ok || !at.Equal(t0.Add(time.Millisecond)) {
		t.Errorf("first(0) = %v, %v", at, ok)
	}
	if _, ok := f.first(2, id); ok {
		t.Error("host 2 never received the workload")
	}
	if got := f.others(0, id, 10); got != 2 {
		t.Errorf("others = %d, want 2 (a bare delete and an empty delta; not a progress event)", got)
	}
}

func TestBurstWatchDone(t *testing.T) {
	hosts := newTestHosts(t, 3)
	keys := []string{"scale/a", "scale/b", "scale/c"}
	b := newBurstWatch(3, keys, []int{0, 0, 1})
	put := func(k string, h int) *sdnv1.ObjectChange {
		return &sdnv1.ObjectChange{Kind: "workload", Name: k, Workload: &sdnv1.Workload{Node: hosts[h].Name}}
	}
	t0 := time.Now()
	b.Event(hosts[0], delta(5, put("scale/a", 0)), t0)
	b.Event(hosts[1], delta(5, &sdnv1.ObjectChange{Kind: "workload", Name: "scale/a", Op: sdnv1.ChangeOp_CHANGE_OP_DELETE}), t0)
	if n, _ := b.done(); n != 1 { // host 2 has nothing placed there
		t.Errorf("done = %d hosts, want 1", n)
	}
	b.Event(hosts[1], delta(6, put("scale/c", 1)), t0.Add(2*time.Second))
	b.Event(hosts[0], delta(7, put("scale/b", 0)), t0.Add(time.Second))
	b.Event(hosts[0], delta(8, put("scale/b", 0)), t0.Add(5*time.Second)) // again: not later
	n, last := b.done()
	if n != 3 || !last.Equal(t0.Add(2*time.Second)) {
		t.Errorf("done = %d hosts, last %v; want 3, t0+2s", n, last.Sub(t0))
	}
}

// Every figure of the batch is measured by some variant, and the
// one-server variants do not claim the storm's.
func TestScaleSuiteShape(t *testing.T) {
	s := Scale()
	if err := bench.Validate([]bench.Suite{s}); err != nil {
		t.Fatal(err)
	}
	for _, v := range s.Batches[0].Variants {
		one := len(v.Figures) > 0
		for _, f := range v.Figures {
			if f == scaleFigStorm {
				t.Errorf("variant %q measures the storm", v.Name)
			}
		}
		if one != (v.Name[len(v.Name)-len("1 server"):] == "1 server") {
			t.Errorf("variant %q: figures %v", v.Name, v.Figures)
		}
	}
}
