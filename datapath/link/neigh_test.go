package link

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// kernelAtLeast reports whether the running kernel is at least major.minor.
func kernelAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	f := strings.FieldsFunc(unix.ByteSliceToString(u.Release[:]), func(r rune) bool { return r < '0' || r > '9' })
	if len(f) < 2 {
		t.Fatalf("kernel release %q", u.Release)
	}
	ma, _ := strconv.Atoi(f[0])
	mi, _ := strconv.Atoi(f[1])
	return ma > major || ma == major && mi >= minor
}

// TestNeighbors: a host namespace and a peer behind a veth, underlay
// addresses 198.18.1.0/24. KeepNeighbor resolves the peer (the kernel
// ARPs at once) and keeps it managed; RouteTo names the next hop;
// DeleteNeighbor forgets it.
func TestNeighbors(t *testing.T) {
	needRoot(t)
	t.Parallel()
	hostNS := testNS(t, "nhost")
	peer := netip.MustParseAddr("198.18.1.2")
	spec := WorkloadIface{
		HostName: HostVethName("ctr-"+randHex(8), "eth0"), HostNSPath: hostNS,
		ContainerIfname: "eth0", NetNSPath: testNS(t, "npeer"),
		MAC: net.HardwareAddr{0x0a, 0x58, 198, 18, 1, 2}, Addr: netip.PrefixFrom(peer, 24),
		Gateway: netip.MustParseAddr("198.18.1.1"), MTU: 1500,
	}
	setup(t, spec)
	t.Cleanup(func() { _ = TeardownWorkload(hostNS, spec.HostName) })
	h := openT(t, hostNS)
	dev := spec.HostName
	if _, err := h.SetupHostIface(HostIface{Name: dev, Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.1.1/24")}}); err != nil {
		t.Fatal(err)
	}
	waitOperUp(t, h, dev)

	lookup := func() (Neighbor, bool) {
		t.Helper()
		ns, err := h.Neighbors(dev)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			if n.IP == peer {
				return n, true
			}
		}
		return Neighbor{}, false
	}
	if n, ok := lookup(); ok {
		t.Fatalf("neighbour entry before anything was sent: %+v", n)
	}
	for range 2 { // the second time changes nothing
		if err := h.KeepNeighbor(dev, peer); err != nil {
			t.Fatal(err)
		}
		var n Neighbor
		for deadline := time.Now().Add(time.Second); ; time.Sleep(5 * time.Millisecond) {
			var ok bool
			if n, ok = lookup(); ok && n.Resolved() || time.Now().After(deadline) {
				break
			}
		}
		if !n.Resolved() || n.MAC.String() != spec.MAC.String() {
			t.Fatalf("after KeepNeighbor: %+v (%s); want %s resolved", n, n.StateString(), spec.MAC)
		}
		if managed := kernelAtLeast(t, 5, 16); n.Managed != managed {
			t.Errorf("managed = %v, want %v (kernel 5.16 or later)", n.Managed, managed)
		}
	}
	if err := h.KeepNeighbor(dev, netip.MustParseAddr("2001:db8::1")); err == nil {
		t.Error("KeepNeighbor(IPv6): no error")
	}

	if d, gw, err := h.RouteTo(peer); err != nil || d != dev || gw.IsValid() {
		t.Errorf("RouteTo(%s) = %q, %v, %v; want %q on-link", peer, d, gw, err, dev)
	}
	l := mustLink(t, h, dev)
	if err := h.nl.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(netip.MustParsePrefix("198.19.0.0/24")), Gw: peer.AsSlice()}); err != nil {
		t.Fatal(err)
	}
	if d, gw, err := h.RouteTo(netip.MustParseAddr("198.19.0.9")); err != nil || d != dev || gw != peer {
		t.Errorf("RouteTo(198.19.0.9) = %q, %v, %v; want %q via %s", d, gw, err, dev, peer)
	}
	if d, gw, err := h.RouteTo(netip.MustParseAddr("198.19.1.9")); err == nil {
		t.Errorf("RouteTo without a route = %q, %v; want an error", d, gw)
	}

	for range 2 {
		if err := h.DeleteNeighbor(dev, peer); err != nil {
			t.Fatal(err)
		}
	}
	if n, ok := lookup(); ok {
		t.Errorf("after DeleteNeighbor: %+v", n)
	}
}
