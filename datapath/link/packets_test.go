package link

import (
	"net/netip"
	"testing"
	"time"
)

// TestPingBetweenWorkloads sends real packets: two workloads whose host ends
// sit in a third namespace, bridged there by a Linux bridge.
func TestPingBetweenWorkloads(t *testing.T) {
	needRoot(t)
	t.Parallel()
	hostNS := testNS(t, "host")
	host := openT(t, hostNS)
	if _, err := host.EnsureBridge("br0", 1450); err != nil {
		t.Fatal(err)
	}
	a := workloadSpec(t, hostNS, "10.128.0.2/23")
	b := workloadSpec(t, hostNS, "10.128.0.3/23")
	attach := func(s WorkloadIface) {
		t.Helper()
		setup(t, s)
		if err := host.SetMaster(s.HostName, "br0"); err != nil {
			t.Fatal(err)
		}
	}
	attach(a)
	if n, err := ping(a.NetNSPath, b.Addr.Addr(), 1, time.Second); err != nil || n != 0 {
		t.Fatalf("ping a -> b before b exists: %d replies, err %v; want none", n, err)
	}
	attach(b)
	if n, err := ping(a.NetNSPath, b.Addr.Addr(), 3, time.Second); err != nil || n == 0 {
		t.Fatalf("ping a -> b: %d of 3 replies, err %v", n, err)
	}
	if n, err := ping(b.NetNSPath, a.Addr.Addr(), 3, time.Second); err != nil || n == 0 {
		t.Fatalf("ping b -> a: %d of 3 replies, err %v", n, err)
	}
	// Idempotent setup and SetMaster leave the path working.
	attach(a)
	if n, err := ping(b.NetNSPath, a.Addr.Addr(), 1, time.Second); err != nil || n != 1 {
		t.Fatalf("ping b -> a after repeating setup: %d replies, err %v", n, err)
	}
	if err := TeardownWorkload(hostNS, b.HostName); err != nil {
		t.Fatal(err)
	}
	if n, err := ping(a.NetNSPath, netip.MustParseAddr("10.128.0.3"), 1, time.Second); n != 0 {
		t.Fatalf("ping a -> b after b's teardown: %d replies (err %v), want none", n, err)
	}
}
