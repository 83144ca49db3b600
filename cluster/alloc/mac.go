package alloc

import (
	"net"
	"net/netip"
)

// MACForIP derives a workload's MAC address from its IPv4 address:
// 0a:58:<the 4 bytes of the address>, OpenShift-SDN's scheme. 0x0a has the
// locally-administered bit set and the multicast bit clear, so the MAC is a
// unicast address that cannot collide with a vendor-assigned one, and two
// workloads have the same MAC only if they have the same IP. An IPv4-mapped
// IPv6 address is unmapped first; MACForIP returns nil for any other address
// that is not IPv4.
func MACForIP(a netip.Addr) net.HardwareAddr {
	a = a.Unmap()
	if !a.Is4() {
		return nil
	}
	b := a.As4()
	return net.HardwareAddr{0x0a, 0x58, b[0], b[1], b[2], b[3]}
}
