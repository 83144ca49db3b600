package model

import (
	"net/netip"
	"testing"
)

// Workload and service ranges must be unicast space a host routes: not
// "this network", loopback, link-local, multicast or class E (which holds
// the broadcast address), nor a range that overlaps one of them.
func TestCheckUsableRange(t *testing.T) {
	for _, tc := range []struct{ in, wantErr string }{
		{"10.128.0.0/14", ""},
		{"172.30.0.0/16", ""},
		{"192.168.0.0/16", ""},
		{"100.64.0.0/10", ""},
		{"1.0.0.0/8", ""},
		{"223.255.255.0/24", ""},
		{"169.0.0.0/16", ""},
		{"0.0.0.0/8", `cidr 0.0.0.0/8 is in "this network" 0.0.0.0/8`},
		{"0.0.0.0/0", `cidr 0.0.0.0/0 overlaps "this network" 0.0.0.0/8`},
		{"127.0.0.0/8", "cidr 127.0.0.0/8 is in the loopback range 127.0.0.0/8"},
		{"127.1.0.0/16", "is in the loopback range 127.0.0.0/8"},
		{"126.0.0.0/7", "overlaps the loopback range 127.0.0.0/8"},
		{"169.254.0.0/16", "is in the link-local range 169.254.0.0/16"},
		{"169.254.8.0/23", "link-local"},
		{"224.0.0.0/4", "is in the multicast range 224.0.0.0/4"},
		{"239.1.0.0/16", "multicast"},
		{"240.0.0.0/4", "is in the reserved range (class E) 240.0.0.0/4"},
		{"255.255.255.255/32", "broadcast"},
		{"128.0.0.0/1", "overlaps the link-local range 169.254.0.0/16"},
	} {
		err := CheckUsableRange("cidr", netip.MustParsePrefix(tc.in))
		checkErr(t, "CheckUsableRange", tc.in, err, tc.wantErr)
		if err != nil && ProblemSummary(err, "") != "Reserved address range" {
			t.Errorf("CheckUsableRange(%s): summary %q, want \"Reserved address range\"", tc.in, ProblemSummary(err, ""))
		}
	}
}
