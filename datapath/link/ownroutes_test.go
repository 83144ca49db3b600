package link

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestSetProtoRoutes: routes of one protocol are kept exactly, through one
// link, next to SetupHostIface's routes (RouteProtocol), which neither
// removes.
func TestSetProtoRoutes(t *testing.T) {
	needRoot(t)
	t.Parallel()
	h := openT(t, testNS(t, "protort"))
	for _, name := range []string{"x0", "x1"} {
		if _, err := h.EnsureBridge(name, 0); err != nil {
			t.Fatal(err)
		}
	}
	cluster, svc, other := netip.MustParsePrefix("10.128.0.0/14"), netip.MustParsePrefix("172.30.0.0/16"), netip.MustParsePrefix("172.31.0.0/16")
	host := HostIface{Name: "x0", Addrs: []netip.Prefix{netip.MustParsePrefix("10.128.0.1/23")}, Routes: []netip.Prefix{cluster}}
	if _, err := h.SetupHostIface(host); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		dev   string
		dsts  []netip.Prefix
		nWant int
	}{
		{"x0", []netip.Prefix{svc}, 1},
		{"x0", []netip.Prefix{svc}, 0},
		{"x0", []netip.Prefix{svc, other}, 1},
		{"x1", []netip.Prefix{svc}, 3}, // both through x0 go, one through x1 comes
		{"gone", nil, 1},               // no destinations: the link need not exist
	}
	for i, s := range steps {
		changes, err := h.SetProtoRoutes(84, s.dev, s.dsts)
		if err != nil || len(changes) != s.nWant {
			t.Fatalf("step %d: SetProtoRoutes(84, %s, %v) = %q, %v; want %d changes", i, s.dev, s.dsts, changes, err, s.nWant)
		}
		var got []netip.Prefix
		for _, name := range []string{"x0", "x1"} {
			rs, err := h.routes(mustLink(t, h, name), netlink.FAMILY_V4)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				if r.Protocol == 84 && name == s.dev {
					got = append(got, keyOf(r).dst)
				} else if r.Protocol == 84 {
					t.Errorf("step %d: route %s proto 84 through %s, want only through %s", i, keyOf(r), name, s.dev)
				}
			}
		}
		slices.SortFunc(got, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		if !slices.Equal(got, s.dsts) {
			t.Errorf("step %d: proto 84 routes %v, want %v", i, got, s.dsts)
		}
	}
	if changes, err := h.SetupHostIface(host); err != nil || len(changes) != 0 {
		t.Errorf("SetupHostIface after SetProtoRoutes = %q, %v; want its own route untouched", changes, err)
	}
	if _, err := h.SetProtoRoutes(84, "gone", []netip.Prefix{svc}); err == nil {
		t.Error("SetProtoRoutes through a missing link: no error")
	}
}
