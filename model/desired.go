package model

import (
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Desired is a host's copy of the desired state at one revision: what the
// agent follows from the servers' watch and what the datapath realizes. It
// holds the cluster settings, every network and node, and this host's own
// workloads (the servers send no other host's).
type Desired struct {
	Revision uint64
	// ClusterID is the id of the cluster this state came from (empty for
	// state from before clusters had ids).
	ClusterID string
	Cluster   *sdnv1.ClusterSettings
	Networks  map[string]*sdnv1.Network
	Nodes     map[string]*sdnv1.Node
	Workloads map[string]*sdnv1.Workload // by WorkloadKey
	// Every policy (by PolicyKey), and the address groups this host's
	// policies refer to (by name).
	Policies      map[string]*sdnv1.Policy
	AddressGroups map[string]*sdnv1.AddressGroup
	// Every service (by ServiceKey) and its endpoints (by the same key):
	// a client of a service can be on any host.
	Services         map[string]*sdnv1.Service
	ServiceEndpoints map[string]*sdnv1.ServiceEndpoints
}

// NewDesired returns an empty desired state at revision 0.
func NewDesired() *Desired {
	return &Desired{Networks: map[string]*sdnv1.Network{}, Nodes: map[string]*sdnv1.Node{}, Workloads: map[string]*sdnv1.Workload{},
		Policies: map[string]*sdnv1.Policy{}, AddressGroups: map[string]*sdnv1.AddressGroup{},
		Services: map[string]*sdnv1.Service{}, ServiceEndpoints: map[string]*sdnv1.ServiceEndpoints{}}
}

// Apply applies one revision's changes (or one snapshot chunk's puts).
// Changes of kinds it does not know are ignored: a newer server may send
// objects an older agent has no use for.
func (d *Desired) Apply(changes []*sdnv1.ObjectChange, rev uint64) {
	for _, c := range changes {
		del := c.Op == sdnv1.ChangeOp_CHANGE_OP_DELETE
		switch Kind(c.Kind) {
		case KindCluster:
			d.Cluster = c.Cluster
			if del {
				d.Cluster = nil
			}
		case KindNetwork:
			apply(d.Networks, c.Name, c.Network, del)
		case KindNode:
			apply(d.Nodes, c.Name, c.Node, del)
		case KindWorkload:
			apply(d.Workloads, c.Name, c.Workload, del)
		case KindPolicy:
			apply(d.Policies, c.Name, c.Policy, del)
		case KindAddressGroup:
			apply(d.AddressGroups, c.Name, c.AddressGroup, del)
		case KindService:
			apply(d.Services, c.Name, c.Service, del)
		case KindServiceEndpoints:
			apply(d.ServiceEndpoints, c.Name, c.ServiceEndpoints, del)
		}
	}
	d.Revision = rev
}

// apply puts or deletes one object of a map.
func apply[T any](m map[string]*T, key string, obj *T, del bool) {
	if del {
		delete(m, key)
	} else {
		m[key] = obj
	}
}

// State returns the desired state as sorted lists (see State).
func (d *Desired) State() *State {
	return &State{
		Cluster:       d.Cluster,
		Networks:      sortedValues(d.Networks),
		Nodes:         sortedValues(d.Nodes),
		Workloads:     sortedValues(d.Workloads),
		Policies:      sortedValues(d.Policies),
		AddressGroups: sortedValues(d.AddressGroups),

		Services:         sortedValues(d.Services),
		ServiceEndpoints: sortedValues(d.ServiceEndpoints),
	}
}

// sortedValues returns a map's values in key order.
func sortedValues[T any](m map[string]*T) []*T {
	out := make([]*T, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out
}

// Changes renders the desired state as a snapshot's puts, in a stable order.
func (d *Desired) Changes() []*sdnv1.ObjectChange { return d.State().Changes() }

// Equal reports whether two desired states hold the same objects at the same
// revision.
func (d *Desired) Equal(o *Desired) bool {
	if d.Revision != o.Revision {
		return false
	}
	a, b := d.Changes(), o.Changes()
	return slices.EqualFunc(a, b, func(x, y *sdnv1.ObjectChange) bool { return proto.Equal(x, y) })
}
