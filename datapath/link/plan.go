package link

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RouteProtocol marks the routes sdn installs (`ip route` shows "proto 83"),
// so that a later setup recognises and replaces its own stale routes and
// leaves everybody else's alone.
const RouteProtocol = 83

// A step is one difference between the kernel and the spec, and the change
// that removes it. SetupWorkload applies steps in order; CheckWorkload
// reports them.
type step struct {
	what string
	do   func() error
}

// hostEndSteps compares the host end with spec.
func hostEndSteps(h *Handle, l netlink.Link, spec WorkloadIface) []step {
	return linkSteps(h, l, spec.MTU, nil)
}

// linkSteps compares MAC (if mac != nil), MTU (if mtu > 0) and up state.
func linkSteps(h *Handle, l netlink.Link, mtu int, mac net.HardwareAddr) []step {
	a := l.Attrs()
	name := a.Name
	up := a.Flags&net.FlagUp != 0
	var steps []step
	if mac != nil && !bytes.Equal(a.HardwareAddr, mac) {
		steps = append(steps, step{fmt.Sprintf("%s: MAC is %s, want %s", name, a.HardwareAddr, mac), func() error {
			// Not every driver can change the address of a running device.
			if up {
				if err := h.nl.LinkSetDown(l); err != nil {
					return err
				}
			}
			if err := h.nl.LinkSetHardwareAddr(l, mac); err != nil {
				return err
			}
			if up {
				return h.nl.LinkSetUp(l)
			}
			return nil
		}})
	}
	if mtu > 0 && a.MTU != mtu {
		steps = append(steps, step{fmt.Sprintf("%s: MTU is %d, want %d", name, a.MTU, mtu), func() error {
			return h.nl.LinkSetMTU(l, mtu)
		}})
	}
	if !up {
		steps = append(steps, step{fmt.Sprintf("%s: link is down, want up", name), func() error {
			return h.nl.LinkSetUp(l)
		}})
	}
	return steps
}

// nsEndSteps compares the namespace end (l, in h's namespace) with spec:
// MAC, MTU, up, exactly one address of spec's family (link-local ones
// aside), the gateway routes and tx checksum offload.
func nsEndSteps(h *Handle, l netlink.Link, spec WorkloadIface) ([]step, error) {
	name := l.Attrs().Name
	steps := linkSteps(h, l, spec.MTU, spec.MAC)

	family := netlink.FAMILY_V4
	if spec.Addr.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := h.addrs(l, family)
	if err != nil {
		return nil, err
	}
	haveAddr := false
	for _, a := range addrs {
		p, ok := prefixOf(a.IPNet)
		switch {
		case ok && p == spec.Addr:
			haveAddr = true
		case ok && p.Addr().IsLinkLocalUnicast():
		default:
			steps = append(steps, step{fmt.Sprintf("%s: has address %s, want only %s", name, a.IPNet, spec.Addr), func() error {
				return h.nl.AddrDel(l, &a)
			}})
		}
	}
	if !haveAddr {
		steps = append(steps, step{fmt.Sprintf("%s: address %s missing", name, spec.Addr), func() error {
			a := &netlink.Addr{IPNet: ipNet(spec.Addr)}
			if family == netlink.FAMILY_V6 {
				a.Flags = unix.IFA_F_NODAD // the control plane hands out unique addresses
			}
			return h.nl.AddrAdd(l, a)
		}})
	}

	rs, err := routeSteps(h, l, spec, family)
	if err != nil {
		return nil, err
	}
	steps = append(steps, rs...)

	on, err := h.TxChecksum(name)
	if err != nil {
		return nil, err
	}
	if want := !spec.TxChecksumOff; on != want {
		steps = append(steps, step{fmt.Sprintf("%s: tx checksum offload is %s, want %s", name, onOff(on), onOff(want)), func() error {
			return h.SetTxChecksum(name, want)
		}})
	}
	return steps, nil
}

type routeKey struct {
	dst netip.Prefix
	gw  netip.Addr
}

func (k routeKey) String() string {
	dst := k.dst.String()
	if k.dst.Bits() == 0 {
		dst = "default"
	}
	if k.gw.IsValid() {
		return dst + " via " + k.gw.String()
	}
	return dst + " scope link"
}

