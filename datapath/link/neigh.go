package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Neighbor is one IPv4 entry of the kernel's neighbour (ARP) table.
type Neighbor struct {
	IP      netip.Addr
	MAC     net.HardwareAddr // nil until resolved
	State   int              // NUD_* (unix.NUD_REACHABLE, …)
	Managed bool             // the kernel keeps it resolved by itself (NTF_EXT_MANAGED)
}

// Resolved reports whether the entry holds a usable MAC: reachable, stale
// (usable, to be confirmed on next use), being confirmed, or static.
func (n Neighbor) Resolved() bool {
	const valid = unix.NUD_REACHABLE | unix.NUD_STALE | unix.NUD_DELAY | unix.NUD_PROBE | unix.NUD_PERMANENT | unix.NUD_NOARP
	return n.State&valid != 0 && len(n.MAC) == 6
}

// Confirmed reports whether the MAC was confirmed recently (reachable) or
// is static: one worth preferring over what somebody else learned.
func (n Neighbor) Confirmed() bool {
	return n.State&(unix.NUD_REACHABLE|unix.NUD_PERMANENT|unix.NUD_NOARP) != 0 && len(n.MAC) == 6
}

// StateString names the entry's state as `ip neigh` does.
func (n Neighbor) StateString() string {
	var s []string
	for _, x := range []struct {
		bit  int
		name string
	}{
		{unix.NUD_INCOMPLETE, "INCOMPLETE"}, {unix.NUD_REACHABLE, "REACHABLE"}, {unix.NUD_STALE, "STALE"},
		{unix.NUD_DELAY, "DELAY"}, {unix.NUD_PROBE, "PROBE"}, {unix.NUD_FAILED, "FAILED"},
		{unix.NUD_NOARP, "NOARP"}, {unix.NUD_PERMANENT, "PERMANENT"},
	} {
		if n.State&x.bit != 0 {
			s = append(s, x.name)
		}
	}
	if len(s) == 0 {
		return "NONE"
	}
	return strings.Join(s, ",")
}

// Neighbors returns the IPv4 neighbour entries of the link called dev.
func (h *Handle) Neighbors(dev string) ([]Neighbor, error) {
	l, err := h.linkByName(dev)
	if err != nil {
		return nil, err
	}
	ns, err := retryDump("list neighbours", func() ([]netlink.Neigh, error) {
		return h.nl.NeighList(l.Attrs().Index, netlink.FAMILY_V4)
	})
	if err != nil {
		return nil, fmt.Errorf("list neighbours of %q in network namespace %s: %w", dev, h.where(), err)
	}
	var out []Neighbor
	for _, n := range ns {
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok || n.LinkIndex != l.Attrs().Index {
			continue
		}
		out = append(out, Neighbor{IP: ip.Unmap(), MAC: n.HardwareAddr, State: n.State,
			Managed: n.FlagsExt&netlink.NTF_EXT_MANAGED != 0})
	}
	return out, nil
}

// KeepNeighbor asks the kernel to resolve the IPv4 address ip on the link
// called dev now (an ARP request unless it already holds a usable MAC) and
// to keep it resolved: the entry is "managed" (NTF_EXT_MANAGED, Linux
// 5.16 and later), so the kernel probes it again whenever it goes stale
// and keeps retrying while it fails, without any traffic to it. An
// existing entry keeps its state and MAC. Older kernels ignore the managed
// flag; the entry is then resolved once and ages like any other. Nothing
// is sent on the wire before this returns: read Neighbors to see the
// answer.
func (h *Handle) KeepNeighbor(dev string, ip netip.Addr) error {
	if !ip.Is4() {
		return fmt.Errorf("keep neighbour %s on %q: not an IPv4 address", ip, dev)
	}
	l, err := h.linkByName(dev)
	if err != nil {
		return err
	}
	// NTF_USE: no state given, the kernel keeps the entry's own and starts
	// resolution (neigh_event_send) as a packet to ip would.
	err = h.nl.NeighSet(&netlink.Neigh{
		LinkIndex: l.Attrs().Index, Family: netlink.FAMILY_V4, IP: ip.AsSlice(),
		State: unix.NUD_NONE, Flags: netlink.NTF_USE, FlagsExt: netlink.NTF_EXT_MANAGED,
	})
	if err != nil {
		return fmt.Errorf("resolve neighbour %s on %q in network namespace %s: %w", ip, dev, h.where(), err)
	}
	return nil
}

// DeleteNeighbor removes the entry for ip on the link called dev; no error
// if there is none.
func (h *Handle) DeleteNeighbor(dev string, ip netip.Addr) error {
	l, err := h.linkByName(dev)
	if err != nil {
		return err
	}
	err = h.nl.NeighDel(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: netlink.FAMILY_V4, IP: ip.AsSlice()})
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete neighbour %s on %q in network namespace %s: %w", ip, dev, h.where(), err)
	}
	return nil
}

// RouteTo returns the link the kernel sends packets for dst through, and
// the gateway it sends them to (invalid when dst is on the link itself).
func (h *Handle) RouteTo(dst netip.Addr) (dev string, gw netip.Addr, err error) {
	rs, err := h.nl.RouteGet(dst.AsSlice())
	if err == nil && len(rs) == 0 {
		err = errors.New("no route")
	}
	if err != nil {
		return "", netip.Addr{}, fmt.Errorf("route to %s in network namespace %s: %w", dst, h.where(), err)
	}
	r := rs[0]
	l, err := h.nl.LinkByIndex(r.LinkIndex)
	if err != nil {
		return "", netip.Addr{}, fmt.Errorf("route to %s in network namespace %s: link %d: %w", dst, h.where(), r.LinkIndex, err)
	}
	if a, ok := netip.AddrFromSlice(r.Gw); ok {
		gw = a.Unmap()
	}
	return l.Attrs().Name, gw, nil
}
