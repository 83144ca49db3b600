package alloc

import (
	"errors"
	"net/netip"
	"testing"
)

func newIPPool(t *testing.T, subnet, name string) *IPPool {
	t.Helper()
	p, err := NewIPPool(netip.MustParsePrefix(subnet), name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestIPPoolAddresses(t *testing.T) {
	p := newIPPool(t, "10.128.0.0/23", `node "n3" subnet 10.128.0.0/23`)
	if got, want := p.Gateway(), netip.MustParseAddr("10.128.0.1"); got != want {
		t.Fatalf("Gateway = %s, want %s", got, want)
	}
	if got, want := p.Pool().Capacity(), uint64(509); got != want {
		t.Fatalf("Capacity = %d, want %d (512 less network, gateway, broadcast)", got, want)
	}
	first, err := p.Allocate()
	if err != nil || first != netip.MustParseAddr("10.128.0.2") {
		t.Fatalf("first Allocate = %s, %v; want 10.128.0.2 (after the gateway)", first, err)
	}
	var last netip.Addr
	for range 508 {
		if last, err = p.Allocate(); err != nil {
			t.Fatal(err)
		}
	}
	if want := netip.MustParseAddr("10.128.1.254"); last != want {
		t.Fatalf("last Allocate = %s, want %s (before the broadcast)", last, want)
	}
	_, err = p.Allocate()
	var ex *ExhaustedError
	if !errors.As(err, &ex) {
		t.Fatalf("Allocate on a full pool = %v, want *ExhaustedError", err)
	}
	const want = `node "n3" subnet 10.128.0.0/23 is full (509 of 509 addresses used); delete unused workloads on this node or run new ones on another node`
	if err.Error() != want {
		t.Fatalf("error:\n got %s\nwant %s", err, want)
	}
	for _, a := range []string{"10.128.0.0", "10.128.0.1", "10.128.1.255"} {
		if p.InUse(netip.MustParseAddr(a)) || p.Release(netip.MustParseAddr(a)) {
			t.Errorf("reserved %s reported in use or released", a)
		}
	}
}

func TestIPPoolNextFit(t *testing.T) {
	p := newIPPool(t, "10.128.0.0/23", "")
	a, _ := p.Allocate()
	b, _ := p.Allocate()
	if !p.Release(a) {
		t.Fatalf("Release(%s) = false", a)
	}
	c, err := p.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	if c == a || c != b.Next() {
		t.Fatalf("after releasing %s, Allocate = %s; want %s (not the released address)", a, c, b.Next())
	}
}

func TestIPPoolClaimErrors(t *testing.T) {
	p := newIPPool(t, "10.128.0.0/23", `node "n3" subnet 10.128.0.0/23`)
	if err := p.Claim(netip.MustParseAddr("10.128.0.7")); err != nil {
		t.Fatal(err)
	}
	var notIn *NotInPoolError
	var reserved *ReservedError
	var inUse *InUseError
	tests := []struct {
		addr string
		as   any
		want string
	}{
		{"10.128.2.0", &notIn, `node "n3" subnet 10.128.0.0/23: 10.128.2.0 is outside subnet 10.128.0.0/23`},
		{"10.127.255.255", &notIn, `node "n3" subnet 10.128.0.0/23: 10.127.255.255 is outside subnet 10.128.0.0/23`},
		{"fd00::7", &notIn, `node "n3" subnet 10.128.0.0/23: fd00::7 is outside subnet 10.128.0.0/23`},
		{"::ffff:10.128.0.9", &notIn, `node "n3" subnet 10.128.0.0/23: ::ffff:10.128.0.9 is outside subnet 10.128.0.0/23`},
		{"10.128.0.0", &reserved, `10.128.0.0 is the network address of node "n3" subnet 10.128.0.0/23 and is never assigned`},
		{"10.128.0.1", &reserved, `10.128.0.1 is the gateway of node "n3" subnet 10.128.0.0/23 and is never assigned`},
		{"10.128.1.255", &reserved, `10.128.1.255 is the broadcast address of node "n3" subnet 10.128.0.0/23 and is never assigned`},
		{"10.128.0.7", &inUse, `10.128.0.7 is already in use in node "n3" subnet 10.128.0.0/23`},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := p.Claim(netip.MustParseAddr(tt.addr))
			if err == nil {
				t.Fatalf("Claim(%s) succeeded", tt.addr)
			}
			if !errors.As(err, tt.as) {
				t.Errorf("Claim(%s) = %T, want %T", tt.addr, err, tt.as)
			}
			if err.Error() != tt.want {
				t.Errorf("Claim(%s):\n got %s\nwant %s", tt.addr, err, tt.want)
			}
		})
	}
	if err := p.Claim(netip.Addr{}); err == nil {
		t.Error("Claim(invalid address) succeeded")
	}
	if got := p.Pool().Used(); got != 1 {
		t.Fatalf("Used = %d after failed claims, want 1", got)
	}
}

func TestNewIPPoolErrors(t *testing.T) {
	tests := []struct{ subnet, want string }{
		{"10.128.0.1/23", `node "n3": subnet 10.128.0.1/23 has host bits set; did you mean 10.128.0.0/23?`},
		{"10.128.0.0/31", `node "n3": subnet 10.128.0.0/31: prefix length must be between /8 and /30`},
		{"10.0.0.0/7", `node "n3": subnet 10.0.0.0/7: prefix length must be between /8 and /30`},
		{"fd00::/120", `node "n3": subnet fd00::/120: only IPv4 is supported`},
	}
	for _, tt := range tests {
		_, err := NewIPPool(netip.MustParsePrefix(tt.subnet), `node "n3"`)
		if err == nil || err.Error() != tt.want {
			t.Errorf("NewIPPool(%s) = %v, want %s", tt.subnet, err, tt.want)
		}
	}
	// The smallest pool: a /30 has one workload address.
	p := newIPPool(t, "10.0.0.4/30", "")
	if a, err := p.Allocate(); err != nil || a != netip.MustParseAddr("10.0.0.6") {
		t.Fatalf("Allocate on a /30 = %s, %v; want 10.0.0.6", a, err)
	}
	if _, err := p.Allocate(); err == nil || err.Error() != "subnet 10.0.0.4/30 is full (1 of 1 addresses used); delete unused workloads on this node or run new ones on another node" {
		t.Fatalf("second Allocate on a /30 = %v", err)
	}
}

func TestIPPoolName(t *testing.T) {
	// Without a name, errors still say which subnet.
	p := newIPPool(t, "10.128.2.0/23", "")
	err := p.Claim(netip.MustParseAddr("10.128.0.5"))
	if want := "subnet 10.128.2.0/23: 10.128.0.5 is outside subnet 10.128.2.0/23"; err == nil || err.Error() != want {
		t.Errorf("Claim = %v, want %s", err, want)
	}
	if got := p.Pool().Name(); got != "subnet 10.128.2.0/23" {
		t.Errorf("Name = %q, want %q", got, "subnet 10.128.2.0/23")
	}
}
