package link

import (
	"net"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestPrepareThenSetupWorkload: PrepareWorkload makes the pair with the
// host end up and the namespace end down without an address; SetupWorkload
// then completes the same pair (same host end) as if it had made it.
func TestPrepareThenSetupWorkload(t *testing.T) {
	needRoot(t)
	t.Parallel()
	hostNS := testNS(t, "host")
	s := workloadSpec(t, hostNS, "10.128.0.7/23")
	idx, existed, err := PrepareWorkload(WorkloadIface{HostName: s.HostName, HostNSPath: s.HostNSPath, ContainerIfname: s.ContainerIfname, NetNSPath: s.NetNSPath, MTU: s.MTU})
	if err != nil || existed {
		t.Fatalf("PrepareWorkload: existed %v, %v; want a new pair", existed, err)
	}
	host := openT(t, hostNS)
	hl := mustLink(t, host, s.HostName)
	if hl.Attrs().Index != idx || hl.Attrs().Flags&net.FlagUp == 0 || hl.Attrs().MTU != s.MTU {
		t.Errorf("host end: index %d (returned %d), flags %v, MTU %d; want up, MTU %d", hl.Attrs().Index, idx, hl.Attrs().Flags, hl.Attrs().MTU, s.MTU)
	}
	wl := openT(t, s.NetNSPath)
	l := mustLink(t, wl, "eth0")
	addrs, err := wl.addrs(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if l.Attrs().Flags&net.FlagUp != 0 || len(addrs) != 0 {
		t.Errorf("namespace end after PrepareWorkload: flags %v, addresses %v; want down, none", l.Attrs().Flags, addrs)
	}
	if again, existed, err := PrepareWorkload(WorkloadIface{HostName: s.HostName, HostNSPath: s.HostNSPath, ContainerIfname: s.ContainerIfname, NetNSPath: s.NetNSPath, MTU: s.MTU}); err != nil || again != idx || !existed {
		t.Errorf("PrepareWorkload again: index %d, existed %v, %v; want %d, true, nil", again, existed, err, idx)
	}
	if got := setup(t, s); got != idx {
		t.Errorf("SetupWorkload after PrepareWorkload: host end index %d, want the prepared %d", got, idx)
	}
	if err := CheckWorkload(s); err != nil {
		t.Errorf("CheckWorkload after prepare + setup: %v", err)
	}
	if a := mustLink(t, wl, "eth0").Attrs(); a.HardwareAddr.String() != s.MAC.String() || a.Flags&net.FlagUp == 0 {
		t.Errorf("eth0 after setup: MAC %s flags %v; want %s, up", a.HardwareAddr, a.Flags, s.MAC)
	}
	if _, _, err := PrepareWorkload(WorkloadIface{HostName: s.HostName, ContainerIfname: "eth0"}); err == nil {
		t.Error("PrepareWorkload without a namespace path: no error")
	}
}
