package suites

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/sdn-dev/sdn/datapath/flows"
	"github.com/sdn-dev/sdn/model"
)

// syntheticHost returns a host whose compiled flows number at least n
// (and at most a few more): 40% of them for remote hosts (one forward flow
// each), the rest for local workloads spread over 10 networks
// (multitenant isolation, VNID 0 the admin network), which is how a busy
// host in a large cluster looks to the compiler.
func syntheticHost(n int) (*flows.Host, int) {
	h := &flows.Host{
		Isolation:   flows.Multitenant,
		Subnet:      netip.MustParsePrefix("10.0.0.0/16"),
		Gateway:     netip.MustParseAddr("10.0.0.1"),
		GatewayMAC:  mustMAC("0a:58:0a:00:00:01"),
		ClusterCIDR: netip.MustParsePrefix("10.0.0.0/8"),
		TunnelPort:  1,
		GatewayPort: 2,
	}
	for i := range n * 4 / 10 {
		h.Remote = append(h.Remote, flows.RemoteHost{
			Name:       fmt.Sprintf("host%d", i+2),
			Subnet:     netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(1 + i/256), byte(i % 256), 0}), 24),
			UnderlayIP: netip.AddrFrom4([4]byte{198, 18, byte(i / 250), byte(2 + i%250)}),
		})
	}
	base := len(flows.Compile(h))
	addWorkload(h)
	per := max(1, len(flows.Compile(h))-base)
	for len(h.Local) < (n-base)/per {
		addWorkload(h)
	}
	count := len(flows.Compile(h))
	for count < n { // a few more flows per network present; top up one by one
		addWorkload(h)
		count = len(flows.Compile(h))
	}
	return h, count
}

// addWorkload adds the next workload: addresses from 10.0.0.2 up, networks
// (VNIDs 0-9) in turn.
func addWorkload(h *flows.Host) {
	i := len(h.Local)
	a := [4]byte{10, 0, byte((i + 2) / 256), byte((i + 2) % 256)}
	h.Local = append(h.Local, flows.Workload{
		Name: fmt.Sprintf("net%d/w%d", i%10, i),
		IP:   netip.AddrFrom4(a),
		MAC:  model.MACForIP(netip.AddrFrom4(a)),
		VNID: uint32(i % 10),
		Port: 10 + i,
	})
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}
