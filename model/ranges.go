package model

import sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"

// ClearRanges removes the input-only source ranges from a request's
// objects: the servers store none, and a request without them is about a
// third of the size (each range repeats its file's name). sdnctl keeps
// them on its side and points refusals at the files with AttachRanges.
func ClearRanges(req *sdnv1.ApplyRequest) {
	if req.Cluster != nil {
		req.Cluster.Ranges = nil
	}
	for _, n := range req.Networks {
		n.Ranges = nil
	}
	for _, w := range req.Workloads {
		w.Ranges = nil
	}
	for _, v := range req.Services {
		v.Ranges = nil
	}
}

// AttachRanges points each violation at the source text req says its
// object or attribute came from: the attribute's range when the violation
// names a field req has a range for, else the whole object's ("").
// A violation that has a range keeps it, and one of an object req has
// no ranges for is left as it is.
func AttachRanges(vs []*sdnv1.Violation, req *sdnv1.ApplyRequest) {
	if len(vs) == 0 {
		return
	}
	byKey := map[Kind]map[string]map[string]*sdnv1.SourceRange{KindNetwork: {}, KindWorkload: {}, KindService: {}}
	add := func(kind Kind, key string, rs map[string]*sdnv1.SourceRange) {
		if _, dup := byKey[kind][key]; !dup { // the first declaration, as the servers check them
			byKey[kind][key] = rs
		}
	}
	for _, n := range req.GetNetworks() {
		add(KindNetwork, n.GetName(), n.GetRanges())
	}
	for _, w := range req.GetWorkloads() {
		add(KindWorkload, WorkloadKey(w.GetNetwork(), w.GetName()), w.GetRanges())
	}
	for _, v := range req.GetServices() {
		add(KindService, ServiceKey(v), v.GetRanges())
	}
	for _, v := range vs {
		if v.Range != nil {
			continue
		}
		rs := byKey[Kind(v.Kind)][v.Name]
		if Kind(v.Kind) == KindCluster {
			rs = req.GetCluster().GetRanges()
		}
		if r, ok := rs[v.Field]; ok && v.Field != "" {
			v.Range = r
		} else if r, ok := rs[""]; ok {
			v.Range = r
		}
	}
}
