package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	cniversion "github.com/containernetworking/cni/pkg/version"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// renderResult turns the agent's answer into a CNI result in the
// configuration's cniVersion: two interfaces (the host end of the veth and
// the workload's interface in its sandbox), the workload's address on the
// sandbox interface with the gateway, a default route via the gateway, and
// the DNS the agent gives (the host's DNS server, on the gateway). The
// interfaces carry the MTU from 1.1.0 on, where the spec has the field.
func renderResult(r *sdnv1.CNIResult, cniVersion string) (types.Result, error) {
	ip, ipnet, err := net.ParseCIDR(r.Address)
	if err != nil {
		return nil, fmt.Errorf("agent returned address %q: %v", r.Address, err)
	}
	ipnet.IP = ip
	// The interfaces' "mtu" is a 1.1.0 field: a 1.0.0 result has none.
	mtu := 0
	if gt, _ := cniversion.GreaterThanOrEqualTo(cniVersion, "1.1.0"); gt || cniVersion == "" {
		mtu = int(r.Mtu)
	}
	res := &types100.Result{
		CNIVersion: types100.ImplementedSpecVersion,
		Interfaces: []*types100.Interface{
			{Name: r.HostIfname, Mac: r.HostMac, Mtu: mtu},
			{Name: r.SandboxIfname, Mac: r.Mac, Mtu: mtu, Sandbox: r.Sandbox},
		},
	}
	ipc := &types100.IPConfig{Interface: types100.Int(1), Address: *ipnet}
	if r.Gateway != "" {
		gw := net.ParseIP(r.Gateway)
		if gw == nil {
			return nil, fmt.Errorf("agent returned gateway %q: not an IP address", r.Gateway)
		}
		ipc.Gateway = gw
		def := net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}
		if ip.To4() == nil {
			def = net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
		}
		res.Routes = []*types.Route{{Dst: def, GW: gw}}
	}
	res.IPs = []*types100.IPConfig{ipc}
	// The host's DNS server and the search domains (node/dns).
	res.DNS = types.DNS{Nameservers: r.GetDns().GetNameservers(), Search: r.GetDns().GetSearch()}
	if cniVersion == "" {
		return res, nil
	}
	return res.GetAsVersion(cniVersion)
}

// shortHash is 8 hex digits of SHA-256.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}
