package link

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// IfaceInfo is what the kernel holds about one link.
type IfaceInfo struct {
	Name  string
	Index int
	MAC   net.HardwareAddr
	MTU   int
	Up    bool
	Addrs []netip.Prefix // IPv4 addresses, the primary first
}

// Iface returns what the kernel holds about the link called name; ok is
// false if there is no such link.
func (h *Handle) Iface(name string) (info IfaceInfo, ok bool, err error) {
	l, err := h.lookup(name)
	if err != nil || l == nil {
		return IfaceInfo{}, false, err
	}
	a := l.Attrs()
	info = IfaceInfo{Name: a.Name, Index: a.Index, MAC: a.HardwareAddr, MTU: a.MTU, Up: a.Flags&net.FlagUp != 0}
	addrs, err := h.addrs(l, netlink.FAMILY_V4)
	if err != nil {
		return IfaceInfo{}, false, err
	}
	for _, ad := range addrs {
		if p, ok := prefixOf(ad.IPNet); ok {
			info.Addrs = append(info.Addrs, p)
		}
	}
	return info, true, nil
}

// HostIface is the desired state of a link in a host namespace that sdn
// owns but does not create, such as an OVS internal port (the gateway port,
// the underlay bridge).
type HostIface struct {
	Name string
	MAC  net.HardwareAddr // nil = leave it
	MTU  int              // 0 = leave it
	// Addrs are the IPv4 addresses the link holds, exactly: others are
	// removed.
	Addrs []netip.Prefix
	// Routes are the on-link routes through the link marked RouteProtocol,
	// exactly: sdn's other routes through it are removed; routes of other
	// protocols are left alone.
	Routes []netip.Prefix
}

