package host

import (
	"fmt"
	"net/netip"

	"github.com/sdn-dev/sdn/datapath/flows"
	"github.com/sdn-dev/sdn/datapath/hostnet"
	"github.com/sdn-dev/sdn/model"
)

// Host ports: the local workloads' port mappings (Workload.port_mappings),
// served by the host's kernel for the outside and the host itself
// (datapath/hostnet) and by OVS for workloads (datapath/flows,
// hostport.go), so that isolation and policy judge a workload's packet
// with its own address (docs/services.md, "Host ports").

// mappingKey is what two mappings of one host may not share.
type mappingKey struct {
	hostIP   netip.Addr
	protocol string
	port     uint16
}

// hostPortsOf lists the local workloads' usable port mappings, in
// workload key order. A mapping without host_ip listens on the host's
// underlay address. A mapping another local workload (earlier in key
// order) or a node port already holds is left out with a warning, as is
// one that is not IPv4 or names no port: the servers refuse those, so
// they come only from an older or buggy server.
func hostPortsOf(m *model.Desired, d *desired, nodePorts []hostnet.NodePort, warnings []string) ([]flows.HostPort, []string) {
	taken := map[mappingKey]string{}
	for _, n := range nodePorts {
		taken[mappingKey{d.underlayIP, n.Protocol, n.NodePort}] = "node port " + n.String()
	}
	var out []flows.HostPort
	for _, l := range d.local {
		for _, pm := range m.Workloads[l.Name].GetPortMappings() {
			hp, err := hostPortOf(d.underlayIP, l.Name, l.IP, pm.GetProtocol(), pm.GetHostIp(), pm.GetHostPort(), pm.GetContainerPort())
			if err != nil {
				warnings = append(warnings, err.Error())
				continue
			}
			k := mappingKey{hp.HostIP, hp.Protocol, hp.HostPort}
			if holder, ok := taken[k]; ok {
				warnings = append(warnings, fmt.Sprintf("workload %s: host port %s %s:%d is %s's; not served", l.Name, hp.Protocol, hp.HostIP, hp.HostPort, holder))
				continue
			}
			taken[k] = "workload " + l.Name
			out = append(out, hp)
		}
	}
	return out, warnings
}

func hostPortOf(underlay netip.Addr, name string, ip netip.Addr, proto, hostIP string, hostPort, port uint32) (flows.HostPort, error) {
	if proto == "" {
		proto = "tcp"
	}
	hp := flows.HostPort{Protocol: proto, HostIP: underlay, HostPort: uint16(hostPort), Workload: name, IP: ip, Port: uint16(port)}
	if hostIP != "" && hostIP != "0.0.0.0" {
		a, err := netip.ParseAddr(hostIP)
		if err != nil || !a.Is4() {
			return hp, fmt.Errorf("workload %s: host port %d: host address %q is not IPv4; not served", name, hostPort, hostIP)
		}
		hp.HostIP = a
	}
	switch {
	case proto != "tcp" && proto != "udp":
		return hp, fmt.Errorf("workload %s: host port %d: protocol %q, want tcp or udp; not served", name, hostPort, proto)
	case hostPort == 0 || hostPort > 65535 || port == 0 || port > 65535:
		return hp, fmt.Errorf("workload %s: host port %d -> %d: ports are 1-65535; not served", name, hostPort, port)
	case !hp.HostIP.Is4():
		return hp, fmt.Errorf("workload %s: host port %d: this host has no usable underlay address; not served", name, hostPort)
	}
	return hp, nil
}

func kernelHostPort(p flows.HostPort) hostnet.HostPort {
	return hostnet.HostPort{Protocol: p.Protocol, HostIP: p.HostIP, HostPort: p.HostPort, IP: p.IP, Port: p.Port}
}

func kernelHostPorts(ps []flows.HostPort) []hostnet.HostPort {
	out := make([]hostnet.HostPort, len(ps))
	for i, p := range ps {
		out[i] = kernelHostPort(p)
	}
	return out
}
