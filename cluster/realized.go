package cluster

import (
	"sort"
	"sync"
	"time"
)

// Realization holds, in memory on the server that agents report to, the
// revision each host has realized. It is deliberately not in raft: reports
// arrive on every change from every host and lose nothing of value when a
// server restarts (agents report again).
type Realization struct {
	mu    sync.Mutex
	hosts map[string]HostReport
	ch    chan struct{}
}

// HostReport is a host's latest report.
type HostReport struct {
	Revision uint64
	At       time.Time
	Error    string
}

// NewRealization returns an empty tracker.
func NewRealization() *Realization {
	return &Realization{hosts: map[string]HostReport{}, ch: make(chan struct{})}
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
	close(r.ch)
	r.ch = make(chan struct{})
}

// Learn records a host's realized revision only if the host has no report
// here yet: a report relayed by a heartbeat may be older than one that
// arrived on its own, so it only fills a gap (a leader just elected).
// It reports whether it was taken.
func (r *Realization) Learn(host string, rev uint64, errMsg string, at time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.hosts[host]; ok {
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
	for _, h := range hosts {
		if r.hosts[h].Revision < rev {
			out = append(out, h)
		}
	}
	sort.Strings(out)
	return out
}
