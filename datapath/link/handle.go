package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Handle is a netlink handle for one network namespace. It is not safe for
// concurrent use; open one per goroutine (they are cheap).
type Handle struct {
	path    string // "" = the namespace the process runs in
	ns      netns.NsHandle
	nl      *netlink.Handle
	ioctlFd int // socket for SIOCETHTOOL inside ns, -1 until first needed
}

// Open returns a handle for the network namespace at nsPath (a file such as
// /run/netns/NAME or /proc/PID/ns/net); "" means the namespace the process
// runs in. The caller's goroutine never changes namespace.
func Open(nsPath string) (*Handle, error) {
	var (
		ns  netns.NsHandle
		err error
	)
	if nsPath == "" {
		ns, err = netns.Get()
	} else {
		ns, err = netns.GetFromPath(nsPath)
	}
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", nsName(nsPath), err)
	}
	var nh *netlink.Handle
	if nsPath == "" {
		nh, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	} else {
		nh, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	}
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("open netlink socket in network namespace %s: %w", nsName(nsPath), err)
	}
	return &Handle{path: nsPath, ns: ns, nl: nh, ioctlFd: -1}, nil
}

// Close releases the handle's sockets and namespace reference.
func (h *Handle) Close() {
	if h == nil {
		return
	}
	if h.nl != nil {
		h.nl.Close()
		h.nl = nil
	}
	if h.ioctlFd >= 0 {
		unix.Close(h.ioctlFd)
		h.ioctlFd = -1
	}
	if h.ns.IsOpen() {
		h.ns.Close()
	}
}

// Path returns the namespace path the handle was opened with ("" = current).
func (h *Handle) Path() string { return h.path }

func (h *Handle) where() string { return nsName(h.path) }

// nsName is how errors name a namespace.
func nsName(path string) string {
	if path == "" {
		return "(current)"
	}
	return path
}

// errNotFound is wrapped by errors about a link that does not exist.
var errNotFound = errors.New("not found")

// linkByName returns the link called name; the error wraps errNotFound if
// there is none.
func (h *Handle) linkByName(name string) (netlink.Link, error) {
	l, err := h.lookup(name)
	if err == nil && l == nil {
		err = fmt.Errorf("link %q in network namespace %s: %w", name, h.where(), errNotFound)
	}
	return l, err
}

// lookup returns the link called name, or nil and no error if there is none.
func (h *Handle) lookup(name string) (netlink.Link, error) {
	l, err := retryDump("look up link "+name, func() (netlink.Link, error) {
		return h.nl.LinkByName(name)
	})
	if err != nil {
		if _, ok := errors.AsType[netlink.LinkNotFoundError](err); ok || errors.Is(err, unix.ENODEV) {
			return nil, nil
		}
		return nil, fmt.Errorf("look up link %q in network namespace %s: %w", name, h.where(), err)
	}
	return l, nil
}

func (h *Handle) links() ([]netlink.Link, error) {
	ls, err := retryDump("list links in "+h.where(), h.nl.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list links in network namespace %s: %w", h.where(), err)
	}
	return ls, nil
}

// addrs returns l's addresses of the given family (netlink.FAMILY_V4/V6).
func (h *Handle) addrs(l netlink.Link, family int) ([]netlink.Addr, error) {
	as, err := retryDump("list addresses", func() ([]netlink.Addr, error) { return h.nl.AddrList(l, family) })
	if err != nil {
		return nil, fmt.Errorf("list addresses of %q in network namespace %s: %w", l.Attrs().Name, h.where(), err)
	}
	return as, nil
}

// routes returns the main-table routes through l of the given family.
func (h *Handle) routes(l netlink.Link, family int) ([]netlink.Route, error) {
	rs, err := retryDump("list routes", func() ([]netlink.Route, error) { return h.nl.RouteList(l, family) })
	if err != nil {
		return nil, fmt.Errorf("list routes via %q in network namespace %s: %w", l.Attrs().Name, h.where(), err)
	}
	return rs, nil
}

// LinkNames returns the sorted names of the links whose name starts with
// prefix ("" = all), e.g. LinkNames("sdn") for the agent to find host ends
// left behind by workloads it no longer knows.
func (h *Handle) LinkNames(prefix string) ([]string, error) {
	ls, err := h.links()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range ls {
		if n := l.Attrs().Name; strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}

// EnsureBridge makes a Linux bridge called name exist and be up, with the
// given MTU (0 = leave it), and returns its index. An existing link of that
// name that is not a bridge is an error, never replaced.
func (h *Handle) EnsureBridge(name string, mtu int) (int, error) {
	if err := validIfname(name); err != nil {
		return 0, err
	}
	l, err := h.lookup(name)
	if err != nil {
		return 0, err
	}
	if l == nil {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		attrs.MTU = mtu
		if err := h.nl.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			return 0, fmt.Errorf("create bridge %q in network namespace %s: %w", name, h.where(), err)
		}
		if l, err = h.linkByName(name); err != nil {
			return 0, err
		}
	}
	if _, ok := l.(*netlink.Bridge); !ok {
		return 0, fmt.Errorf("bridge %q in network namespace %s: a %s of that name exists; remove it or pick another name",
			name, h.where(), l.Type())
	}
	if mtu > 0 && l.Attrs().MTU != mtu {
		if err := h.nl.LinkSetMTU(l, mtu); err != nil {
			return 0, fmt.Errorf("set MTU %d on bridge %q in network namespace %s: %w", mtu, name, h.where(), err)
		}
	}
	if err := h.setUp(l); err != nil {
		return 0, err
	}
	return l.Attrs().Index, nil
}

// SetMaster enslaves the link called name to the bridge called bridge; it
// does nothing if that is already so.
func (h *Handle) SetMaster(name, bridge string) error {
	l, err := h.linkByName(name)
	if err != nil {
		return err
	}
	br, err := h.linkByName(bridge)
	if err != nil {
		return err
	}
	if l.Attrs().MasterIndex == br.Attrs().Index {
		return nil
	}
	if err := h.nl.LinkSetMasterByIndex(l, br.Attrs().Index); err != nil {
		return fmt.Errorf("attach %q to bridge %q in network namespace %s: %w", name, bridge, h.where(), err)
	}
	return nil
}

// DeleteLink removes the link called name; no error if it does not exist.
func (h *Handle) DeleteLink(name string) error {
	l, err := h.lookup(name)
	if err != nil || l == nil {
		return err
	}
	return h.del(l)
}

func (h *Handle) del(l netlink.Link) error {
	err := h.nl.LinkDel(l)
	if err != nil && !errors.Is(err, unix.ENODEV) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete link %q in network namespace %s: %w", l.Attrs().Name, h.where(), err)
	}
	return nil
}

func (h *Handle) setUp(l netlink.Link) error {
	if l.Attrs().Flags&net.FlagUp != 0 {
		return nil
	}
	if err := h.nl.LinkSetUp(l); err != nil {
		return fmt.Errorf("bring up %q in network namespace %s: %w", l.Attrs().Name, h.where(), err)
	}
	return nil
}

// validIfname applies the kernel's rules for interface names
// (dev_valid_name): 1 to 15 bytes, not "." or "..", no '/', ':' or space.
func validIfname(name string) error {
	if name == "" || len(name) >= unix.IFNAMSIZ || name == "." || name == ".." ||
		strings.ContainsAny(name, "/: \t\n\r\v\f") {
		return fmt.Errorf("invalid interface name %q: want 1 to %d bytes without '/', ':' or whitespace",
			name, unix.IFNAMSIZ-1)
	}
	return nil
}

// prefixOf converts a netlink address to a netip.Prefix.
func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
