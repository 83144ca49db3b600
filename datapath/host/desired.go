package host

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"

	"github.com/sdn-dev/sdn/datapath/flows"
	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// defaultVXLANPort is IANA's VXLAN port, OVS's default for dst_port.
const defaultVXLANPort = 4789

// vxlanOverhead is what VXLAN over IPv4 adds to a workload's packet.
const vxlanOverhead = 50

// desired is what one host must hold, derived from the model.Desired alone (no
// I/O): everything Realize needs except what only OVS and the kernel know
// (OpenFlow port numbers, the underlay interface's address).
type desired struct {
	subnet     netip.Prefix // the host's block of the cluster CIDR
	gateway    netip.Addr   // held by the gateway port
	gatewayMAC net.HardwareAddr
	cluster    netip.Prefix
	isolation  flows.Isolation
	mtu        int // of the gateway port; 0 = leave it
	vxlanPort  int
	underlayIP netip.Addr // as the node registered it; may be invalid
	local      []localWorkload
	remote     []flows.RemoteHost
	// Policy: the host's own traffic decided by policy, and the address
	// groups this host's rules refer to.
	hostTrafficByPolicy bool
	groups              map[string]*sdnv1.AddressGroup
	services            []flows.Service
	// The host's kernel set-up beyond OVS (hostnet.go).
	hostNet hostNetInputs
	// userspace: the bridge's datapath is netdev, where meters limit the
	// workloads' egress (qos.go); the Datapath sets it.
	userspace bool
}

// localWorkload is a workload of this host and the name of its host veth.
type localWorkload struct {
	flows.Workload // Port is filled in from OVS
	ifname         string
	bw             bandwidth // qos.go
}

// HostIfname returns the name of a workload's host-side veth: the one the
// CNI plugin (or the Docker driver) created: link.HostVethName of its
// container id and interface name, "" for workloads sdn does not plug
// (static ones, or runtime ones without a container id).
func HostIfname(w *sdnv1.Workload) string {
	o := w.GetOrigin()
	if !model.OwnedKind(o.GetKind()) {
		return ""
	}
	if o.GetContainerId() == "" || o.GetIfname() == "" {
		return ""
	}
	return link.HostVethName(o.GetContainerId(), o.GetIfname())
}

// isolation maps the cluster's mode onto the compiler's; unset means
// multitenant, the server's default (and the closed choice).
func isolation(m sdnv1.IsolationMode) flows.Isolation {
	switch m {
	case sdnv1.IsolationMode_ISOLATION_MODE_FLAT:
		return flows.Flat
	case sdnv1.IsolationMode_ISOLATION_MODE_POLICY:
		return flows.Policy
	default:
		return flows.Multitenant
	}
}

