package link

import (
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestSetupWorkload(t *testing.T) {
	needRoot(t)
	t.Parallel()
	hostNS := testNS(t, "host")
	s := workloadSpec(t, hostNS, "10.128.0.5/23")
	idx := setup(t, s)

	wl := openT(t, s.NetNSPath)
	l := mustLink(t, wl, "eth0")
	a := l.Attrs()
	if _, ok := l.(*netlink.Veth); !ok {
		t.Errorf("eth0 is a %s, want veth", l.Type())
	}
	if a.HardwareAddr.String() != s.MAC.String() {
		t.Errorf("eth0 MAC %s, want %s", a.HardwareAddr, s.MAC)
	}
	if a.MTU != 1450 {
		t.Errorf("eth0 MTU %d, want 1450", a.MTU)
	}
	if a.Flags&net.FlagUp == 0 {
		t.Errorf("eth0 is down")
	}
	addrs, err := wl.addrs(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.128.0.5/23" {
		t.Errorf("eth0 IPv4 addresses %v, want only 10.128.0.5/23", addrs)
	}
	routes, err := wl.routes(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var dflt []string
	for _, r := range routes {
		if k := keyOf(r); k.dst.Bits() == 0 {
			dflt = append(dflt, k.String())
		}
	}
	if len(dflt) != 1 || dflt[0] != "default via 10.128.0.1" {
		t.Errorf("default routes %v, want [default via 10.128.0.1]", dflt)
	}
	if on, err := wl.TxChecksum("eth0"); err != nil || on {
		t.Errorf("eth0 tx checksum offload on=%v err=%v, want off", on, err)
	}
	// Cross-check with the ethtool binary where there is one.
	if _, err := exec.LookPath("ethtool"); err == nil {
		out, err := exec.Command("ip", "netns", "exec", filepath.Base(s.NetNSPath), "ethtool", "-k", "eth0").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "tx-checksumming: off") {
			t.Errorf("ethtool -k eth0 (err %v) does not say tx-checksumming: off:\n%s", err, out)
		}
	}

	host := openT(t, hostNS)
	hl := mustLink(t, host, s.HostName)
	if hl.Attrs().Index != idx {
		t.Errorf("host end index %d, SetupWorkload returned %d", hl.Attrs().Index, idx)
	}
	if hl.Attrs().Flags&net.FlagUp == 0 || hl.Attrs().MTU != 1450 {
		t.Errorf("host end flags %v MTU %d, want up and 1450", hl.Attrs().Flags, hl.Attrs().MTU)
	}
	if err := CheckWorkload(s); err != nil {
		t.Errorf("CheckWorkload right after setup: %v", err)
	}
	names, err := host.LinkNames("sdn")
	if err != nil || len(names) != 1 || names[0] != s.HostName {
		t.Errorf("LinkNames(sdn) = %v, %v; want [%s]", names, err, s.HostName)
	}
}

func TestSetupWorkloadIdempotent(t *testing.T) {
	needRoot(t)
	t.Parallel()
	hostNS := testNS(t, "host")
	s := workloadSpec(t, hostNS, "10.128.0.6/23")
	idx := setup(t, s)
	wl, host := openT(t, s.NetNSPath), openT(t, hostNS)
	waitOperUp(t, wl, "eth0")
	waitOperUp(t, host, s.HostName)
	before := snapshot(t, wl, "eth0") + "\n" + snapshot(t, host, s.HostName)

	// Any IPv4 address or route change in either namespace during the second
	// call is a change; link attributes are compared by snapshot.
	done := make(chan struct{})
	defer close(done)
	events := make(chan string, 64)
	for _, h := range []*Handle{wl, host} {
		addrCh := make(chan netlink.AddrUpdate, 16)
		routeCh := make(chan netlink.RouteUpdate, 16)
		if err := netlink.AddrSubscribeWithOptions(addrCh, done, netlink.AddrSubscribeOptions{Namespace: &h.ns}); err != nil {
			t.Fatal(err)
		}
		if err := netlink.RouteSubscribeWithOptions(routeCh, done, netlink.RouteSubscribeOptions{Namespace: &h.ns}); err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				select {
				case u, ok := <-addrCh:
					if ok && u.LinkAddress.IP.To4() != nil {
						events <- "address " + u.LinkAddress.String()
					}
				case u, ok := <-routeCh:
					if ok && u.Family == netlink.FAMILY_V4 {
						events <- "route " + keyOf(u.Route).String()
					}
				case <-done:
					return
				}
			}
		}()
	}

	idx2 := setup(t, s)
	if idx2 != idx {
		t.Errorf("second SetupWorkload returned index %d, first %d", idx2, idx)
	}
	select {
	case e := <-events:
		t.Errorf("second SetupWorkload changed something: %s", e)
	case <-time.After(300 * time.Millisecond):
	}
	if after := snapshot(t, wl, "eth0") + "\n" + snapshot(t, host, s.HostName); after != before {
		t.Errorf("second SetupWorkload changed the links:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	for i := range 2 {
		if err := TeardownWorkload(hostNS, s.HostName); err != nil {
			t.Fatalf("TeardownWorkload #%d: %v", i+1, err)
		}
	}
	for _, c := range []struct {
		h    *Handle
		name string
	}{{host, s.HostName}, {wl, "eth0"}} {
		if l, err := c.h.lookup(c.name); l != nil || err != nil {
			t.Errorf("%s still in %s after teardown (err %v)", c.name, c.h.where(), err)
		}
	}
}

