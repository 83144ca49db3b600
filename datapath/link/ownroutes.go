package link

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// SetProtoRoutes makes the main table's IPv4 routes marked with protocol
// proto be exactly on-link routes to dsts through the link called dev:
// routes of that protocol elsewhere (another destination, another link, a
// gateway) are removed, missing ones added; routes of other protocols are
// left alone. It is for a part of sdn that owns a few routes of its own
// next to RouteProtocol's (datapath/hostnet: the service CIDR, protocol
// 84), so that neither reconciler removes the other's. With no dsts the
// link may be missing (everything of proto is removed). It returns what it
// changed.
func (h *Handle) SetProtoRoutes(proto int, dev string, dsts []netip.Prefix) ([]string, error) {
	var l netlink.Link
	if len(dsts) > 0 {
		var err error
		if l, err = h.linkByName(dev); err != nil {
			return nil, err
		}
	}
	filter := &netlink.Route{Protocol: netlink.RouteProtocol(proto), Table: unix.RT_TABLE_MAIN}
	routes, err := retryDump("list routes", func() ([]netlink.Route, error) {
		return h.nl.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, fmt.Errorf("list routes of protocol %d in network namespace %s: %w", proto, h.where(), err)
	}
	var done []string
	have := map[netip.Prefix]bool{}
	for _, r := range routes {
		k := keyOf(r)
		if l != nil && r.LinkIndex == l.Attrs().Index && !k.gw.IsValid() && slices.Contains(dsts, k.dst) {
			have[k.dst] = true
			continue
		}
		if err := h.nl.RouteDel(&r); err != nil {
			return done, fmt.Errorf("remove route %s proto %d in network namespace %s: %w", k, proto, h.where(), err)
		}
		done = append(done, fmt.Sprintf("remove route %s proto %d", k, proto))
	}
	for _, dst := range dsts {
		if have[dst] {
			continue
		}
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(dst), Scope: netlink.SCOPE_LINK, Protocol: netlink.RouteProtocol(proto)}
		if err := h.nl.RouteAdd(r); err != nil {
			return done, fmt.Errorf("add route %s dev %s proto %d in network namespace %s: %w", dst, dev, proto, h.where(), err)
		}
		done = append(done, fmt.Sprintf("%s: add route %s proto %d", dev, dst, proto))
	}
	return done, nil
}
