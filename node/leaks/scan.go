package leaks

import (
	"slices"
	"time"

	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// World is what the host holds: the host ends of workload veths and the
// workload ports of the integration bridge (name -> OpenFlow port).
type World struct {
	Veths []string
	Ports map[string]int
}

// gone is an attachment of this host whose host veth is missing.
type gone struct {
	w      *sdnv1.Workload
	hostIf string
	port   bool
	since  time.Time // first seen missing
}

// leftover is a workload veth or port no workload of this host owns.
type leftover struct {
	name       string
	veth, port bool
	since      time.Time // first seen without an owner
}

// findings is one comparison of the desired state with the world.
type findings struct {
	rev       uint64
	gone      []gone
	leftovers []leftover
}

// owned returns the host veth names of node's workloads that have an owner
// (container id and interface), each with its workload.
func owned(m *model.Desired, node string) map[string]*sdnv1.Workload {
	out := map[string]*sdnv1.Workload{}
	for _, w := range m.Workloads {
		o := w.GetOrigin()
		if w.Node != node || o.GetContainerId() == "" || o.GetIfname() == "" {
			continue
		}
		out[link.HostVethName(o.GetContainerId(), o.GetIfname())] = w
	}
	return out
}

// releasable says whether the leak loop may release a workload whose veth
// is missing: not the Docker driver's (see the package comment).
func releasable(w *sdnv1.Workload) bool {
	return w.GetOrigin().GetKind() != sdnv1.OriginKind_ORIGIN_KIND_DOCKER
}

// compare finds the gone attachments and leftovers of node. missingSince
// and orphanSince remember when each was first seen (by host veth name);
// compare updates them (new ones at now, vanished ones forgotten).
func compare(m *model.Desired, node string, world World, now time.Time, missingSince, orphanSince map[string]time.Time) findings {
	f := findings{rev: m.Revision}
	own := owned(m, node)
	veths := map[string]bool{}
	for _, v := range world.Veths {
		if link.IsHostVethName(v) {
			veths[v] = true
		}
	}
	seenMissing, seenOrphan := map[string]bool{}, map[string]bool{}
	for _, name := range sortedKeys(own) {
		w := own[name]
		if veths[name] || !releasable(w) {
			continue
		}
		_, port := world.Ports[name]
		f.gone = append(f.gone, gone{w: w, hostIf: name, port: port, since: firstSeen(missingSince, name, now)})
		seenMissing[name] = true
	}
	names := map[string]bool{}
	for v := range veths {
		names[v] = true
	}
	for p := range world.Ports {
		if link.IsHostVethName(p) {
			names[p] = true
		}
	}
	for _, name := range sortedKeys(names) {
		if own[name] != nil {
			continue
		}
		_, port := world.Ports[name]
		f.leftovers = append(f.leftovers, leftover{name: name, veth: veths[name], port: port, since: firstSeen(orphanSince, name, now)})
		seenOrphan[name] = true
	}
	forgetExcept(missingSince, seenMissing)
	forgetExcept(orphanSince, seenOrphan)
	return f
}

// firstSeen returns when name was first seen, recording now if never.
func firstSeen(since map[string]time.Time, name string, now time.Time) time.Time {
	t, ok := since[name]
	if !ok {
		since[name] = now
		return now
	}
	return t
}

func forgetExcept(since map[string]time.Time, keep map[string]bool) {
	for name := range since {
		if !keep[name] {
			delete(since, name)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