func keyOf(r netlink.Route) routeKey {
	var k routeKey
	k.dst, _ = prefixOf(r.Dst)
	if gw, ok := netip.AddrFromSlice(r.Gw); ok {
		k.gw = gw.Unmap()
	}
	return k
}

// routeSteps compares the routes through l with the ones spec implies: a
// default route via the gateway and, if the gateway lies outside the
// address's prefix, an on-link host route to it (added first). Existing
// routes that are not wanted are removed if they are sdn's (RouteProtocol)
// or a default route: the namespace end is ours, and so is its default.
func routeSteps(h *Handle, l netlink.Link, spec WorkloadIface, family int) ([]step, error) {
	name := l.Attrs().Name
	var want []netlink.Route
	if gw := spec.Gateway; gw.IsValid() {
		if !spec.Addr.Contains(gw) {
			want = append(want, netlink.Route{
				LinkIndex: l.Attrs().Index, Dst: ipNet(netip.PrefixFrom(gw, gw.BitLen())),
				Scope: netlink.SCOPE_LINK, Protocol: RouteProtocol,
			})
		}
		unspec := netip.IPv4Unspecified()
		if gw.Is6() {
			unspec = netip.IPv6Unspecified()
		}
		want = append(want, netlink.Route{
			LinkIndex: l.Attrs().Index, Dst: ipNet(netip.PrefixFrom(unspec, 0)), Gw: gw.AsSlice(),
			Protocol: RouteProtocol,
		})
	}
	have, err := h.routes(l, family)
	if err != nil {
		return nil, err
	}
	wanted := map[routeKey]bool{}
	for _, r := range want {
		wanted[keyOf(r)] = true
	}
	present := map[routeKey]bool{}
	var steps []step
	for _, r := range have {
		k := keyOf(r)
		present[k] = true
		if wanted[k] || r.Protocol == unix.RTPROT_KERNEL || (r.Protocol != RouteProtocol && k.dst.Bits() != 0) {
			continue
		}
		steps = append(steps, step{fmt.Sprintf("%s: has route %s, not wanted", name, k), func() error {
			return h.nl.RouteDel(&r)
		}})
	}
	for _, r := range want {
		if k := keyOf(r); !present[k] {
			steps = append(steps, step{fmt.Sprintf("%s: route %s missing", name, k), func() error {
				return h.nl.RouteAdd(&r)
			}})
		}
	}
	return steps, nil
}

// CheckWorkload verifies that the pair still matches spec (CNI CHECK): the
// namespace end exists with the spec's MAC, MTU, address, routes and
// checksum setting, is up, and is paired with an up host end. The error
// names every difference.
func CheckWorkload(spec WorkloadIface) error {
	if err := spec.validate(); err != nil {
		return err
	}
	hostH, contH, err := openPair(spec)
	if err != nil {
		return fmt.Errorf("check workload interface %s: %w", spec, err)
	}
	defer hostH.Close()
	defer contH.Close()

	cont, err := contH.lookup(spec.ContainerIfname)
	if err != nil {
		return fmt.Errorf("check workload interface %s: %w", spec, err)
	}
	if cont == nil {
		return fmt.Errorf("check workload interface %s: %q does not exist in network namespace %s",
			spec, spec.ContainerIfname, contH.where())
	}
	var diffs []string
	host, err := hostH.lookup(spec.HostName)
	if err != nil {
		return fmt.Errorf("check workload interface %s: %w", spec, err)
	}
	ok := false
	if host != nil {
		if ok, err = paired(hostH, contH, host, cont); err != nil {
			return fmt.Errorf("check workload interface %s: %w", spec, err)
		}
	}
	switch {
	case host == nil:
		diffs = append(diffs, fmt.Sprintf("host end %s missing from network namespace %s", spec.HostName, hostH.where()))
	case !ok:
		diffs = append(diffs, fmt.Sprintf("host end %s is not the peer of %s", spec.HostName, spec.ContainerIfname))
	default:
		for _, s := range hostEndSteps(hostH, host, spec) {
			diffs = append(diffs, "host end "+s.what)
		}
	}
	steps, err := nsEndSteps(contH, cont, spec)
	if err != nil {
		return fmt.Errorf("check workload interface %s: %w", spec, err)
	}
	for _, s := range steps {
		diffs = append(diffs, s.what)
	}
	if len(diffs) > 0 {
		return fmt.Errorf("workload interface %s differs from spec: %s", spec, strings.Join(diffs, "; "))
	}
	return nil
}