// SetupHostIface brings the link called spec.Name up and makes its MAC,
// MTU, IPv4 addresses and sdn's routes through it match spec, changing only
// what differs. It returns what it changed; nothing when the link already
// matched.
func (h *Handle) SetupHostIface(spec HostIface) ([]string, error) {
	if err := validIfname(spec.Name); err != nil {
		return nil, err
	}
	l, err := h.linkByName(spec.Name)
	if err != nil {
		return nil, err
	}
	steps := linkSteps(h, l, spec.MTU, spec.MAC)

	addrs, err := h.addrs(l, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	have := map[netip.Prefix]bool{}
	for _, a := range addrs {
		p, ok := prefixOf(a.IPNet)
		if ok && slices.Contains(spec.Addrs, p) {
			have[p] = true
			continue
		}
		steps = append(steps, step{fmt.Sprintf("%s: remove address %s", spec.Name, a.IPNet), func() error {
			return h.nl.AddrDel(l, &a)
		}})
	}
	for _, p := range spec.Addrs {
		if !have[p] {
			steps = append(steps, step{fmt.Sprintf("%s: add address %s", spec.Name, p), func() error {
				return h.nl.AddrAdd(l, &netlink.Addr{IPNet: ipNet(p)})
			}})
		}
	}

	routes, err := h.routes(l, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	present := map[netip.Prefix]bool{}
	for _, r := range routes {
		if r.Protocol != RouteProtocol {
			continue
		}
		k := keyOf(r)
		if !k.gw.IsValid() && slices.Contains(spec.Routes, k.dst) {
			present[k.dst] = true
			continue
		}
		steps = append(steps, step{fmt.Sprintf("%s: remove route %s", spec.Name, k), func() error {
			return h.nl.RouteDel(&r)
		}})
	}
	for _, dst := range spec.Routes {
		if !present[dst] {
			steps = append(steps, step{fmt.Sprintf("%s: add route %s", spec.Name, dst), func() error {
				return h.nl.RouteAdd(&netlink.Route{
					LinkIndex: l.Attrs().Index, Dst: ipNet(dst), Scope: netlink.SCOPE_LINK, Protocol: RouteProtocol,
				})
			}})
		}
	}

	var done []string
	for _, s := range steps {
		if err := s.do(); err != nil {
			return done, fmt.Errorf("set up %q in network namespace %s: %s: %w", spec.Name, h.where(), s.what, err)
		}
		done = append(done, s.what)
	}
	return done, nil
}

// MoveAddr moves the IPv4 address p from the link called from to the link
// called to, with the routes via a gateway through from (a default route,
// say), which the kernel would otherwise drop with from's last address:
// p is added to to (if missing), those routes are replaced by the same
// routes through to, then p is removed from from. It reports whether from
// held p; if not, it does nothing.
func (h *Handle) MoveAddr(from, to string, p netip.Prefix) (bool, error) {
	src, err := h.linkByName(from)
	if err != nil {
		return false, err
	}
	dst, err := h.linkByName(to)
	if err != nil {
		return false, err
	}
	held := func(l netlink.Link) (*netlink.Addr, error) {
		addrs, err := h.addrs(l, netlink.FAMILY_V4)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			if q, ok := prefixOf(a.IPNet); ok && q == p {
				return &a, nil
			}
		}
		return nil, nil
	}
	old, err := held(src)
	if err != nil || old == nil {
		return false, err
	}
	fail := func(what string, err error) error {
		return fmt.Errorf("move address %s from %q to %q in network namespace %s: %s: %w", p, from, to, h.where(), what, err)
	}
	if a, err := held(dst); err != nil {
		return false, err
	} else if a == nil {
		if err := h.nl.AddrAdd(dst, &netlink.Addr{IPNet: ipNet(p)}); err != nil {
			return false, fail("add it to "+to, err)
		}
	}
	routes, err := h.routes(src, netlink.FAMILY_V4)
	if err != nil {
		return false, err
	}
	for _, r := range routes {
		if r.Gw == nil || r.MultiPath != nil || r.Protocol == unix.RTPROT_KERNEL {
			continue
		}
		r.LinkIndex = dst.Attrs().Index
		r.Flags &^= unix.RTNH_F_DEAD | unix.RTNH_F_LINKDOWN // state, not settable
		if err := h.nl.RouteReplace(&r); err != nil {
			return false, fail("move route "+keyOf(r).String(), err)
		}
	}
	if err := h.nl.AddrDel(src, old); err != nil {
		return false, fail("remove it from "+from, err)
	}
	return true, nil
}

// NetSysctl reads the network sysctl at key (a path under /proc/sys/net,
// e.g. "ipv4/conf/all/rp_filter") in the handle's namespace.
func (h *Handle) NetSysctl(key string) (string, error) {
	var v string
	err := h.sysctl(key, func(path string) error {
		b, err := os.ReadFile(path)
		v = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("read net.%s in network namespace %s: %w", strings.ReplaceAll(key, "/", "."), h.where(), err)
	}
	return v, nil
}

// SetNetSysctl makes the network sysctl at key (e.g.
// "ipv4/conf/ul0/rp_filter") hold value in the handle's namespace, and
// reports whether it had to write it.
func (h *Handle) SetNetSysctl(key, value string) (changed bool, err error) {
	err = h.sysctl(key, func(path string) error {
		b, err := os.ReadFile(path)
		if err != nil || strings.TrimSpace(string(b)) == value {
			return err
		}
		changed = true
		return os.WriteFile(path, []byte(value), 0o644)
	})
	if err != nil {
		return false, fmt.Errorf("set net.%s = %s in network namespace %s: %w", strings.ReplaceAll(key, "/", "."), value, h.where(), err)
	}
	return changed, nil
}

// sysctl runs fn on /proc/sys/net/key from a thread inside the handle's
// namespace: /proc/sys/net shows the namespace of the thread that opens it.
func (h *Handle) sysctl(key string, fn func(path string) error) error {
	if key == "" || filepath.IsAbs(key) || filepath.Clean(key) != key || strings.HasPrefix(key, "..") {
		return fmt.Errorf("want a relative path under /proc/sys/net such as ipv4/conf/eth0/rp_filter, not %q", key)
	}
	path := filepath.Join("/proc/sys/net", key)
	if h.path == "" {
		return fn(path)
	}
	return runInNS(h.ns, func() error { return fn(path) })
}
