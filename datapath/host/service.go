package host

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"

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
		fs := flows.Service{Key: key, VIP: vip, AffinityTimeout: s.GetSessionAffinity().GetTimeoutSeconds(),
			Ports: make([]flows.ServicePort, 0, len(s.GetPorts()))}
		for _, p := range s.GetPorts() {
			fs.Ports = append(fs.Ports, flows.ServicePort{Protocol: p.GetProtocol(), Port: uint16(p.GetPort())})
		}
		eps := m.ServiceEndpoints[key].GetEndpoints()
		fs.Endpoints = make([]flows.Endpoint, 0, len(eps))
		for _, e := range eps {
			ip, err := netip.ParseAddr(e.GetIp())
			if err != nil || !ip.Is4() {
				warnings = append(warnings, fmt.Sprintf("service %s: endpoint %s has no IPv4 address (%q); left out", key, e.GetWorkload(), e.GetIp()))
				continue
			}
			ep := flows.Endpoint{Name: e.GetWorkload(), IP: ip, Local: e.GetNode() == nodeName, Ports: make([]uint16, len(s.GetPorts()))}
			for k, p := range s.GetPorts() {
				ep.Ports[k] = endpointPort(p.GetPort(), p.GetTargetPort(), p.GetTargetPortName(), e.GetPorts(), k)
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

// udpKey is one endpoint of a UDP service port: the VIP and port, the
// endpoint's address and port.
type udpKey struct {
	vip netip.AddrPort
	ep  netip.AddrPort
}

// udpEndpoints lists the endpoints of h's UDP service ports.
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
					out[udpKey{netip.AddrPortFrom(s.VIP, p.Port), netip.AddrPortFrom(e.IP, e.Ports[k])}] = true
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
// endpoint. The netdev datapath (OVS 3.1) flushes a NATed entry only by
// its whole original tuple ("Must flush tuple using the original pre-NATed
// tuple"), so the entries are listed and each is flushed by its own.
func (d *Datapath) flushRemovedUDP(ctx context.Context, before, after *flows.Host) {
	now := udpEndpoints(after)
	gone := map[udpKey]bool{}
	for k := range udpEndpoints(before) {
		if !now[k] {
			gone[k] = true
		}
	}
	if len(gone) == 0 {
		return
	}
	zone := fmt.Sprintf("zone=%d", flows.ConntrackZone)
	out, err := d.ovs.Appctl(ctx, "ovs-vswitchd", "dpctl/dump-conntrack", zone)
	if err != nil {
		d.log.Warn("could not list conntrack entries to flush removed UDP endpoints; their clients move when the entries time out", "err", err)
		return
	}
	for _, e := range udpEntries(out) {
		if !gone[e.key] {
			continue
		}
		if _, err := d.ovs.Appctl(ctx, "ovs-vswitchd", "dpctl/flush-conntrack", zone, e.orig); err != nil {
			d.log.Warn("could not flush the conntrack entry of a removed UDP endpoint; its client moves when it times out",
				"endpoint", e.key.ep, "service", e.key.vip, "entry", e.orig, "err", err)
		}
	}
}

// ctEntry is one UDP conntrack entry: its original tuple as flush-conntrack
// takes it; its original destination and the source of its reply tuple
// (for a DNATed connection, the VIP and the endpoint).
type ctEntry struct {
	orig string
	key  udpKey
}

var ctUDP = regexp.MustCompile(`^udp,orig=\(src=([0-9.]+),dst=([0-9.]+),sport=(\d+),dport=(\d+)\),reply=\(src=([0-9.]+),dst=[0-9.]+,sport=(\d+),`)

// udpEntries parses `ovs-appctl dpctl/dump-conntrack` output, e.g.
//
//	udp,orig=(src=10.128.0.10,dst=172.30.0.10,sport=40000,dport=53),reply=(src=10.128.2.11,dst=10.128.0.10,sport=5353,dport=40000),zone=1
func udpEntries(out string) []ctEntry {
	var es []ctEntry
	for _, line := range strings.Split(out, "\n") {
		m := ctUDP.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		vip, err := netip.ParseAddrPort(m[2] + ":" + m[4])
		ep, err2 := netip.ParseAddrPort(m[5] + ":" + m[6])
		if err != nil || err2 != nil {
			continue
		}
		es = append(es, ctEntry{
			orig: fmt.Sprintf("ct_nw_src=%s,ct_nw_dst=%s,ct_nw_proto=17,ct_tp_src=%s,ct_tp_dst=%s", m[1], m[2], m[3], m[4]),
			key:  udpKey{vip, ep},
		})
	}
	return es
}