func TestTeardownAfterNetnsGone(t *testing.T) {
	needRoot(t)
	t.Parallel()
	hostNS := testNS(t, "host")
	s := workloadSpec(t, hostNS, "10.128.0.7/23")
	setup(t, s)
	if err := DeleteNS(filepath.Base(s.NetNSPath)); err != nil {
		t.Fatal(err)
	}
	if err := TeardownWorkload(hostNS, s.HostName); err != nil {
		t.Fatalf("TeardownWorkload after the workload namespace was deleted: %v", err)
	}
	if err := TeardownWorkload(hostNS, s.HostName); err != nil {
		t.Fatalf("second TeardownWorkload: %v", err)
	}
	host := openT(t, hostNS)
	if l, err := host.lookup(s.HostName); l != nil || err != nil {
		t.Errorf("host end still there (err %v)", err)
	}
	if err := TeardownWorkload(filepath.Join(NSDir, "sdnt-gone-"+randHex(4)), s.HostName); err != nil {
		t.Errorf("TeardownWorkload in a host namespace that does not exist: %v", err)
	}
}

func TestCheckWorkloadReportsDrift(t *testing.T) {
	needRoot(t)
	t.Parallel()
	s := workloadSpec(t, testNS(t, "host"), "10.128.0.8/23")
	setup(t, s)
	wl := openT(t, s.NetNSPath)
	l := mustLink(t, wl, "eth0")
	if err := wl.nl.LinkSetMTU(l, 1400); err != nil {
		t.Fatal(err)
	}
	if err := wl.nl.AddrDel(l, &netlink.Addr{IPNet: ipNet(s.Addr)}); err != nil {
		t.Fatal(err)
	}
	if err := wl.nl.AddrAdd(l, &netlink.Addr{IPNet: ipNet(netip.MustParsePrefix("10.128.0.9/23"))}); err != nil {
		t.Fatal(err)
	}
	err := CheckWorkload(s)
	if err == nil {
		t.Fatal("CheckWorkload after changing MTU and address: nil error")
	}
	for _, want := range []string{"eth0: MTU is 1400, want 1450", "eth0: address 10.128.0.8/23 missing", "eth0: has address 10.128.0.9/23"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("CheckWorkload error does not say %q:\n%v", want, err)
		}
	}
	// (The kernel dropped the default route with the address it relied on, so
	// that is reported too.)
	for _, wrong := range []string{"MAC is", "checksum", "link is down", s.HostName + ":", "not the peer", "missing from"} {
		if strings.Contains(err.Error(), wrong) {
			t.Errorf("CheckWorkload reports a %s difference that is not there:\n%v", wrong, err)
		}
	}
	setup(t, s)
	if err := CheckWorkload(s); err != nil {
		t.Errorf("CheckWorkload after repairing setup: %v", err)
	}
}

