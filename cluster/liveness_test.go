package cluster

import (
	"strings"
	"testing"
	"time"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time       { return c.t }
func (c *fakeClock) step(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock            { return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }
func upNode(name string) *sdnv1.Node      { return &sdnv1.Node{Name: name} }
func downNode(name string, since time.Time) *sdnv1.Node {
	return &sdnv1.Node{Name: name, DownSinceUnixMs: since.UnixMilli()}
}

// decided renders transitions as "host:kind" in order, for comparison.
func decided(trs []Transition) string {
	var s []string
	for _, tr := range trs {
		s = append(s, tr.Host+":"+tr.Kind.String())
	}
	return strings.Join(s, " ")
}

// TestLivenessScenarios drives the tracker through what hosts and leaders
// do, step by step, with a fake clock: down after 30 s, release after 1 h.
func TestLivenessScenarios(t *testing.T) {
	const downAfter, grace = 30 * time.Second, time.Hour
	type step struct {
		advance time.Duration
		lead    uint64   // >0: Lead(term) before deciding
		follow  bool     // Follow() before deciding
		beats   []string // hosts that heartbeat (after advancing)
		nodes   func(c *fakeClock) []*sdnv1.Node
		want    string
	}
	ups := func(names ...string) func(*fakeClock) []*sdnv1.Node {
		return func(*fakeClock) []*sdnv1.Node {
			var ns []*sdnv1.Node
			for _, n := range names {
				ns = append(ns, upNode(n))
			}
			return ns
		}
	}
	start := newFakeClock().t
	for _, tc := range []struct {
		name  string
		never bool
		steps []step
	}{{
		name: "a heartbeating host stays up; a silent one goes down once the down-after time passed",
		steps: []step{
			{lead: 1, nodes: ups("a", "b"), want: ""},
			{advance: 10 * time.Second, beats: []string{"a"}, nodes: ups("a", "b"), want: ""},
			{advance: 19 * time.Second, nodes: ups("a", "b"), want: ""}, // b silent 29 s
			{advance: 1 * time.Second, nodes: ups("a", "b"), want: "b:down"},
			{advance: 5 * time.Second, beats: []string{"a"}, nodes: ups("a", "b"), want: "b:down"}, // until raft says so
		},
	}, {
		name: "a new leader starts every host's clock at its election",
		steps: []step{
			{lead: 1, beats: []string{"a"}, nodes: ups("a"), want: ""},
			{advance: 25 * time.Second, nodes: ups("a"), want: ""},
			// Leadership moves away and comes back in a later term
			// 20 s later: a's last heartbeat (45 s ago) is not held
			// against it.
			{advance: 10 * time.Second, follow: true, nodes: ups("a"), want: ""},
			{advance: 10 * time.Second, lead: 3, nodes: ups("a"), want: ""},
			{advance: 29 * time.Second, nodes: ups("a"), want: ""},
			{advance: 1 * time.Second, nodes: ups("a"), want: "a:down"},
		},
	}, {
		name: "Lead in the same term keeps what was heard",
		steps: []step{
			{lead: 2, beats: []string{"a"}, nodes: ups("a"), want: ""},
			{advance: 31 * time.Second, lead: 2, nodes: ups("a"), want: "a:down"},
		},
	}, {
		name: "a follower decides nothing",
		steps: []step{
			{advance: time.Hour, nodes: ups("a"), want: ""},
			{lead: 1, nodes: ups("a"), want: ""},
			{advance: time.Minute, follow: true, nodes: ups("a"), want: ""},
		},
	}, {
		name: "a down host that heartbeats again comes up",
		steps: []step{
			{lead: 1, nodes: func(c *fakeClock) []*sdnv1.Node { return []*sdnv1.Node{downNode("a", start.Add(-time.Minute))} }, want: ""},
			{advance: time.Second, beats: []string{"a"}, nodes: func(c *fakeClock) []*sdnv1.Node { return []*sdnv1.Node{downNode("a", start.Add(-time.Minute))} }, want: "a:up"},
		},
	}, {
		name: "a down host is released after the grace, once silent for the down-after time under this leader",
		steps: []step{
			// Down for 2 h already when this server is elected: it
			// still gets the down-after time to heartbeat.
			{lead: 1, nodes: func(*fakeClock) []*sdnv1.Node { return []*sdnv1.Node{downNode("a", start.Add(-2*time.Hour))} }, want: ""},
			{advance: 29 * time.Second, nodes: func(*fakeClock) []*sdnv1.Node { return []*sdnv1.Node{downNode("a", start.Add(-2*time.Hour))} }, want: ""},
			{advance: 1 * time.Second, nodes: func(*fakeClock) []*sdnv1.Node { return []*sdnv1.Node{downNode("a", start.Add(-2*time.Hour))} }, want: "a:release"},
		},
	}, {
		name: "a down host within the grace is kept",
		steps: []step{
			{lead: 1, nodes: func(*fakeClock) []*sdnv1.Node { return []*sdnv1.Node{downNode("a", start.Add(-50*time.Minute))} }, want: ""},
			{advance: 9*time.Minute + 59*time.Second, nodes: func(*fakeClock) []*sdnv1.Node { return []*sdnv1.Node{downNode("a", start.Add(-50*time.Minute))} }, want: ""},
			{advance: time.Second, nodes: func(*fakeClock) []*sdnv1.Node { return []*sdnv1.Node{downNode("a", start.Add(-50*time.Minute))} }, want: "a:release"},
		},
	}, {
		name:  "never release",
		never: true,
		steps: []step{
			{lead: 1, nodes: func(*fakeClock) []*sdnv1.Node { return []*sdnv1.Node{downNode("a", start.Add(-48*time.Hour))} }, want: ""},
			{advance: time.Hour, nodes: func(*fakeClock) []*sdnv1.Node { return []*sdnv1.Node{downNode("a", start.Add(-48*time.Hour))} }, want: ""},
		},
	}, {
		name: "a host that came back is marked up, never released",
		steps: []step{
			{lead: 1, nodes: func(*fakeClock) []*sdnv1.Node { return []*sdnv1.Node{downNode("a", start.Add(-2*time.Hour))} }, want: ""},
			{advance: 40 * time.Second, beats: []string{"a"}, nodes: func(*fakeClock) []*sdnv1.Node { return []*sdnv1.Node{downNode("a", start.Add(-2*time.Hour))} }, want: "a:up"},
		},
	}, {
		name: "transitions come in host order",
		steps: []step{
			{lead: 1, nodes: ups("c", "a", "b", "d", "e", "f", "g", "h", "i", "j", "k", "l"), want: ""},
			{advance: 30 * time.Second, beats: []string{"d", "e", "f", "g", "h", "i", "j", "k", "l"},
				nodes: ups("c", "a", "b", "d", "e", "f", "g", "h", "i", "j", "k", "l"), want: "a:down b:down c:down"},
		},
	}, {
		// More than a quarter of the hosts silent at once: the leader's
		// fault more likely than theirs (heartbeats queued behind a busy
		// server); none is marked down, and it goes on when they return.
		name: "a mass silence marks no one down",
		steps: []step{
			{lead: 1, nodes: ups("a", "b", "c", "d", "e", "f"), want: ""},
			{advance: 30 * time.Second, beats: []string{"e", "f", "d"}, nodes: ups("a", "b", "c", "d", "e", "f"), want: ""},
			{advance: time.Second, beats: []string{"a", "b", "e", "f", "d"}, nodes: ups("a", "b", "c", "d", "e", "f"), want: "c:down"},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeClock()
			l := NewLiveness(downAfter, c.now)
			for i, s := range tc.steps {
				c.step(s.advance)
				if s.follow {
					l.Follow()
				}
				if s.lead > 0 {
					l.Lead(s.lead)
				}
				for _, h := range s.beats {
					l.Heartbeat(h)
				}
				got := decided(l.Decide(s.nodes(c), grace, tc.never))
				if got != s.want {
					t.Fatalf("step %d (at +%s): decided %q, want %q", i, c.t.Sub(start), got, s.want)
				}
			}
		})
	}
}

// TestLivenessTransitionDetails checks what goes into the commands: the
// leader's time for a host going down, the stored down-since time for a
// release, and the last heartbeat for the log.
func TestLivenessTransitionDetails(t *testing.T) {
	c := newFakeClock()
	l := NewLiveness(10*time.Second, c.now)
	l.Lead(1)
	l.Heartbeat("a")
	hb := c.t
	c.step(12 * time.Second)
	trs := l.Decide([]*sdnv1.Node{upNode("a")}, time.Hour, false)
	if len(trs) != 1 || trs[0].Kind != MarkDown || !trs[0].At.Equal(c.t) || !trs[0].LastHeartbeat.Equal(hb) || trs[0].Silent != 12*time.Second {
		t.Fatalf("mark down: %+v", trs)
	}
	since := c.t.Add(-2 * time.Hour)
	trs = l.Decide([]*sdnv1.Node{downNode("a", since)}, time.Hour, false)
	if len(trs) != 1 || trs[0].Kind != Release || trs[0].DownSinceUnixMs != since.UnixMilli() {
		t.Fatalf("release: %+v", trs)
	}
	if got, ok := l.LastHeartbeat("a"); !ok || !got.Equal(hb) {
		t.Fatalf("LastHeartbeat = %v %v, want %v", got, ok, hb)
	}
	l.Follow()
	if _, ok := l.LastHeartbeat("a"); ok {
		t.Fatal("a follower reports heartbeats")
	}
}

// TestLivenessForgetsRemovedHosts: heartbeats of hosts no longer stored are
// dropped once old, but a host that just registered (not yet in the nodes
// Decide saw) keeps its first heartbeat.
func TestLivenessForgetsRemovedHosts(t *testing.T) {
	c := newFakeClock()
	l := NewLiveness(10*time.Second, c.now)
	l.Lead(1)
	l.Heartbeat("gone")
	l.Heartbeat("new")
	c.step(5 * time.Second)
	l.Heartbeat("new")
	l.Decide(nil, time.Hour, false)
	if _, ok := l.LastHeartbeat("new"); !ok {
		t.Fatal("a fresh heartbeat of a host not yet stored was dropped")
	}
	c.step(6 * time.Second)
	l.Decide(nil, time.Hour, false)
	if _, ok := l.LastHeartbeat("gone"); ok {
		t.Fatal("an old heartbeat of a removed host was kept")
	}
	if _, ok := l.LastHeartbeat("new"); !ok {
		t.Fatal("a 6 s old heartbeat was dropped")
	}
	// And the new host, now stored, is not down: it was heard 6 s ago.
	if got := decided(l.Decide([]*sdnv1.Node{upNode("new")}, time.Hour, false)); got != "" {
		t.Fatalf("decided %q for a host heard 6 s ago", got)
	}
}

// TestLivenessKeepsHeartbeatsOfItsTerm: a heartbeat that arrives after
// raft made this server leader but before the leader loop called Lead (a
// host registering right after an election) is kept; one from an earlier
// term is dropped by the new leadership.
func TestLivenessKeepsHeartbeatsOfItsTerm(t *testing.T) {
	c := newFakeClock()
	l := NewLiveness(10*time.Second, c.now)
	term := uint64(1)
	l.UseTerm(func() uint64 { return term })
	l.Lead(1)
	l.Heartbeat("old")
	l.Follow()
	term = 2
	l.Heartbeat("early") // leader of term 2, loop not yet run
	c.step(time.Second)
	l.Lead(2)
	if _, ok := l.LastHeartbeat("early"); !ok {
		t.Fatal("the heartbeat of this term, received before Lead, was dropped")
	}
	l.Heartbeat("old")
	term = 3
	l.Lead(3)
	if _, ok := l.LastHeartbeat("old"); ok {
		t.Fatal("a heartbeat of term 2 survived leadership in term 3")
	}
	// Without a term source every earlier heartbeat is dropped.
	u := NewLiveness(10*time.Second, c.now)
	u.Heartbeat("a")
	u.Lead(1)
	if _, ok := u.LastHeartbeat("a"); ok {
		t.Fatal("a heartbeat of an unknown term survived Lead")
	}
}

// TestHeartbeatAgedNeverMovesBack: a relayed heartbeat counts from when
// the follower heard it, and an older one does not replace a newer.
func TestHeartbeatAgedNeverMovesBack(t *testing.T) {
	c := newFakeClock()
	l := NewLiveness(30*time.Second, c.now)
	l.Lead(1)
	l.HeartbeatAged("h1", 2*time.Second)
	if at, _ := l.LastHeartbeat("h1"); !at.Equal(c.t.Add(-2 * time.Second)) {
		t.Fatalf("aged heartbeat at %v, want %v", at, c.t.Add(-2*time.Second))
	}
	l.Heartbeat("h1")
	l.HeartbeatAged("h1", 10*time.Second)
	if at, _ := l.LastHeartbeat("h1"); !at.Equal(c.t) {
		t.Fatalf("an older relayed heartbeat moved it back to %v", at)
	}
}
