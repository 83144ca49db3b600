package feed

import (
	"slices"

	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// A policy goes only to the hosts where it selects a workload (its span):
// an agent compiles the policies that select its own workloads and no
// others (policy.Applicable). The index counts, per policy and host, the
// workloads it selects there; a host whose count leaves 0 receives the
// policy, one whose count falls to 0 a bare delete.

// polRec is a policy as the index holds it.
type polRec struct {
	p    *sdnv1.Policy
	wire []byte
	hits map[string]int // host → workloads the policy selects there
}

// spanOf is the hosts a policy reaches, sorted.
func (r *polRec) spanOf() []string {
	out := make([]string, 0, len(r.hits))
	for h := range r.hits {
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}

// applyPolicy records a policy change: the hosts in its span (computed
// anew) receive it, hosts that left its span a bare delete. While the
// index replays history without the state before it, every host receives
// it (its span is not known).
func (x *index) applyPolicy(c *sdnv1.ObjectChange, del bool) []entry {
	old, had := x.pols[c.Name]
	var before []string
	if had {
		before = old.spanOf()
		x.unspan(c.Name, old)
		delete(x.pols, c.Name)
	}
	if del || c.Policy == nil {
		switch {
		case !x.known:
			return []entry{{all: true, wire: encode(c)}}
		case len(before) == 0:
			return nil
		}
		return []entry{{hosts: before, wire: bareDelete(c)}}
	}
	r := &polRec{p: c.Policy, wire: encode(c), hits: map[string]int{}}
	x.pols[c.Name] = r
	_, after := x.count(c.Name, r)
	if !x.known {
		return []entry{{all: true, wire: r.wire}}
	}
	return spanEntries(c.Name, before, after, r.wire, !had || !slices.Equal(old.wire, r.wire))
}

// count recounts a policy's hits over every workload and returns its span
// before and after.
func (x *index) count(key string, r *polRec) (before, after []string) {
	before = r.spanOf()
	x.unspan(key, r)
	for _, w := range x.wobjs {
		if w.Node != "" && policy.Selects(r.p, w, x.nets[w.Network]) {
			x.hit(key, r, w.Node, 1)
		}
	}
	return before, r.spanOf()
}

// spanEntries are what a span change sends: a bare delete to the hosts
// that left it, the policy to those that joined (to all of the span when
// the policy itself changed).
func spanEntries(key string, before, after []string, wire []byte, changed bool) []entry {
	var out []entry
	if left := minus(before, after); len(left) > 0 {
		out = append(out, entry{hosts: left, wire: bareDeleteOf(model.KindPolicy, key)})
	}
	to := after
	if !changed {
		to = minus(after, before)
	}
	if len(to) > 0 {
		out = append(out, entry{hosts: to, wire: wire})
	}
	return out
}

// unspan forgets a policy's hits.
func (x *index) unspan(key string, r *polRec) {
	for h := range r.hits {
		x.hit(key, r, h, -r.hits[h])
	}
}

// hit adds d to a policy's count on host (never below 0) and keeps
// polsByHost in step.
func (x *index) hit(key string, r *polRec, host string, d int) {
	n := max(r.hits[host]+d, 0)
	if n == 0 {
		delete(r.hits, host)
		if m := x.polsByHost[host]; m != nil {
			delete(m, key)
			if len(m) == 0 {
				delete(x.polsByHost, host)
			}
		}
		return
	}
	r.hits[host] = n
	m := x.polsByHost[host]
	if m == nil {
		m = map[string]struct{}{}
		x.polsByHost[host] = m
	}
	m[key] = struct{}{}
}

// respanWorkload moves the policies' counts from a workload's old form to
// its new one (either nil) and returns what hosts gain or lose: a host that
// starts hosting a selected workload receives the policy, one that stops a
// bare delete.
func (x *index) respanWorkload(old, now *sdnv1.Workload) []entry {
	var out []entry
	for _, key := range x.polKeys() {
		r := x.pols[key]
		was := old != nil && old.Node != "" && policy.Selects(r.p, old, x.nets[old.Network])
		is := now != nil && now.Node != "" && policy.Selects(r.p, now, x.nets[now.Network])
		if was == is && (!was || old.Node == now.Node) {
			continue
		}
		if was {
			x.hit(key, r, old.Node, -1)
			if r.hits[old.Node] == 0 && x.known {
				out = append(out, entry{hosts: []string{old.Node}, wire: bareDeleteOf(model.KindPolicy, key)})
			}
		}
		if is {
			first := r.hits[now.Node] == 0
			x.hit(key, r, now.Node, 1)
			if first && x.known {
				out = append(out, entry{hosts: []string{now.Node}, wire: r.wire})
			}
		}
	}
	return out
}

// respanNetwork recounts the spans of the cluster-wide policies that
// select networks by label, after a network changed; a policy reaches
// only the hosts its span gained, and leaves those it lost.
func (x *index) respanNetwork() []entry {
	var out []entry
	for _, key := range x.polKeys() {
		if r := x.pols[key]; r.p.Network == "" && r.p.Networks != nil {
			before, after := x.count(key, r)
			if x.known {
				out = append(out, spanEntries(key, before, after, r.wire, false)...)
			}
		}
	}
	return out
}

// polKeys are the policies' keys in order (entries come out the same on
// every server).
func (x *index) polKeys() []string {
	keys := make([]string, 0, len(x.pols))
	for k := range x.pols {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// bareDeleteOf is the encoded delete of kind/name.
func bareDeleteOf(kind model.Kind, name string) []byte {
	return encode(&sdnv1.ObjectChange{Op: sdnv1.ChangeOp_CHANGE_OP_DELETE, Kind: string(kind), Name: name})
}