func TestSetupRepairsStaleState(t *testing.T) {
	needRoot(t)
	t.Parallel()
	hostNS := testNS(t, "host")
	host := openT(t, hostNS)

	// A pair whose namespace end was never configured: repaired in place.
	s := workloadSpec(t, hostNS, "10.128.0.10/23")
	idx := setup(t, s)
	wl := openT(t, s.NetNSPath)
	l := mustLink(t, wl, "eth0")
	if err := wl.nl.LinkSetDown(l); err != nil {
		t.Fatal(err)
	}
	if err := wl.nl.AddrDel(l, &netlink.Addr{IPNet: ipNet(s.Addr)}); err != nil {
		t.Fatal(err)
	}
	if err := wl.SetTxChecksum("eth0", true); err != nil {
		t.Fatal(err)
	}
	err := CheckWorkload(s)
	for _, want := range []string{"link is down", "address 10.128.0.10/23 missing", "route default via 10.128.0.1 missing", "tx checksum offload is on, want off"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckWorkload does not say %q: %v", want, err)
		}
	}
	if idx2 := setup(t, s); idx2 != idx {
		t.Errorf("repair recreated the pair: index %d, was %d", idx2, idx)
	}
	if err := CheckWorkload(s); err != nil {
		t.Errorf("after repair: %v", err)
	}

	// A host end of our name whose peer is elsewhere: recreated.
	s2 := workloadSpec(t, hostNS, "10.128.0.11/23")
	stale := netlink.NewVeth(netlink.LinkAttrs{Name: s2.HostName, TxQLen: -1, NetNsID: -1})
	stale.PeerName = "sdnt-stale"
	if err := host.nl.LinkAdd(stale); err != nil {
		t.Fatal(err)
	}
	setup(t, s2)
	if err := CheckWorkload(s2); err != nil {
		t.Errorf("after recreating a stale pair: %v", err)
	}
	if l, _ := host.lookup("sdnt-stale"); l != nil {
		t.Errorf("stale peer still exists")
	}

	// Someone else's eth0 in the namespace: an error, left alone.
	s3 := workloadSpec(t, hostNS, "10.128.0.12/23")
	wl3 := openT(t, s3.NetNSPath)
	other := netlink.NewVeth(netlink.LinkAttrs{Name: "eth0", TxQLen: -1, NetNsID: -1})
	other.PeerName = "other0"
	if err := wl3.nl.LinkAdd(other); err != nil {
		t.Fatal(err)
	}
	if _, err := SetupWorkload(s3); err == nil || !strings.Contains(err.Error(), `"eth0" already exists`) {
		t.Errorf("SetupWorkload over a foreign eth0: %v, want an error saying it already exists", err)
	}
	if l, _ := wl3.lookup("other0"); l == nil {
		t.Errorf("SetupWorkload removed a foreign interface")
	}
}

func TestGatewayOutsidePrefix(t *testing.T) {
	needRoot(t)
	t.Parallel()
	s := workloadSpec(t, testNS(t, "host"), "10.128.2.5/32")
	setup(t, s)
	wl := openT(t, s.NetNSPath)
	routesOf := func() string {
		rs, err := wl.routes(mustLink(t, wl, "eth0"), netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rs {
			out = append(out, keyOf(r).String())
		}
		slices.Sort(out)
		return strings.Join(out, ", ")
	}
	if got, want := routesOf(), "10.128.0.1/32 scope link, default via 10.128.0.1"; got != want {
		t.Errorf("routes %q, want %q", got, want)
	}
	if err := CheckWorkload(s); err != nil {
		t.Error(err)
	}
	s.Gateway = netip.MustParseAddr("10.128.0.9")
	setup(t, s)
	if got, want := routesOf(), "10.128.0.9/32 scope link, default via 10.128.0.9"; got != want {
		t.Errorf("after changing the gateway: routes %q, want %q", got, want)
	}
}

// TestHostInCurrentNamespace exercises HostNSPath "" (the caller's
// namespace) from a thread moved into a test namespace, so that nothing is
// created in the namespace the test binary runs in.
func TestHostInCurrentNamespace(t *testing.T) {
	needRoot(t)
	t.Parallel()
	hostNS := testNS(t, "host")
	s := workloadSpec(t, hostNS, "10.128.0.13/23")
	s.HostNSPath = ""
	hns, err := netns.GetFromPath(hostNS)
	if err != nil {
		t.Fatal(err)
	}
	defer hns.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := netns.Set(hns); err != nil {
			errc <- err
			return
		}
		_, err := SetupWorkload(s)
		if err == nil {
			err = CheckWorkload(s)
		}
		if err == nil {
			err = TeardownWorkload("", s.HostName)
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
