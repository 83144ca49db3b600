package cluster

import (
	"sort"
	"sync"
	"time"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// DefaultNodeDownAfter is how long the leader waits without a heartbeat
// from a host before it marks the host down, when not configured.
const DefaultNodeDownAfter = 30 * time.Second

// Liveness is the leader's view of which hosts are alive. Heartbeats live
// here, in memory only: writing one raft entry per host per interval is
// what made OVN's raft databases lose their leader under load. Raft holds
// only the transitions (SetNodeLiveness: down since T, or up again) and a
// release (ReleaseNode) after the grace period, each decided by Decide and
// proposed once by the leader (RunLiveness), with the leader's time inside
// the command.
//
// Every host's clock starts when this server becomes leader (Lead): a
// host that has not been heard from by a new leader is given the whole
// down-after time, so a leader change never marks a host down.
//
// Heartbeats are stamped with the raft term in which they arrived
// (UseTerm), so a new leadership keeps those of its own term that arrived
// before the leader loop noticed it leads (a host registering right after
// an election), and drops the rest.
//
// Liveness is pure logic over an injected clock; tests drive it with a
// fake one.
type Liveness struct {
	downAfter time.Duration
	now       func() time.Time
	termOf    func() uint64 // the raft term now; nil: unknown (0)

	mu      sync.Mutex
	leading bool
	term    uint64
	since   time.Time       // when the current leadership began
	beats   map[string]beat // last heartbeat per host, this leadership
	// withheld: MarkDowns the last Decide held back (mass silence).
	withheld int
}

// A beat is a host's last heartbeat and the raft term it arrived in.
type beat struct {
	at   time.Time
	term uint64
}

// NewLiveness returns a tracker that marks hosts down after downAfter
// without a heartbeat (0: DefaultNodeDownAfter), reading time from now
// (nil: time.Now).
func NewLiveness(downAfter time.Duration, now func() time.Time) *Liveness {
	if downAfter <= 0 {
		downAfter = DefaultNodeDownAfter
	}
	if now == nil {
		now = time.Now
	}
	return &Liveness{downAfter: downAfter, now: now, beats: map[string]beat{}}
}

// UseTerm stamps heartbeats with the raft term f returns (the server's
// current term); call it before heartbeats arrive. Without it every
// heartbeat is of an unknown term and a new leadership drops them all.
func (l *Liveness) UseTerm(f func() uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.termOf = f
}

// DownAfter is how long a host may be silent before it is marked down.
func (l *Liveness) DownAfter() time.Duration { return l.downAfter }

// Heartbeat records a sign of life from host (a heartbeat, a realization
// report, a registration), at the tracker's now.
func (l *Liveness) Heartbeat(host string) { l.HeartbeatAged(host, 0) }

// HeartbeatAged records a sign of life from host heard age ago (relayed by
// a follower); it never moves the host's last one back.
func (l *Liveness) HeartbeatAged(host string, age time.Duration) {
	at := l.now().Add(-max(age, 0))
	l.mu.Lock()
	defer l.mu.Unlock()
	b := beat{at: at}
	if l.termOf != nil {
		b.term = l.termOf()
	}
	if old, ok := l.beats[host]; ok && old.term == b.term && old.at.After(at) {
		return
	}
	l.beats[host] = b
}

// LastHeartbeat is when this server last heard from host since it became
// leader; false when it has not (Follow and a new term forget all).
func (l *Liveness) LastHeartbeat(host string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.beats[host]
	return b.at, ok
}

// Lead starts (or continues) leadership in term. A new term drops what was
// heard in other terms (kept: heartbeats of this term that arrived before
// Lead was called) and starts every host's clock now.
func (l *Liveness) Lead(term uint64) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.leading && l.term == term {
		return
	}
	l.leading, l.term, l.since = true, term, now
	for h, b := range l.beats {
		if b.term == 0 || b.term != term {
			delete(l.beats, h)
		}
	}
}

// Follow notes that this server no longer leads.
func (l *Liveness) Follow() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.leading = false
	clear(l.beats)
}

// Leading reports whether the tracker is in a leadership, and since when.
func (l *Liveness) Leading() (bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leading, l.since
}

// TransitionKind is what Decide asks the leader to propose.
type TransitionKind int

