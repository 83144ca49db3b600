package host

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/sdn-dev/sdn/datapath/flows"
	"github.com/sdn-dev/sdn/datapath/hostnet"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// The host's kernel beyond OVS (datapath/hostnet): forwarding, the route
// to the service CIDR through the gateway port, masquerade of the local
// workloads whose network has snat on, node ports, and the refusal of
// VIPs OVS did not translate (services without endpoints).

// hostNetInputs is what the host's kernel set-up depends on besides the
// gateway and the cluster CIDR.
type hostNetInputs struct {
	serviceCIDR netip.Prefix
	noSNAT      []netip.Addr // local workloads whose network does not masquerade
	nodePorts   []hostnet.NodePort
	// hostPorts are the local workloads' port mappings (the kernel's and
	// the flows'); flowNodePorts every node port, by service key (the
	// flows'), hostport.go.
	hostPorts     []flows.HostPort
	flowNodePorts []flows.NodePort
}

// hostNetOf derives the kernel set-up's inputs from the desired state: the
// local workloads (already in d.local) of networks with no_snat, and
// every service port with a node port.
func hostNetOf(m *model.Desired, d *desired) (hostNetInputs, []string) {
	var in hostNetInputs
	var warnings []string
	if p, err := netip.ParsePrefix(m.Cluster.GetServiceCidr()); err == nil && p.Addr().Is4() {
		in.serviceCIDR = p.Masked()
	}
	for _, l := range d.local {
		network, _, _ := strings.Cut(l.Name, "/")
		if m.Networks[network].GetNoSnat() {
			in.noSNAT = append(in.noSNAT, l.IP)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(m.Services)) {
		s := m.Services[key]
		vip, err := netip.ParseAddr(s.GetVip())
		if err != nil || !vip.Is4() {
			continue // servicesOf warns
		}
		in.nodePorts = append(in.nodePorts, nodePortsOf(s, vip)...)
		for _, p := range s.GetPorts() {
			if p.GetNodePort() != 0 {
				in.flowNodePorts = append(in.flowNodePorts, flows.NodePort{Protocol: p.GetProtocol(), NodePort: uint16(p.GetNodePort()), Service: key, Port: uint16(p.GetPort())})
			}
		}
	}
	if !in.serviceCIDR.IsValid() && len(in.nodePorts) > 0 {
		warnings = append(warnings, fmt.Sprintf("cluster service CIDR %q unusable; node ports not served", m.Cluster.GetServiceCidr()))
		in.nodePorts, in.flowNodePorts = nil, nil
	}
	in.hostPorts, warnings = hostPortsOf(m, d, in.nodePorts, warnings)
	return in, warnings
}

func nodePortsOf(s *sdnv1.Service, vip netip.Addr) []hostnet.NodePort {
	var out []hostnet.NodePort
	for _, p := range s.GetPorts() {
		if p.GetNodePort() != 0 {
			out = append(out, hostnet.NodePort{Protocol: p.GetProtocol(), NodePort: uint16(p.GetNodePort()), VIP: vip, Port: uint16(p.GetPort())})
		}
	}
	return out
}

// key renders the inputs for fullApply.hostNet (change.go).
func (in hostNetInputs) key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "S %s\n", in.serviceCIDR)
	for _, a := range in.noSNAT {
		fmt.Fprintf(&b, "N %s\n", a)
	}
	for _, p := range in.nodePorts {
		fmt.Fprintf(&b, "P %s\n", p)
	}
	for _, p := range in.hostPorts {
		fmt.Fprintf(&b, "H %s\n", kernelHostPort(p))
	}
	return b.String()
}

// ensureHostNet makes the host's kernel hold what want needs, with local
// as the host's underlay address. A host without a usable service CIDR
// (settings from before services) gets none of it.
func (d *Datapath) ensureHostNet(ctx context.Context, want *desired, local netip.Addr, res *Result) error {
	if !want.hostNet.serviceCIDR.IsValid() {
		return nil
	}
	r, err := hostnet.Apply(ctx, d.hostNS, hostnet.Config{
		GatewayDev: GatewayPort, GatewayIP: want.gateway, ClusterCIDR: want.cluster, ServiceCIDR: want.hostNet.serviceCIDR,
		UnderlayIP: local, Subnet: want.subnet, NoSNATSources: want.hostNet.noSNAT, NodePorts: want.hostNet.nodePorts,
		HostPorts: kernelHostPorts(want.hostNet.hostPorts),
	})
	if err != nil {
		return fmt.Errorf("host networking (forwarding, SNAT, node ports): %w", err)
	}
	if r.ForwardingEnabled {
		d.log.Info("enabled IPv4 forwarding (net.ipv4.ip_forward=1): workloads reach the outside through this host, and node ports and host ports work", "namespace", d.hostNSName())
	}
	res.Changes = append(res.Changes, r.Changes...)
	return nil
}
