package feed

import (
	"log/slog"
	"slices"
	"sync"

	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Store is where the feed reads committed revisions (the FSM).
type Store interface {
	View(fn func(tx *state.Tx) error) error
}

// Notifier says when the store reached a new revision (cluster.Hub).
type Notifier interface {
	Wait() (uint64, <-chan struct{})
	Closed() bool
}

// MinHistory is the fewest revisions the feed keeps in memory; it keeps
// HistoryPerHost per registered host when that is more (registering every
// host, and a down and up of each, fit twice over).
const (
	MinHistory     = 10000
	HistoryPerHost = 4
	// maxHistoryBytes bounds the memory the kept revisions take.
	maxHistoryBytes = 256 << 20
)

// Audience is who a revision concerns: every host, or some.
type Audience struct {
	All   bool
	Hosts map[string]struct{}
}

// Options configure a feed.
type Options struct {
	Log *slog.Logger
	// OnRevision is called (with the feed's lock held: keep it short) for
	// each revision the feed takes, with who it concerns; reset is true
	// when the feed started over from the whole state (first start, a
	// restore), and then aud is every host.
	OnRevision func(rev uint64, aud Audience, reset bool)
}

// revision is one committed revision as the feed keeps it.
type revision struct {
	rev     uint64
	entries []entry
	size    int
}

// Feed follows the store and serves watchers from memory.
type Feed struct {
	store  Store
	notify Notifier
	opts   Options

	mu        sync.Mutex
	x         *index
	rev       uint64 // the revision x reflects
	start     uint64 // history kept: the revisions after start
	history   []*revision
	histBytes int
	clusterID string
	epoch     uint64 // bumps when the feed starts over
	epochRev  uint64 // the revision it started over at
	empty     bool   // the store holds no state (a new cluster)
	watchers  map[string]map[*Watcher]struct{}
	chunks    *chunkCache

	done chan struct{}
	wg   sync.WaitGroup
}

// New returns a feed loaded from the store (the whole state, and the
// stored history) and starts following it; Close stops it.
func New(store Store, notify Notifier, opts Options) (*Feed, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	f := &Feed{store: store, notify: notify, opts: opts, watchers: map[string]map[*Watcher]struct{}{}, done: make(chan struct{})}
	if err := f.store.View(f.load); err != nil {
		return nil, err
	}
	f.wg.Add(1)
	go f.follow()
	return f, nil
}

// Close stops following the store and wakes every watcher.
func (f *Feed) Close() {
	select {
	case <-f.done:
		return
	default:
	}
	close(f.done)
	f.wg.Wait()
}

// follow takes each new revision as the notifier announces it.
func (f *Feed) follow() {
	defer f.wg.Done()
	for {
		_, wake := f.notify.Wait()
		if err := f.store.View(f.catchUp); err != nil {
			f.opts.Log.Error("watch feed: read the change history", "err", err)
		}
		if f.notify.Closed() {
			f.wakeAll()
			return
		}
		select {
		case <-wake:
		case <-f.done:
			f.wakeAll()
			return
		}
	}
}

// load starts the feed over from the store: the whole state into the
// index, and the stored history, replayed without the state before it
// (so a change whose previous form is unknown goes to every host).
func (f *Feed) load(tx *state.Tx) error {
	m := tx.Meta()
	replay := newIndex()
	replay.known = false
	var hist []*revision
	bytes := 0
	tx.ChangesAfter(m.Compacted, func(ev *sdnv1.WatchEvent) bool {
		r := &revision{rev: ev.Revision}
		for _, c := range ev.Changes {
			r.entries = append(r.entries, replay.apply(c)...)
		}
		r.size = sizeOf(r.entries)
		bytes += r.size
		hist = append(hist, r)
		return true
	})
	x := newIndex()
	x.load(&model.State{Cluster: tx.Cluster(), Networks: tx.Networks(), Nodes: tx.Nodes(), Workloads: tx.Workloads(""),
		Policies: tx.Policies(), AddressGroups: tx.AddressGroups(), Services: tx.Services(""), ServiceEndpoints: tx.AllServiceEndpoints("")})
	f.mu.Lock()
	defer f.mu.Unlock()
	f.x, f.rev, f.start, f.history, f.histBytes = x, m.Revision, m.Compacted, hist, bytes
	f.clusterID, f.empty = tx.ClusterID(), tx.Empty()
	f.epoch++
	f.epochRev = m.Revision
	f.chunks = nil
	f.trim()
	if f.opts.OnRevision != nil {
		f.opts.OnRevision(m.Revision, Audience{All: true}, true)
	}
	return nil
}

// catchUp takes the revisions committed since the feed's, or starts over
// when the store moved under it (a restore; history compacted past it).
func (f *Feed) catchUp(tx *state.Tx) error {
	m := tx.Meta()
	f.mu.Lock()
	rev := f.rev
	f.mu.Unlock()
	switch {
	case m.Revision == rev:
		return nil
	case m.Revision < rev || m.Compacted > rev:
		f.opts.Log.Info("watch feed starts over from the whole state", "revision", m.Revision, "had", rev, "compacted", m.Compacted)
		if err := f.load(tx); err != nil {
			return err
		}
		f.wakeAll()
		return nil
	}
	var woken map[*Watcher]struct{}
	tx.ChangesAfter(rev, func(ev *sdnv1.WatchEvent) bool {
		woken = f.take(ev, woken)
		return true
	})
	f.mu.Lock()
	f.clusterID, f.empty = tx.ClusterID(), tx.Empty()
	f.mu.Unlock()
	for w := range woken {
		w.wake()
	}
	return nil
}

// take applies one revision to the index and the history, and adds the
// watchers it concerns to woken.
func (f *Feed) take(ev *sdnv1.WatchEvent, woken map[*Watcher]struct{}) map[*Watcher]struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := &revision{rev: ev.Revision}
	for _, c := range ev.Changes {
		r.entries = append(r.entries, f.x.apply(c)...)
	}
	r.size = sizeOf(r.entries)
	f.history = append(f.history, r)
	f.histBytes += r.size
	f.rev = ev.Revision
	f.trim()
	aud := audienceOf(r.entries)
	if f.opts.OnRevision != nil {
		f.opts.OnRevision(r.rev, aud, false)
	}
	if woken == nil {
		woken = map[*Watcher]struct{}{}
	}
	if aud.All {
		for _, ws := range f.watchers {
			for w := range ws {
				woken[w] = struct{}{}
			}
		}
		return woken
	}
	for h := range aud.Hosts {
		for w := range f.watchers[h] {
			woken[w] = struct{}{}
		}
	}
	return woken
}

