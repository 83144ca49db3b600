package model

// Kind is the kind of a stored object, as it travels in watch events
// (sdnv1.ObjectChange.Kind) and in violations. The string values are part of
// the wire format and of the agents' saved state: never change one.
type Kind string

// The object kinds.
const (
	KindCluster  Kind = "cluster"
	KindNetwork  Kind = "network"
	KindNode     Kind = "node"
	KindWorkload Kind = "workload"
)

// ClusterObjectName is the name the one cluster-settings object has in watch
// events.
const ClusterObjectName = "cluster"

// WorkloadKey is the key a workload is stored and watched under: its
// network and name, "network/name". Workload names are unique per network.
func WorkloadKey(network, name string) string { return network + "/" + name }
