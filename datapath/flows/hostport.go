package flows

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/sdn-dev/sdn/model"
)

// Host ports and node ports as workloads reach them. The host's kernel
// (datapath/hostnet) translates what reaches a host port or a node port
// from outside or from the host itself; a workload's packet never gets
// there, because OVS translates it first, so that isolation and policy
// judge it with the workload's own address and network (docs/services.md,
// "Host ports"):
//
//   - A workload's packet to another host's underlay address (not a reply)
//     goes through the tunnel to that host (tun_id = its VNID), as a packet to that
//     host's workload block does, instead of out through this host's
//     kernel, whose masquerade would hide the sender.
//   - On the host that owns the address, a new connection to
//     UnderlayIP:HostPort (or the mapping's HostIP) is DNATed to the mapped
//     workload in zone 1 (its replies are undone as a service's), and one
//     to UnderlayIP:NodePort goes to the service port's group, whether it
//     came from a local workload or through the tunnel. Ingress policy and
//     isolation then see the sender's address and VNID.
//   - Anything else through the tunnel to the underlay address goes to
//     the host's kernel through the gateway port, with the workload's
//     address as source.

// HostPort is one port mapping of a local workload: Protocol connections
// to HostIP:HostPort go to IP:Port.
type HostPort struct {
	Protocol string     // "tcp" or "udp"
	HostIP   netip.Addr // the host's address the mapping listens on
	HostPort uint16
	Workload string // "network/name", for errors
	IP       netip.Addr
	Port     uint16
}

// NodePort is a service port's node port (Service is the service's Key).
type NodePort struct {
	Protocol string
	NodePort uint16
	Service  string
	Port     uint16
}

func (p HostPort) match() string {
	return fmt.Sprintf("ct_state=+new+trk,%s,nw_dst=%s,tp_dst=%d", p.Protocol, p.HostIP, p.HostPort)
}

// hostPorts adds the host ports' DNAT flows to services.
func (c *compiler) hostPorts() {
	hps := slices.Clone(c.h.HostPorts)
	slices.SortFunc(hps, func(a, b HostPort) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), a.HostIP.Compare(b.HostIP), cmp.Compare(a.HostPort, b.HostPort))
	})
	for _, p := range slices.CompactFunc(hps, func(a, b HostPort) bool { return a.match() == b.match() }) {
		if !p.HostIP.Is4() || !p.IP.Is4() || p.HostPort == 0 || p.Port == 0 || p.Protocol != "tcp" && p.Protocol != "udp" {
			continue
		}
		c.add(Services, 100, p.match(), "%s", dnat(portEndpoint{p.Workload, p.IP, p.Port}, Egress))
	}
}

// nodePorts sends new connections to this host's UnderlayIP:NodePort to
// the service port's group (ids: the groups services assigned). Ports of
// services with session affinity, and ports without endpoints, get none:
// their packets reach the kernel as before.
func (c *compiler) nodePorts(ports []svcPort, ids *groupIDs) {
	if !c.h.UnderlayIP.Is4() {
		return
	}
	byKey := map[string]svcPort{}
	for _, p := range ports {
		byKey[p.key()] = p
	}
	for _, n := range c.h.NodePorts {
		p, ok := byKey[fmt.Sprintf("%s/%s/%d", n.Service, n.Protocol, n.Port)]
		if !ok || len(p.eps) == 0 || p.svc.AffinityTimeout != 0 || n.NodePort == 0 {
			continue
		}
		c.add(Services, 100, fmt.Sprintf("ct_state=+new+trk,%s,nw_dst=%s,tp_dst=%d", n.Protocol, c.h.UnderlayIP, n.NodePort), "group:%d", ids.of(p.key()))
	}
}

// underlay: a local workload's packet to another host's underlay address
// goes through the tunnel to that host; what comes through the tunnel to
// this host's underlay address goes into the host through the gateway.
func (c *compiler) underlay() {
	for _, r := range c.h.Remote {
		if !r.UnderlayIP.Is4() {
			continue
		}
		// Not replies: a connection from that host's own namespace (or
		// its outside clients, through its host ports) to a local
		// workload is answered through the gateway, where the kernel
		// that translated it undoes that.
		c.add(Forward, 50, fmt.Sprintf("ip,ct_state=-rpl+trk,nw_dst=%s", r.UnderlayIP),
			"set_field:%s->eth_src,set_field:%s->eth_dst,move:NXM_NX_REG0[0..23]->NXM_NX_TUN_ID[0..23],set_field:%s->tun_dst,load:%#x->%s,%s",
			RouterMAC, RouterMAC, r.UnderlayIP, c.h.TunnelPort, regOutPort, gotoTable(Output))
	}
	if c.h.UnderlayIP.Is4() {
		c.add(Forward, 70, fmt.Sprintf("ip,in_port=%d,nw_dst=%s", c.h.TunnelPort, c.h.UnderlayIP),
			"set_field:%s->eth_src,set_field:%s->eth_dst,load:%#x->%s,load:%#x->%s,%s",
			RouterMAC, c.h.GatewayMAC, model.HostVNID, regDstVNID, c.h.GatewayPort, regOutPort, gotoTable(Ingress))
	}
}
