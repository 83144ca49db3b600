package host

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/sdn-dev/sdn/datapath/flows"
	"github.com/sdn-dev/sdn/model"
)

// servicesOf derives the services every workload of this host may connect
// to: each service with an allocated VIP, and its endpoints with the port
// each serves per service port. A service without a usable VIP, and an
// endpoint without a usable address, is skipped with a warning.
func servicesOf(m *model.Desired, nodeName string, warnings []string) ([]flows.Service, []string) {
	var out []flows.Service
	for _, key := range slices.Sorted(maps.Keys(m.Services)) {
		s := m.Services[key]
		vip, err := netip.ParseAddr(s.GetVip())
		if err != nil || !vip.Is4() {
			if s.GetVip() != "" {
				warnings = append(warnings, fmt.Sprintf("service %s: VIP %q is not an IPv4 address; not realized", key, s.GetVip()))
			}
			continue
		}
		fs := flows.Service{Key: key, VIP: vip, AffinityTimeout: s.GetSessionAffinity().GetTimeoutSeconds()}
		for _, p := range s.GetPorts() {
			fs.Ports = append(fs.Ports, flows.ServicePort{Protocol: p.GetProtocol(), Port: uint16(p.GetPort())})
		}
		for _, e := range m.ServiceEndpoints[key].GetEndpoints() {
			ip, err := netip.ParseAddr(e.GetIp())
			if err != nil || !ip.Is4() {
				warnings = append(warnings, fmt.Sprintf("service %s: endpoint %s has no IPv4 address (%q); left out", key, e.GetWorkload(), e.GetIp()))
				continue
			}
			ep := flows.Endpoint{Name: e.GetWorkload(), IP: ip, Local: e.GetNode() == nodeName}
			for k, p := range s.GetPorts() {
				ep.Ports = append(ep.Ports, endpointPort(p.GetPort(), p.GetTargetPort(), p.GetTargetPortName(), e.GetPorts(), k))
			}
			fs.Endpoints = append(fs.Endpoints, ep)
		}
		out = append(out, fs)
	}
	return out, warnings
}

// endpointPort is the port an endpoint serves service port k on: what the
// servers resolved, or, when they sent no list, the numbered target port
// (the service port itself when unset); 0 when it does not serve it.
func endpointPort(port, target uint32, targetName string, resolved []uint32, k int) uint16 {
	switch {
	case k < len(resolved):
		return uint16(resolved[k])
	case len(resolved) > 0 || targetName != "":
		return 0
	case target != 0:
		return uint16(target)
	}
	return uint16(port)
}

// udpKey is one endpoint address and port of a UDP service port.
type udpKey struct {
	ip   netip.Addr
	port uint16
}

// udpEndpoints lists the (endpoint, target port) pairs of h's UDP service
// ports.
func udpEndpoints(h *flows.Host) map[udpKey]bool {
	out := map[udpKey]bool{}
	if h == nil {
		return out
	}
	for _, s := range h.Services {
		for k, p := range s.Ports {
			if p.Protocol != "udp" {
				continue
			}
			for _, e := range s.Endpoints {
				if k < len(e.Ports) && e.Ports[k] != 0 {
					out[udpKey{e.IP, e.Ports[k]}] = true
				}
			}
		}
	}
	return out
}

// flushRemovedUDP drops the zone-1 conntrack entries of UDP endpoints that
// were in before and are not in now: a UDP "connection" has no end, so its
// client would keep sending to an endpoint that left until the entry timed
// out. With the entry gone, its next packet is new and picks a current
// endpoint. The entries are matched by their reply tuple (the endpoint's
// address and port as source), which the netdev datapath accepts as a
// partial tuple with an empty original one.
func (d *Datapath) flushRemovedUDP(ctx context.Context, before, after *flows.Host) {
	now := udpEndpoints(after)
	for k := range udpEndpoints(before) {
		if now[k] {
			continue
		}
		tuple := fmt.Sprintf("ct_nw_src=%s,ct_nw_proto=17,ct_tp_src=%d", k.ip, k.port)
		if _, err := d.ovs.Appctl(ctx, "ovs-vswitchd", "dpctl/flush-conntrack", fmt.Sprintf("zone=%d", flows.ConntrackZone), "", tuple); err != nil {
			d.log.Warn("could not flush the conntrack entries of a removed UDP endpoint; its clients move when they time out",
				"endpoint", netip.AddrPortFrom(k.ip, k.port), "err", err)
		}
	}
}
