package model

import (
	"net"
	"net/netip"
)

// The VNID scheme. A VNID is 24 bits: it rides in tun_id across hosts and in
// a register inside one.
const (
	// AdminVNID is the admin network's VNID. It is never allocated.
	AdminVNID uint32 = 0
	// HostVNID (the largest 24-bit value) marks traffic from and to the
	// hosts themselves (their gateway ports) in the datapath. It is never
	// allocated to a network.
	HostVNID uint32 = 1<<24 - 1
	// MaxVNID is the largest VNID a network can get.
	MaxVNID uint32 = HostVNID - 1
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
