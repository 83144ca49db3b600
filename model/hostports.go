package model

import (
	"fmt"
	"net/netip"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// PortMappingProtocol is a port mapping's protocol with the default
// applied: "" is "tcp".
func PortMappingProtocol(pm *sdnv1.PortMapping) string {
	if pm.GetProtocol() == "" {
		return "tcp"
	}
	return pm.GetProtocol()
}

// PortMappingText renders a port mapping for messages:
// "8080/tcp -> 80", "198.18.0.1:53/udp -> 5353".
func PortMappingText(pm *sdnv1.PortMapping) string {
	host := fmt.Sprintf("%d/%s", pm.GetHostPort(), PortMappingProtocol(pm))
	if pm.GetHostIp() != "" {
		host = pm.GetHostIp() + ":" + host
	}
	return fmt.Sprintf("%s -> %d", host, pm.GetContainerPort())
}

// ValidatePortMappings checks a workload's host ports (CNI "portMappings"):
// host and container ports 1-65535, protocol "tcp" or "udp" ("" is tcp),
// host_ip empty or an IP address, and no host port mapped twice for the
// same protocol and address.
func ValidatePortMappings(pms []*sdnv1.PortMapping) error {
	seen := map[string]int{}
	for i, pm := range pms {
		if pm == nil {
			return fmt.Errorf("port mapping %d is empty", i+1)
		}
		switch {
		case pm.HostPort < 1 || pm.HostPort > 65535:
			return fmt.Errorf("port mapping %d: host port %d is not a port (1-65535)", i+1, pm.HostPort)
		case pm.ContainerPort < 1 || pm.ContainerPort > 65535:
			return fmt.Errorf("port mapping %d: container port %d is not a port (1-65535)", i+1, pm.ContainerPort)
		}
		if p := PortMappingProtocol(pm); p != "tcp" && p != "udp" {
			return fmt.Errorf("port mapping %d (host port %d): protocol %q is not tcp or udp", i+1, pm.HostPort, pm.Protocol)
		}
		if pm.HostIp != "" {
			a, err := netip.ParseAddr(pm.HostIp)
			if err != nil || a.Zone() != "" {
				return fmt.Errorf("port mapping %d (host port %d): host_ip %q is not an IP address", i+1, pm.HostPort, pm.HostIp)
			}
		}
		key := fmt.Sprintf("%s:%d/%s", pm.HostIp, pm.HostPort, PortMappingProtocol(pm))
		if j, dup := seen[key]; dup {
			return fmt.Errorf("port mappings %d and %d both map host port %s", j, i+1, PortMappingText(pm))
		}
		seen[key] = i + 1
	}
	return nil
}

// HostPortsOverlap reports whether two port mappings claim the same host
// port: the same port and protocol, and the same host address or either
// one on every address ("").
func HostPortsOverlap(a, b *sdnv1.PortMapping) bool {
	return a.GetHostPort() == b.GetHostPort() && PortMappingProtocol(a) == PortMappingProtocol(b) &&
		(a.GetHostIp() == "" || b.GetHostIp() == "" || a.GetHostIp() == b.GetHostIp())
}

// Bandwidth bounds. OVS takes rates and bursts in kbit (kbit/s), as 32-bit
// numbers; a limit under 1 kbit would be 0, which is no limit at all.
const (
	MinBandwidthBits uint64 = 1000
	MaxBandwidthBits uint64 = (1<<32 - 1) * 1000
)

// ValidateBandwidth checks a workload's rate limits (CNI "bandwidth"): in
// each direction the rate (bits/s) and the burst (bits) are both 0 (no
// limit) or both set, each between 1 kbit and 2^32-1 kbit.
func ValidateBandwidth(b *sdnv1.Bandwidth) error {
	if b == nil {
		return nil
	}
	for _, d := range []struct {
		dir         string
		rate, burst uint64
	}{{"ingress", b.IngressRate, b.IngressBurst}, {"egress", b.EgressRate, b.EgressBurst}} {
		if (d.rate == 0) != (d.burst == 0) {
			return fmt.Errorf("%s rate %d and burst %d: set both or neither (a rate limits only with a burst)", d.dir, d.rate, d.burst)
		}
		if d.rate == 0 {
			continue
		}
		for _, v := range []struct {
			what string
			n    uint64
		}{{"rate", d.rate}, {"burst", d.burst}} {
			if v.n < MinBandwidthBits || v.n > MaxBandwidthBits {
				return fmt.Errorf("%s %s %d is out of range: %d to %d bits", d.dir, v.what, v.n, MinBandwidthBits, MaxBandwidthBits)
			}
		}
	}
	return nil
}