// trim drops the oldest revisions past what the feed keeps, an eighth at a
// time (so the history is copied once per eighth, not per revision).
func (f *Feed) trim() {
	keep := max(minHistory, HistoryPerHost*len(f.x.nodes))
	if len(f.history) <= keep+keep/8 && f.histBytes <= maxHistoryBytes {
		return
	}
	n := 0
	for len(f.history)-n > keep || (f.histBytes > maxHistoryBytes*7/8 && len(f.history)-n > 1) {
		f.histBytes -= f.history[n].size
		f.start = f.history[n].rev
		n++
	}
	if n > 0 {
		f.history = append(f.history[:0:0], f.history[n:]...)
	}
}

// Hosts returns the registered hosts, up and marked down (down sorted), at
// the feed's revision, without reading the store.
func (f *Feed) Hosts() (rev uint64, up, down []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for h := range f.x.nodes {
		if f.x.down[h] {
			down = append(down, h)
		} else {
			up = append(up, h)
		}
	}
	slices.Sort(down)
	return f.rev, up, down
}

// HasHost reports whether host is registered at the feed's revision.
func (f *Feed) HasHost(host string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.x.nodes[host]
	return ok
}

// minHistory is MinHistory, a variable for tests.
var minHistory = MinHistory

// audienceOf is who a revision's entries go to.
func audienceOf(es []entry) Audience {
	a := Audience{Hosts: map[string]struct{}{}}
	for _, e := range es {
		if e.all {
			return Audience{All: true}
		}
		for _, h := range e.hosts {
			a.Hosts[h] = struct{}{}
		}
	}
	return a
}

func sizeOf(es []entry) int {
	n := 0
	for _, e := range es {
		n += len(e.wire) + 16*len(e.hosts) + 48
	}
	return n
}

// wakeAll wakes every watcher (a reset, the end).
func (f *Feed) wakeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ws := range f.watchers {
		for w := range ws {
			w.wake()
		}
	}
}
