package flows

import (
	"net"
	"net/netip"
)

// Isolation is who may reach whom.
type Isolation int

// Isolation modes (the cluster's isolation setting).
const (
	Flat        Isolation = iota + 1 // all reach all
	Multitenant                      // own network only; VNID 0 reaches and is reached by all
	Policy                           // networks isolated, the admin network too; policies (to come) decide
)

// Host is everything the flows of one host depend on. The agent builds it
// from its desired state and the OpenFlow port numbers OVS holds; Compile
// is a pure function of it.
type Host struct {
	Isolation Isolation
	// The host's block of the workload CIDR and its gateway (the first
	// usable address, held by the gateway port in the host's namespace).
	Subnet     netip.Prefix
	Gateway    netip.Addr
	GatewayMAC net.HardwareAddr
	// ClusterCIDR is the whole workload CIDR (traffic to it never leaves
	// through the gateway to the outside).
	ClusterCIDR netip.Prefix
	// OpenFlow port numbers on the integration bridge.
	TunnelPort  int
	GatewayPort int
	// Local workloads with their ports; Remote hosts with their blocks.
	Local  []Workload
	Remote []RemoteHost
}

// Workload is a local workload plugged into the integration bridge.
type Workload struct {
	Name string // "network/name", for flow comments and errors
	IP   netip.Addr
	MAC  net.HardwareAddr
	VNID uint32
	Port int
}

// RemoteHost is another host reachable over the tunnel.
type RemoteHost struct {
	Name       string
	Subnet     netip.Prefix
	UnderlayIP netip.Addr
}