// desiredState derives this host's desired state from a model.Desired. Objects
// it cannot use (a workload without a valid address, a remote node without
// a subnet) are skipped, each with a warning; what makes the whole state
// unusable (no cluster settings, this node unknown or without a subnet) is
// an error.
func desiredState(m *model.Desired, nodeName string) (*desired, []string, error) {
	if m == nil || m.Cluster == nil {
		return nil, nil, errors.New("desired state has no cluster settings yet (has the agent synced with a server?)")
	}
	cluster, err := netip.ParsePrefix(m.Cluster.GetCidr())
	if err != nil || !cluster.Addr().Is4() {
		return nil, nil, fmt.Errorf("cluster CIDR %q: want an IPv4 prefix such as 10.128.0.0/14", m.Cluster.GetCidr())
	}
	node := m.Nodes[nodeName]
	if node == nil {
		return nil, nil, fmt.Errorf("node %q is not in the desired state (not registered yet, or removed; see `sdnctl node list`)", nodeName)
	}
	subnet, err := netip.ParsePrefix(node.GetSubnet())
	if err != nil || !subnet.Addr().Is4() || !cluster.Contains(subnet.Addr()) {
		return nil, nil, fmt.Errorf("node %q has no usable subnet (%q) in cluster CIDR %s yet", nodeName, node.GetSubnet(), cluster)
	}
	d := &desired{subnet: subnet.Masked(), cluster: cluster.Masked(), isolation: isolation(m.Cluster.GetIsolation())}
	d.gateway, err = netip.ParseAddr(node.GetGatewayIp())
	if err != nil || !d.subnet.Contains(d.gateway) {
		d.gateway = d.subnet.Addr().Next()
	}
	d.gatewayMAC = model.MACForIP(d.gateway)
	d.underlayIP, _ = netip.ParseAddr(node.GetUnderlayIp())
	d.vxlanPort = int(m.Cluster.GetVxlanPort())
	if d.vxlanPort == 0 {
		d.vxlanPort = defaultVXLANPort
	}
	switch {
	case m.Cluster.GetEffectiveMtu() > 0:
		d.mtu = int(m.Cluster.GetEffectiveMtu())
	case m.Cluster.GetMtu() > 0:
		d.mtu = int(m.Cluster.GetMtu())
	case node.GetUnderlayMtu() > vxlanOverhead:
		d.mtu = int(node.GetUnderlayMtu()) - vxlanOverhead
	}

	d.hostTrafficByPolicy = m.Cluster.GetHostTrafficByPolicy()
	d.groups = m.AddressGroups
	policies := make([]*sdnv1.Policy, 0, len(m.Policies))
	for _, k := range slices.Sorted(maps.Keys(m.Policies)) {
		policies = append(policies, m.Policies[k])
	}

	var warnings []string
	for _, key := range localWorkloadKeys(m, nodeName) {
		w := m.Workloads[key]
		ifname := HostIfname(w)
		if ifname == "" {
			continue
		}
		ip, err := netip.ParseAddr(w.GetIp())
		if err != nil || !d.subnet.Contains(ip) || ip == d.gateway {
			warnings = append(warnings, fmt.Sprintf("workload %s: address %q is not in this host's subnet %s; not plugged", key, w.GetIp(), d.subnet))
			continue
		}
		mac, err := net.ParseMAC(w.GetMac())
		if w.GetMac() == "" {
			mac, err = model.MACForIP(ip), nil
		}
		if err != nil || len(mac) != 6 {
			warnings = append(warnings, fmt.Sprintf("workload %s: MAC %q is not an Ethernet address; not plugged", key, w.GetMac()))
			continue
		}
		d.local = append(d.local, localWorkload{
			Workload: flows.Workload{Name: key, IP: ip, MAC: mac, VNID: w.GetVnid(), NamedPorts: w.GetNamedPorts(),
				Ingress: rulesOf(policies, w, m.Networks[w.GetNetwork()], policy.Ingress),
				Egress:  rulesOf(policies, w, m.Networks[w.GetNetwork()], policy.Egress)},
			ifname: ifname,
			bw:     bandwidthOf(w.GetBandwidth()),
		})
	}

	for _, name := range slices.Sorted(maps.Keys(m.Nodes)) {
		n := m.Nodes[name]
		if name == nodeName {
			continue
		}
		sub, err1 := netip.ParsePrefix(n.GetSubnet())
		ul, err2 := netip.ParseAddr(n.GetUnderlayIp())
		if err1 != nil || err2 != nil || !ul.Is4() || !d.cluster.Contains(sub.Addr()) {
			if n.GetSubnet() != "" { // none yet is normal: not allocated
				warnings = append(warnings, fmt.Sprintf("node %s: subnet %q or underlay IP %q unusable; no tunnel to it", name, n.GetSubnet(), n.GetUnderlayIp()))
			}
			continue
		}
		d.remote = append(d.remote, flows.RemoteHost{Name: name, Subnet: sub.Masked(), UnderlayIP: ul})
	}
	slices.SortFunc(d.remote, func(a, b flows.RemoteHost) int { return cmp.Compare(a.Name, b.Name) })
	d.services, warnings = servicesOf(m, nodeName, warnings)
	var hw []string
	d.hostNet, hw = hostNetOf(m, d)
	warnings = append(warnings, hw...)
	return d, warnings, nil
}

// flowHost is the compiler's input: the desired state with the OpenFlow
// ports OVS assigned. Workloads without a usable port are left out.
func (d *desired) flowHost(ports map[string]int) *flows.Host {
	h := &flows.Host{
		Isolation:   d.isolation,
		Subnet:      d.subnet,
		Gateway:     d.gateway,
		GatewayMAC:  d.gatewayMAC,
		ClusterCIDR: d.cluster,
		TunnelPort:  tunnelOFPort,
		GatewayPort: gatewayOFPort,
		Remote:      d.remote,

		HostTrafficByPolicy: d.hostTrafficByPolicy,
		AddressGroups:       d.groups,
		Services:            d.services,
		ServiceCIDR:         d.hostNet.serviceCIDR,
		UnderlayIP:          d.underlayIP,
		HostPorts:           d.hostNet.hostPorts,
		NodePorts:           d.hostNet.flowNodePorts,
	}
	for _, w := range d.local {
		if p := ports[w.ifname]; p > 0 {
			w.Port = p
			if w.bw.meterBand() != "" && d.userspace {
				w.Meter = uint32(p) // qos.go
			}
			h.Local = append(h.Local, w.Workload)
		}
	}
	return h
}

// rulesOf is what policy.Applicable says applies to w in dir: the one
// ordering of rules the servers' verdict uses too.
func rulesOf(policies []*sdnv1.Policy, w *sdnv1.Workload, n *sdnv1.Network, dir policy.Direction) flows.Rules {
	slots, by := policy.Applicable(policies, w, n, dir)
	return flows.Rules{Slots: slots, IsolatedBy: by}
}

// localWorkloadKeys are the keys of nodeName's workloads that are not
// pending, sorted. Sorting only these, not every workload of the cluster,
// spares a change realize sorting 10,000 keys it then skips.
func localWorkloadKeys(m *model.Desired, nodeName string) []string {
	var keys []string
	for key, w := range m.Workloads {
		if w.GetNode() == nodeName && w.GetPending() == "" {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	return keys
}
