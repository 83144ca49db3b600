package link

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
)

func TestSetupHostIfaceAndMoveAddr(t *testing.T) {
	needRoot(t)
	t.Parallel()
	h := openT(t, testNS(t, "hostif"))
	for _, name := range []string{"x0", "x1"} {
		if _, err := h.EnsureBridge(name, 0); err != nil {
			t.Fatal(err)
		}
	}
	mac := net.HardwareAddr{0x0a, 0x58, 0x0a, 0x80, 0x00, 0x01}
	spec := HostIface{Name: "x0", MAC: mac, MTU: 1400,
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.128.0.1/23")}, Routes: []netip.Prefix{netip.MustParsePrefix("10.128.0.0/14")}}
	if changes, err := h.SetupHostIface(spec); err != nil || len(changes) != 4 { // MAC, MTU, address, route
		t.Fatalf("first SetupHostIface = %q, %v", changes, err)
	}
	if changes, err := h.SetupHostIface(spec); err != nil || len(changes) != 0 {
		t.Fatalf("second SetupHostIface = %q, %v; want no changes", changes, err)
	}
	info, ok, err := h.Iface("x0")
	if err != nil || !ok || info.MAC.String() != mac.String() || info.MTU != 1400 || !info.Up ||
		!slices.Equal(info.Addrs, spec.Addrs) {
		t.Fatalf("Iface(x0) = %+v, %v, %v", info, ok, err)
	}
	if _, ok, err := h.Iface("nope"); ok || err != nil {
		t.Errorf("Iface(missing) = %v, %v", ok, err)
	}

	// A default route via a gateway moves with the address.
	x0 := mustLink(t, h, "x0")
	if err := h.nl.RouteAdd(&netlink.Route{LinkIndex: x0.Attrs().Index, Gw: net.ParseIP("10.128.0.254")}); err != nil {
		t.Fatal(err)
	}
	spec.Routes = nil // sdn's route through x0 goes; the default route is not sdn's
	if changes, err := h.SetupHostIface(spec); err != nil || len(changes) != 1 {
		t.Fatalf("SetupHostIface without routes = %q, %v; want the route removed", changes, err)
	}
	p := spec.Addrs[0]
	for want := range []bool{true, false} {
		moved, err := h.MoveAddr("x0", "x1", p)
		if err != nil || moved != (want == 0) {
			t.Fatalf("MoveAddr #%d = %v, %v", want+1, moved, err)
		}
	}
	x1 := mustLink(t, h, "x1")
	if info, _, _ := h.Iface("x0"); len(info.Addrs) != 0 {
		t.Errorf("x0 still has %v", info.Addrs)
	}
	if info, _, _ := h.Iface("x1"); !slices.Equal(info.Addrs, []netip.Prefix{p}) {
		t.Errorf("x1 has %v, want %v", info.Addrs, p)
	}
	rs, err := h.routes(x1, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(rs, func(r netlink.Route) bool { return keyOf(r).String() == "default via 10.128.0.254" }) {
		t.Errorf("default route not moved to x1: %v", rs)
	}
}

func TestNetSysctl(t *testing.T) {
	needRoot(t)
	t.Parallel()
	h := openT(t, testNS(t, "sysctl"))
	const key = "ipv4/conf/lo/arp_ignore"
	for want := range []bool{true, false} {
		if changed, err := h.SetNetSysctl(key, "8"); err != nil || changed != (want == 0) {
			t.Fatalf("SetNetSysctl #%d = %v, %v", want+1, changed, err)
		}
	}
	if v, err := h.NetSysctl(key); err != nil || v != "8" {
		t.Errorf("NetSysctl = %q, %v", v, err)
	}
	// Only the namespace's value changed.
	if v, err := openT(t, "").NetSysctl(key); err != nil || v == "8" {
		t.Errorf("current namespace's %s = %q, %v; the test must not change it", key, v, err)
	}
	if _, err := h.SetNetSysctl("../../etc/passwd", "x"); err == nil {
		t.Error("SetNetSysctl outside /proc/sys/net: no error")
	}
}