const (
	// MarkDown: the host was silent for the down-after time.
	MarkDown TransitionKind = iota + 1
	// MarkUp: a host marked down is heartbeating again.
	MarkUp
	// Release: a host stayed down for the release grace (and is still
	// silent): remove it, releasing its subnet and workload addresses.
	Release
)

func (k TransitionKind) String() string {
	switch k {
	case MarkDown:
		return "down"
	case MarkUp:
		return "up"
	case Release:
		return "release"
	}
	return "unknown"
}

// Transition is one change Decide wants in raft.
type Transition struct {
	Kind TransitionKind
	Host string
	// At is the tracker's now: for MarkDown, the down-since time that goes
	// into the command.
	At time.Time
	// DownSinceUnixMs is the host's stored down-since time (MarkUp,
	// Release): a Release applies only if it is unchanged.
	DownSinceUnixMs int64
	// LastHeartbeat is when the host was last heard from in this
	// leadership (zero: never).
	LastHeartbeat time.Time
	// Silent is how long the host has not been heard from, counted from
	// this leadership's start when it never was.
	Silent time.Duration
}

// MassSilence is the share of up hosts that, falling silent at once, are
// taken for a fault of this leader (overloaded, its heartbeats queued) or
// of its network rather than of the hosts: none of them is marked down
// then (as Kubernetes' node controller stops evicting when most of a zone
// is unready). At least massSilenceMin hosts must be silent for it.
const (
	MassSilence    = 0.25
	massSilenceMin = 3
)

// withholdMassSilence drops the MarkDown transitions when they are a mass
// silence, counting them in Withheld.
func (l *Liveness) withholdMassSilence(out []Transition, nodes []*sdnv1.Node) []Transition {
	up, down := 0, 0
	for _, n := range nodes {
		if n.DownSinceUnixMs == 0 {
			up++
		}
	}
	for _, tr := range out {
		if tr.Kind == MarkDown {
			down++
		}
	}
	l.withheld = 0
	if down < massSilenceMin || float64(down) <= MassSilence*float64(up) {
		return out
	}
	l.withheld = down
	kept := out[:0]
	for _, tr := range out {
		if tr.Kind != MarkDown {
			kept = append(kept, tr)
		}
	}
	return kept
}

// Withheld is how many hosts the last Decide found silent but did not mark
// down because so many were (MassSilence).
func (l *Liveness) Withheld() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.withheld
}

// Decide compares the stored hosts with what this leader heard and returns
// the transitions to propose, in host name order. releaseAfter is the
// cluster's grace for down hosts; never disables releases. A follower
// decides nothing.
//
//   - An up host silent for the down-after time is marked down, unless
//     more than MassSilence of the up hosts are (then none is).
//   - A down host heard from within the down-after time is marked up.
//   - A down host down for releaseAfter and silent for the down-after time
//     in this leadership is released (a new leader first gives it the
//     down-after time to heartbeat).
func (l *Liveness) Decide(nodes []*sdnv1.Node, releaseAfter time.Duration, never bool) []Transition {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.leading {
		return nil
	}
	known := make(map[string]bool, len(nodes))
	var out []Transition
	for _, n := range nodes {
		known[n.Name] = true
		b, heard := l.beats[n.Name]
		last := b.at
		seen := l.since
		if heard && last.After(seen) {
			seen = last
		}
		silent := now.Sub(seen)
		tr := Transition{Host: n.Name, At: now, DownSinceUnixMs: n.DownSinceUnixMs, Silent: silent}
		if heard {
			tr.LastHeartbeat = last
		}
		switch {
		case n.DownSinceUnixMs == 0:
			if silent >= l.downAfter {
				tr.Kind = MarkDown
			}
		case heard && silent < l.downAfter:
			tr.Kind = MarkUp
		case !never && silent >= l.downAfter && now.Sub(time.UnixMilli(n.DownSinceUnixMs)) >= releaseAfter:
			tr.Kind = Release
		}
		if tr.Kind != 0 {
			out = append(out, tr)
		}
	}
	out = l.withholdMassSilence(out, nodes)
	// Forget hosts that are gone, once their last heartbeat is old (a
	// host that just registered may not be in nodes yet).
	for h, b := range l.beats {
		if !known[h] && now.Sub(b.at) >= l.downAfter {
			delete(l.beats, h)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out
}
