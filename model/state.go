package model

import (
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// State is a whole state as lists of objects, each list in key order
// (networks and nodes by name, workloads by WorkloadKey). Both the servers'
// watch snapshots (from the store, trimmed to one host) and the agent's
// Desired are rendered through it, so "the whole state as changes" is
// written once.
type State struct {
	Cluster   *sdnv1.ClusterSettings
	Networks  []*sdnv1.Network
	Nodes     []*sdnv1.Node
	Workloads []*sdnv1.Workload
}

// Changes renders the state as a snapshot's puts: the cluster settings,
// then networks, nodes and workloads, each in the order given.
func (s *State) Changes() []*sdnv1.ObjectChange {
	out := make([]*sdnv1.ObjectChange, 0, 1+len(s.Networks)+len(s.Nodes)+len(s.Workloads))
	if s.Cluster != nil {
		out = append(out, Put(KindCluster, ClusterObjectName, &sdnv1.ObjectChange{Cluster: s.Cluster}))
	}
	for _, n := range s.Networks {
		out = append(out, Put(KindNetwork, n.Name, &sdnv1.ObjectChange{Network: n}))
	}
	for _, n := range s.Nodes {
		out = append(out, Put(KindNode, n.Name, &sdnv1.ObjectChange{Node: n}))
	}
	for _, w := range s.Workloads {
		out = append(out, Put(KindWorkload, WorkloadKey(w.Network, w.Name), &sdnv1.ObjectChange{Workload: w}))
	}
	return out
}

// Put makes c a create of the object kind/name and returns it.
func Put(kind Kind, name string, c *sdnv1.ObjectChange) *sdnv1.ObjectChange {
	c.Op, c.Kind, c.Name = sdnv1.ChangeOp_CHANGE_OP_CREATE, string(kind), name
	return c
}
