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
	// Policies by policy key ("network/name", or "name" cluster-wide);
	// AddressGroups by name (a host's state holds those it needs).
	Policies      []*sdnv1.Policy
	AddressGroups []*sdnv1.AddressGroup
	// Services by ServiceKey, and their endpoints by the same key.
	Services         []*sdnv1.Service
	ServiceEndpoints []*sdnv1.ServiceEndpoints
}

// Changes renders the state as a snapshot's puts: the cluster settings,
// then networks, nodes, workloads, policies, address groups, services and
// their endpoints, each in the order given.
func (s *State) Changes() []*sdnv1.ObjectChange {
	out := make([]*sdnv1.ObjectChange, 0, 1+len(s.Networks)+len(s.Nodes)+len(s.Workloads)+len(s.Policies)+len(s.AddressGroups))
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
	for _, p := range s.Policies {
		out = append(out, Put(KindPolicy, PolicyKey(p), &sdnv1.ObjectChange{Policy: p}))
	}
	for _, g := range s.AddressGroups {
		out = append(out, Put(KindAddressGroup, g.Name, &sdnv1.ObjectChange{AddressGroup: g}))
	}
	for _, v := range s.Services {
		out = append(out, Put(KindService, ServiceKey(v), &sdnv1.ObjectChange{Service: v}))
	}
	for _, ep := range s.ServiceEndpoints {
		out = append(out, Put(KindServiceEndpoints, ep.Service, &sdnv1.ObjectChange{ServiceEndpoints: ep}))
	}
	return out
}

// PolicyKey is the key a policy is stored and watched under: "network/name"
// for a network's policy, "name" for a cluster-wide one (names have no
// '/', so the two never collide).
func PolicyKey(p *sdnv1.Policy) string {
	if p.Network == "" {
		return p.Name
	}
	return WorkloadKey(p.Network, p.Name)
}

// Put makes c a create of the object kind/name and returns it.
func Put(kind Kind, name string, c *sdnv1.ObjectChange) *sdnv1.ObjectChange {
	c.Op, c.Kind, c.Name = sdnv1.ChangeOp_CHANGE_OP_CREATE, string(kind), name
	return c
}
