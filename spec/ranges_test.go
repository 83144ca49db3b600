package spec

import (
	"fmt"
	"strings"
	"testing"
)

// Reserved ranges are refused as the cluster cidr and as service_cidr,
// with the rule model.CheckUsableRange shares with the servers.
func TestReservedRanges(t *testing.T) {
	for _, tc := range []struct{ attr, value, want string }{
		{"cidr", "0.0.0.0/8", `Reserved address range; cidr 0.0.0.0/8 is in "this network" 0.0.0.0/8`},
		{"cidr", "127.0.0.0/8", "Reserved address range; cidr 127.0.0.0/8 is in the loopback range 127.0.0.0/8"},
		{"cidr", "169.254.0.0/16", "Reserved address range; cidr 169.254.0.0/16 is in the link-local range 169.254.0.0/16"},
		{"cidr", "224.0.0.0/4", "Reserved address range; cidr 224.0.0.0/4 is in the multicast range 224.0.0.0/4"},
		{"cidr", "240.0.0.0/4", "Reserved address range; cidr 240.0.0.0/4 is in the reserved range (class E) 240.0.0.0/4"},
		{"service_cidr", "255.255.255.255/32", "Reserved address range; service_cidr 255.255.255.255/32 is in the reserved range (class E) 240.0.0.0/4 (with the broadcast address 255.255.255.255)"},
		{"service_cidr", "127.0.0.0/16", "Reserved address range; service_cidr 127.0.0.0/16 is in the loopback range"},
		{"service_cidr", "224.0.0.0/16", "Reserved address range; service_cidr 224.0.0.0/16 is in the multicast range"},
		{"cidr", "0.0.0.0/0", `Reserved address range; cidr 0.0.0.0/0 overlaps "this network" 0.0.0.0/8`},
	} {
		src := fmt.Sprintf("cluster {\n  %s = %q\n}\n", tc.attr, tc.value)
		_, diags := Parse("c.hcl", []byte(src))
		var lines []string
		for _, d := range diags {
			lines = append(lines, DiagnosticLine(d))
		}
		if len(lines) == 0 || !strings.Contains(lines[0], "c.hcl:2,") || !strings.Contains(lines[0], tc.want) {
			t.Errorf("%s = %q: got %q, want the first line to point at it and contain %q", tc.attr, tc.value, lines, tc.want)
		}
	}
}
