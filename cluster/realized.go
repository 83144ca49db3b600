package cluster

import (
	"math"
	"sort"
	"sync"
	"time"
)

// Realization holds, in memory on the server that agents report to, the
// revision each host has realized. It is deliberately not in raft: reports
// arrive on every change from every host and lose nothing of value when a
// server restarts (agents report again).
//
// A filtered watch sends a host only the revisions that concern it, so a
// host's report stays at the last of those. The tracker therefore also
// learns, from the server's watch feed (Need), which revisions concerned
// which hosts: a host has realized revision R when it reported at least
// the latest revision up to R that concerned it. What it does not know (a
// server just started) counts as concerning every host.
type Realization struct {
	mu    sync.Mutex
	hosts map[string]HostReport
	ch    chan struct{}
	// needs are, per host, the revisions that concerned it and it has not
	// reported yet; all those that concerned every host. Each is a sorted
	// list of spans, merged when long (see spans).
	needs map[string]spans
	all   spans
	// known is the last revision Need was told about: whom a later one
	// concerns is not known yet, so no host has realized it.
	known uint64
}

// HostReport is a host's latest report.
type HostReport struct {
	Revision uint64
	At       time.Time
	Error    string
}

// NewRealization returns an empty tracker.
func NewRealization() *Realization {
	// Until a watch feed says which revisions concerned whom (Need with
	// reset), every revision counts as concerning every host.
	return &Realization{hosts: map[string]HostReport{}, ch: make(chan struct{}), needs: map[string]spans{},
		all: spans{{lo: 0, hi: math.MaxUint64}}, known: math.MaxUint64}
}

// Report records a host's realized revision (never moving it backwards
// unless the host reports an error, which is kept as is).
func (r *Realization) Report(host string, rev uint64, errMsg string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.report(host, rev, errMsg, at)
}

func (r *Realization) report(host string, rev uint64, errMsg string, at time.Time) {
	old := r.hosts[host]
	if errMsg == "" && rev < old.Revision {
		rev = old.Revision
	}
	if errMsg != "" {
		rev = old.Revision
	}
	r.hosts[host] = HostReport{Revision: rev, At: at, Error: errMsg}
	if n := r.needs[host].after(rev); len(n) == 0 {
		delete(r.needs, host)
	} else {
		r.needs[host] = n
	}
	close(r.ch)
	r.ch = make(chan struct{})
}

// Learn records a host's realized revision only if the host has no report
// here yet, or a successful one older than this successful one: a report
// relayed by a heartbeat may be older than one that arrived on its own, so
// it fills a gap (a leader just elected) or moves a host forward that the
// filtered watch told it is current (PROGRESS), never over an error.
// It reports whether it was taken.
func (r *Realization) Learn(host string, rev uint64, errMsg string, at time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.hosts[host]; ok && (errMsg != "" || old.Error != "" || rev <= old.Revision) {
		return false
	}
	r.report(host, rev, errMsg, at)
	return true
}

// Forget drops a removed host.
func (r *Realization) Forget(host string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.hosts, host)
	delete(r.needs, host)
}

// Need records that revision rev concerned the hosts given, or every host;
// reset (the watch feed started over from the whole state) forgets what
// it knew: every host then needs rev.
func (r *Realization) Need(rev uint64, all bool, hosts map[string]struct{}, reset bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.known = rev
	close(r.ch) // waiters for rev may now decide
	r.ch = make(chan struct{})
	switch {
	case reset:
		clear(r.needs)
		r.all = spans{{lo: 0, hi: rev}}
	case all:
		r.all = r.all.add(rev)
	default:
		for h := range hosts {
			r.needs[h] = r.needs[h].add(rev)
		}
	}
}

// Needed is the revision host must still report to have realized rev: the
// latest revision up to rev that concerned it, as far as the tracker
// knows; 0 when it has realized rev.
func (r *Realization) Needed(host string, rev uint64) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	allNeed := r.all.need(rev)
	if r.realized(host, rev, allNeed) {
		return 0
	}
	if rev > r.known {
		return rev
	}
	return max(allNeed, r.needs[host].need(rev))
}

// Realized reports whether host has realized rev.
func (r *Realization) Realized(host string, rev uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.realized(host, rev, r.all.need(rev))
}

// realized: host has reported, and at least the latest revision up to rev
// that concerned it (allNeed: that of the revisions for every host).
// A host that reported rev itself (or later) has realized it whatever the
// tracker knows.
func (r *Realization) realized(host string, rev, allNeed uint64) bool {
	rep, ok := r.hosts[host]
	return ok && (rep.Revision >= rev || rev <= r.known && rep.Revision >= max(allNeed, r.needs[host].need(rev)))
}

// Get returns a host's report.
func (r *Realization) Get(host string) (HostReport, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, ok := r.hosts[host]
	return h, ok
}

// Changed returns a channel closed at the next report.
func (r *Realization) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ch
}

// Pending lists which of hosts have not realized rev yet (sorted).
func (r *Realization) Pending(hosts []string, rev uint64) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	allNeed := r.all.need(rev)
	for _, h := range hosts {
		if !r.realized(h, rev, allNeed) {
			out = append(out, h)
		}
	}
	sort.Strings(out)
	return out
}

// A span stands for revisions lo..hi that concerned a host, of which hi is
// one; those in between may or may not have (spans merge when a list grows
// past maxSpans, which is what keeps a silent host's list bounded).
type span struct{ lo, hi uint64 }

// spans is a sorted list of disjoint spans.
type spans []span

// maxSpans bounds a list; past it the two oldest spans merge.
const maxSpans = 64

// add records revision rev (the newest so far).
func (s spans) add(rev uint64) spans {
	if n := len(s); n > 0 && s[n-1].hi >= rev {
		return s
	}
	s = append(s, span{lo: rev, hi: rev})
	if len(s) > maxSpans {
		s[1].lo = s[0].lo
		s = append(s[:0], s[1:]...)
	}
	return s
}

// need is the revision a host must have reported to have realized rev:
// the highest known to have concerned it up to rev, or rev itself when rev
// falls inside a merged span (whether a revision there concerned it is no
// longer known; the host reaches the span's end eventually).
func (s spans) need(rev uint64) uint64 {
	var out uint64
	for _, sp := range s {
		switch {
		case sp.lo > rev:
			return out
		case sp.hi <= rev:
			out = sp.hi
		default:
			return rev
		}
	}
	return out
}

// after drops the spans a host that reported rev has realized.
func (s spans) after(rev uint64) spans {
	i := 0
	for i < len(s) && s[i].hi <= rev {
		i++
	}
	if i == 0 {
		return s
	}
	return append(s[:0:0], s[i:]...)
}
