package alloc

import (
	"errors"
	"net/netip"
	"testing"
)

func TestSubnetPoolBlocks(t *testing.T) {
	s, err := NewSubnetPool(netip.MustParsePrefix("10.128.0.0/14"), 23)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Pool().Size(), uint64(512); got != want {
		t.Fatalf("Size = %d, want %d", got, want)
	}
	for _, want := range []string{"10.128.0.0/23", "10.128.2.0/23", "10.128.4.0/23"} {
		got, err := s.Allocate()
		if err != nil || got != netip.MustParsePrefix(want) {
			t.Fatalf("Allocate = %v, %v; want %s", got, err, want)
		}
	}
	last := netip.MustParsePrefix("10.131.254.0/23")
	if err := s.Claim(last); err != nil {
		t.Fatalf("Claim(last block %s): %v", last, err)
	}
	if !s.InUse(last) || !s.Release(last) || s.Release(last) {
		t.Fatalf("InUse/Release of %s misbehave", last)
	}
}

func TestSubnetPoolExhausted(t *testing.T) {
	s, err := NewSubnetPool(netip.MustParsePrefix("10.128.0.0/14"), 23)
	if err != nil {
		t.Fatal(err)
	}
	for range 512 {
		if _, err := s.Allocate(); err != nil {
			t.Fatal(err)
		}
	}
	_, err = s.Allocate()
	var ex *ExhaustedError
	if !errors.As(err, &ex) {
		t.Fatalf("Allocate on a full pool = %v, want *ExhaustedError", err)
	}
	const want = "cluster CIDR 10.128.0.0/14 is full (512 of 512 /23s used); widen cluster.cidr or remove stale nodes"
	if err.Error() != want {
		t.Fatalf("error:\n got %s\nwant %s", err, want)
	}
	if ex.Used != 512 || ex.Capacity != 512 || ex.Unit != "/23s" {
		t.Fatalf("ExhaustedError = %+v", ex)
	}
}

func TestSubnetPoolClaimErrors(t *testing.T) {
	s, err := NewSubnetPool(netip.MustParsePrefix("10.128.0.0/14"), 23)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Claim(netip.MustParsePrefix("10.128.4.0/23")); err != nil {
		t.Fatal(err)
	}
	var notIn *NotInPoolError
	var inUse *InUseError
	tests := []struct {
		name   string
		prefix netip.Prefix
		as     any
		want   string
	}{
		{"outside", netip.MustParsePrefix("10.132.0.0/23"), &notIn,
			"cluster CIDR 10.128.0.0/14: 10.132.0.0/23 is outside the CIDR"},
		{"below", netip.MustParsePrefix("10.127.254.0/23"), &notIn,
			"cluster CIDR 10.128.0.0/14: 10.127.254.0/23 is outside the CIDR"},
		{"misaligned", netip.MustParsePrefix("10.128.1.0/23"), &notIn,
			"cluster CIDR 10.128.0.0/14: 10.128.1.0/23 is not aligned to a /23 boundary (did you mean 10.128.0.0/23?)"},
		{"too long", netip.MustParsePrefix("10.128.0.0/24"), &notIn,
			"cluster CIDR 10.128.0.0/14: 10.128.0.0/24 is not a /23"},
		{"too short", netip.MustParsePrefix("10.128.0.0/22"), &notIn,
			"cluster CIDR 10.128.0.0/14: 10.128.0.0/22 is not a /23"},
		{"ipv6", netip.MustParsePrefix("fd00::/23"), &notIn,
			"cluster CIDR 10.128.0.0/14: fd00::/23 is not an IPv4 prefix"},
		{"invalid", netip.Prefix{}, &notIn,
			"cluster CIDR 10.128.0.0/14: invalid Prefix is not a valid prefix"},
		{"in use", netip.MustParsePrefix("10.128.4.0/23"), &inUse,
			"10.128.4.0/23 is already in use in cluster CIDR 10.128.0.0/14"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Claim(tt.prefix)
			if err == nil {
				t.Fatalf("Claim(%s) succeeded", tt.prefix)
			}
			if !errors.As(err, tt.as) {
				t.Errorf("Claim(%s) = %T, want %T", tt.prefix, err, tt.as)
			}
			if err.Error() != tt.want {
				t.Errorf("Claim(%s):\n got %s\nwant %s", tt.prefix, err, tt.want)
			}
			if tt.name != "in use" && s.Release(tt.prefix) {
				t.Errorf("Release(%s) = true for a prefix not in the pool", tt.prefix)
			}
		})
	}
	if got := s.Pool().Used(); got != 1 {
		t.Fatalf("Used = %d after failed claims, want 1", got)
	}
}

func TestNewSubnetPoolErrors(t *testing.T) {
	tests := []struct {
		cidr       string
		hostPrefix int
		want       string
	}{
		{"10.128.0.0/14", 14, "cluster CIDR 10.128.0.0/14: host subnet length /14 must be longer than /14 and at most /30"},
		{"10.128.0.0/14", 13, "cluster CIDR 10.128.0.0/14: host subnet length /13 must be longer than /14 and at most /30"},
		{"10.128.0.0/14", 31, "cluster CIDR 10.128.0.0/14: host subnet length /31 must be longer than /14 and at most /30"},
		{"10.0.0.0/5", 30, "cluster CIDR 10.0.0.0/5 has host bits set; did you mean 8.0.0.0/5?"},
		{"8.0.0.0/5", 30, "cluster CIDR 8.0.0.0/5: /30 host subnets make 2^25 blocks, more than the 2^24 supported; use a shorter host subnet length"},
		{"10.128.1.0/14", 23, "cluster CIDR 10.128.1.0/14 has host bits set; did you mean 10.128.0.0/14?"},
		{"fd00::/48", 64, "cluster CIDR fd00::/48: only IPv4 is supported"},
		{"::ffff:10.128.0.0/110", 119, "cluster CIDR ::ffff:10.128.0.0/110: only IPv4 is supported"},
	}
	for _, tt := range tests {
		_, err := NewSubnetPool(netip.MustParsePrefix(tt.cidr), tt.hostPrefix)
		if err == nil || err.Error() != tt.want {
			t.Errorf("NewSubnetPool(%s, %d) = %v, want %s", tt.cidr, tt.hostPrefix, err, tt.want)
		}
	}
	if _, err := NewSubnetPool(netip.Prefix{}, 24); err == nil {
		t.Error("NewSubnetPool(invalid prefix) succeeded")
	}
	// The largest accepted pool: 2^24 blocks.
	s, err := NewSubnetPool(netip.MustParsePrefix("8.0.0.0/6"), 30)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Pool().Size(); got != 1<<24 {
		t.Fatalf("Size = %d, want 2^24", got)
	}
}
