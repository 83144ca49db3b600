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
	KindPolicy   Kind = "policy"
	// KindAddressGroup is derived by the servers from policies and
	// workloads (package policy), never declared.
	KindAddressGroup Kind = "addressgroup"
)

// Kinds named in refusals but not stored as objects of the state.
const (
	KindServer      Kind = "server"      // a raft member
	KindCertificate Kind = "certificate" // a revoked certificate
)

// ClusterObjectName is the name the one cluster-settings object has in watch
// events.
const ClusterObjectName = "cluster"

// WorkloadKey is the key a workload is stored and watched under: its
// network and name, "network/name". Workload names are unique per network.
func WorkloadKey(network, name string) string { return network + "/" + name }

// StoredKinds are the kinds of the objects the state holds, in the order a
// whole state is rendered.
var StoredKinds = []Kind{KindCluster, KindNetwork, KindNode, KindWorkload, KindPolicy, KindAddressGroup, KindService, KindServiceEndpoints}

// Plural is how a list of the kind is named ("networks"); the cluster, of
// which there is one, has no plural.
func (k Kind) Plural() string {
	switch k {
	case KindCluster:
		return string(k)
	case KindPolicy:
		return "policies"
	}
	return string(k) + "s"
}

// ParseKind reads a stored kind in the singular or the plural, as the API
// takes it ("network", "networks"); ok is false for anything else.
func ParseKind(s string) (k Kind, ok bool) {
	for _, k := range StoredKinds {
		if s == string(k) || s == k.Plural() || s == string(k)+"s" || s == "address-group" || s == "address-groups" && k == KindAddressGroup {
			return k, true
		}
	}
	return "", false
}

// ServerBehind starts the message with which a server ends a watch when it
// has lost touch with its raft leader (a follower cut off): what it would
// send may be old. An agent that sees it keeps its host as it is and
// watches another server.
const ServerBehind = "server behind the cluster:"
