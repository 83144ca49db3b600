package model

import (
	"net"
	"net/netip"
	"testing"
)

func TestMACForIP(t *testing.T) {
	tests := []struct {
		ip   string
		want string // "" for nil
	}{
		{"10.128.0.2", "0a:58:0a:80:00:02"},
		{"10.131.255.254", "0a:58:0a:83:ff:fe"},
		{"0.0.0.0", "0a:58:00:00:00:00"},
		{"255.255.255.255", "0a:58:ff:ff:ff:ff"},
		{"192.168.1.17", "0a:58:c0:a8:01:11"},
		{"::ffff:10.128.0.2", "0a:58:0a:80:00:02"},
		{"fd00::2", ""},
		{"", ""},
	}
	for _, tt := range tests {
		var a netip.Addr
		if tt.ip != "" {
			a = netip.MustParseAddr(tt.ip)
		}
		got := MACForIP(a)
		if tt.want == "" {
			if got != nil {
				t.Errorf("MACForIP(%q) = %s, want nil", tt.ip, got)
			}
			continue
		}
		if got.String() != tt.want {
			t.Errorf("MACForIP(%s) = %s, want %s", tt.ip, got, tt.want)
		}
		if got[0]&0x01 != 0 || got[0]&0x02 == 0 {
			t.Errorf("MACForIP(%s) = %s is not a locally administered unicast address", tt.ip, got)
		}
		if want, _ := net.ParseMAC(tt.want); len(got) != 6 || got.String() != want.String() {
			t.Errorf("MACForIP(%s) = %v, want 6 bytes %v", tt.ip, got, want)
		}
	}
}
