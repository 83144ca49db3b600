package host

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/datapath/ovs"
)

// ensureUnderlay returns the tunnel endpoint address. With the kernel
// datapath that is the underlay interface's address, and the kernel routes
// tunnel packets. With the userspace datapath OVS routes them itself
// ("userspace tunneling"): the endpoint address must sit on a netdev bridge
// that owns the underlay port, so ensureUnderlay makes br-phy (its MAC the
// underlay interface's, one NORMAL flow), adds the underlay interface to
// it and moves the address (with the routes through the interface) onto
// br-phy's internal interface. OVS learns routes from the kernel (the
// prefix route br-phy's address brings: `ovs-appctl ovs/route/show`) and
// resolves tunnel destinations by ARP through br-phy (`tnl/arp/show`;
// ensureTunnelNeighbors fills that cache ahead of traffic).
// Every step checks first, so an agent restart changes nothing.
func (d *Datapath) ensureUnderlay(ctx context.Context, st *ovsState, h *link.Handle, want *desired, res *Result) (netip.Addr, error) {
	name := d.cfg.UnderlayIface
	ul, ok, err := h.Iface(name)
	if err != nil {
		return netip.Addr{}, err
	}
	if !ok {
		return netip.Addr{}, fmt.Errorf("underlay interface %q not found in network namespace %s", name, d.hostNSName())
	}
	if d.cfg.DatapathType != "netdev" {
		p, err := d.pickAddr(ul.Addrs, want.underlayIP, name)
		return p.Addr(), err
	}

	// The address is on br-phy once moved (after an agent restart, say),
	// on the underlay interface before.
	var p netip.Prefix
	if phy, ok, err := h.Iface(UnderlayBridge); err != nil {
		return netip.Addr{}, err
	} else if ok && len(phy.Addrs) > 0 {
		p, _ = d.pickAddr(phy.Addrs, want.underlayIP, UnderlayBridge)
	}
	if !p.IsValid() {
		if p, err = d.pickAddr(ul.Addrs, want.underlayIP, name); err != nil {
			return netip.Addr{}, fmt.Errorf("%w (nor has %s)", err, UnderlayBridge)
		}
	}

	if err := d.ensureBridge(ctx, st, bridgeWant{name: UnderlayBridge, datapathType: "netdev",
		otherConfig: map[string]string{"hwaddr": ul.MAC.String()}}, res); err != nil {
		return netip.Addr{}, err
	}
	res.UnderlayFlows, err = d.ovs.Reconcile(ctx, UnderlayBridge, d.cfg.Generation, []ovs.Flow{
		{Table: 0, Priority: 0, Actions: "NORMAL", Cookie: uint64(categoryUnderlay)},
	})
	if err != nil {
		return netip.Addr{}, err
	}
	if err := d.ensureIface(ctx, st, ifaceWant{bridge: UnderlayBridge, name: name}, res); err != nil {
		return netip.Addr{}, err
	}
	// OVS reads the underlay interface through a packet socket, which does
	// not take packets away from the kernel: with br-phy holding the
	// interface's MAC and address, the kernel would answer everything twice
	// (once as it arrives on the interface, once through br-phy). Strict
	// reverse-path filtering on the interface (the address is now reached
	// through br-phy) drops the kernel's copy, ARP included; arp_ignore=8
	// keeps it from answering ARP even if rp_filter is loosened for all.
	for _, kv := range [][2]string{
		{"ipv4/conf/" + name + "/rp_filter", "1"},
		{"ipv4/conf/" + name + "/arp_ignore", "8"},
	} {
		key, val := kv[0], kv[1]
		changed, err := h.SetNetSysctl(key, val)
		if err != nil {
			return netip.Addr{}, err
		}
		if changed {
			res.Changes = append(res.Changes, fmt.Sprintf("net.%s = %s", dotted(key), val))
		}
	}
	if all, err := h.NetSysctl("ipv4/conf/all/rp_filter"); err == nil && all == "2" {
		d.log.Warn("net.ipv4.conf.all.rp_filter is 2 (loose), which overrides strict filtering on the underlay interface: the kernel will also answer IP packets arriving on it, besides br-phy (duplicate replies); set it to 0 or 1",
			"interface", name)
	}
	changes, err := h.SetupHostIface(link.HostIface{Name: UnderlayBridge, Addrs: []netip.Prefix{p}})
	res.Changes = append(res.Changes, changes...)
	if err != nil {
		return netip.Addr{}, err
	}
	moved, err := h.MoveAddr(name, UnderlayBridge, p)
	if err != nil {
		return netip.Addr{}, err
	}
	if moved {
		res.Changes = append(res.Changes, fmt.Sprintf("moved %s from %s to %s", p, name, UnderlayBridge))
	}
	return p.Addr(), nil
}

// pickAddr chooses the tunnel endpoint among an interface's IPv4
// addresses: the one the node registered if present, else the first.
func (d *Datapath) pickAddr(addrs []netip.Prefix, registered netip.Addr, iface string) (netip.Prefix, error) {
	var first netip.Prefix
	for _, p := range addrs {
		if !p.Addr().Is4() || p.Addr().IsLinkLocalUnicast() || p.Addr().IsLoopback() {
			continue
		}
		if p.Addr() == registered {
			return p, nil
		}
		if !first.IsValid() {
			first = p
		}
	}
	if !first.IsValid() {
		return first, fmt.Errorf("underlay: %s in network namespace %s has %w", iface, d.hostNSName(), errNoUnderlayAddr)
	}
	if registered.IsValid() {
		d.log.Warn("the node registered another underlay address than its underlay interface holds; other hosts will send tunnel packets to the registered one",
			"registered", registered, "interface", iface, "using", first.Addr())
	}
	return first, nil
}

func dotted(key string) string { return strings.ReplaceAll(key, "/", ".") }
