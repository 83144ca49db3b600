package suites

import (
	"slices"
	"sync"
	"time"

	"github.com/sdn-dev/sdn/bench/scalesim"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// fanout records, per host, every event received while it observes, and
// which watched objects (by change name: a workload key, a network name)
// each carried. It is for a handful of changes at a time (the single
// attaches, the new network): a few receipts per host.
type fanout struct {
	mu    sync.RWMutex
	keys  map[string]int // watched change name → its id
	hosts []fanoutHost
}

type fanoutHost struct {
	mu sync.Mutex
	rs []receipt
}

// receipt is one event one host received: its revision, type, receive
// time, and the watched object it carried (-1: none).
type receipt struct {
	rev uint64
	typ sdnv1.WatchEventType
	at  time.Time
	key int
}

func newFanout(hosts int) *fanout {
	return &fanout{keys: map[string]int{}, hosts: make([]fanoutHost, hosts)}
}

// watch starts watching changes named name and returns its id.
func (f *fanout) watch(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := len(f.keys)
	f.keys[name] = id
	return id
}

// Event implements scalesim.Observer.
func (f *fanout) Event(h *scalesim.Host, ev *sdnv1.WatchEvent, at time.Time) {
	var ids []int
	f.mu.RLock()
	for _, c := range ev.Changes {
		if id, ok := f.keys[c.Name]; ok {
			ids = append(ids, id)
		}
	}
	f.mu.RUnlock()
	fh := &f.hosts[h.Index]
	fh.mu.Lock()
	defer fh.mu.Unlock()
	if len(ids) == 0 {
		fh.rs = append(fh.rs, receipt{rev: ev.Revision, typ: ev.Type, at: at, key: -1})
	}
	for _, id := range ids {
		fh.rs = append(fh.rs, receipt{rev: ev.Revision, typ: ev.Type, at: at, key: id})
	}
}

// first returns when host first received the watched change id.
func (f *fanout) first(host, id int) (time.Time, bool) {
	fh := &f.hosts[host]
	fh.mu.Lock()
	defer fh.mu.Unlock()
	for _, r := range fh.rs {
		if r.key == id {
			return r.at, true
		}
	}
	return time.Time{}, false
}

// others counts the hosts but skip that received anything for the change
// id committed at rev: the change itself (maybe a bare delete), or an
// event at exactly rev other than a progress event.
func (f *fanout) others(skip, id int, rev uint64) int {
	n := 0
	for i := range f.hosts {
		if i == skip {
			continue
		}
		fh := &f.hosts[i]
		fh.mu.Lock()
		if slices.ContainsFunc(fh.rs, func(r receipt) bool {
			return r.key == id || r.rev == rev && r.typ != sdnv1.WatchEventType_WATCH_EVENT_TYPE_PROGRESS
		}) {
			n++
		}
		fh.mu.Unlock()
	}
	return n
}

// burstWatch records, per host, when the burst's workloads placed there
// arrived (their puts; bare deletes to other hosts do not count), so that
// the time every host had all of its own is known without keeping every
// event.
type burstWatch struct {
	target map[string]int // workload key → its host; fixed before the burst
	hosts  []burstHost
}

type burstHost struct {
	mu   sync.Mutex
	want int
	got  map[string]bool
	last time.Time // when the last of them arrived
}

// newBurstWatch watches workloads keys[i] on hosts targets[i].
func newBurstWatch(hosts int, keys []string, targets []int) *burstWatch {
	b := &burstWatch{target: map[string]int{}, hosts: make([]burstHost, hosts)}
	for i, k := range keys {
		b.target[k] = targets[i]
		b.hosts[targets[i]].want++
	}
	return b
}

// Event implements scalesim.Observer.
func (b *burstWatch) Event(h *scalesim.Host, ev *sdnv1.WatchEvent, at time.Time) {
	for _, c := range ev.Changes {
		if t, ok := b.target[c.Name]; ok && t == h.Index && c.Workload != nil {
			bh := &b.hosts[h.Index]
			bh.mu.Lock()
			if bh.got == nil {
				bh.got = map[string]bool{}
			}
			if !bh.got[c.Name] {
				bh.got[c.Name] = true
				bh.last = at
			}
			bh.mu.Unlock()
		}
	}
}

// done returns how many hosts have every workload placed there, and when
// the last of all arrived.
func (b *burstWatch) done() (hosts int, last time.Time) {
	for i := range b.hosts {
		bh := &b.hosts[i]
		bh.mu.Lock()
		if len(bh.got) == bh.want {
			hosts++
			if bh.last.After(last) {
				last = bh.last
			}
		}
		bh.mu.Unlock()
	}
	return hosts, last
}

// percentile returns the p-th percentile (0 < p ≤ 100, nearest rank) of
// ds, or 0 without any.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(p/100*float64(len(s))+0.999999) - 1
	return s[max(0, min(rank, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
