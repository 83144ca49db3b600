package flows

import (
	"net"
	"net/netip"

	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
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
	// ServiceCIDR holds the VIPs: the host reaches them through its
	// gateway port, whose ARP for them the virtual router answers.
	ServiceCIDR netip.Prefix
	// OpenFlow port numbers on the integration bridge.
	TunnelPort  int
	GatewayPort int
	// Local workloads with their ports; Remote hosts with their blocks.
	Local  []Workload
	Remote []RemoteHost
	// HostTrafficByPolicy: the host's own traffic to its workloads is
	// decided by policy like any peer's (the cluster's host_traffic =
	// "policy"); otherwise it is always let in.
	HostTrafficByPolicy bool
	// AddressGroups are the members of the peer groups the local
	// workloads' rules name, by group name (policy.Group.Name).
	AddressGroups map[string]*sdnv1.AddressGroup
	// Services this host's workloads may connect to (service.go).
	Services []Service
	// UnderlayIP is this host's underlay address; HostPorts are its local
	// workloads' port mappings and NodePorts every service's node ports
	// (hostport.go).
	UnderlayIP netip.Addr
	HostPorts  []HostPort
	NodePorts  []NodePort
}

// Workload is a local workload plugged into the integration bridge.
type Workload struct {
	Name string // "network/name", for flow comments and errors
	IP   netip.Addr
	MAC  net.HardwareAddr
	VNID uint32
	Port int
	// Meter, when not 0, is the OpenFlow meter that limits the workload's
	// egress (its bandwidth, on the userspace datapath): its packets pass
	// it first.
	Meter uint32
	// NamedPorts the workload declares (ingress rules' named ports resolve
	// against them).
	NamedPorts []*sdnv1.NamedPort
	// The rules that apply to the workload, per direction, in evaluation
	// order, and the policies that isolate it (policy.Applicable).
	Ingress, Egress Rules
}

// Rules is what policy.Applicable returns for one workload and direction.
type Rules struct {
	Slots      []policy.Slot
	IsolatedBy []string
}

// RemoteHost is another host reachable over the tunnel.
type RemoteHost struct {
	Name       string
	Subnet     netip.Prefix
	UnderlayIP netip.Addr
}
