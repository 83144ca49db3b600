package fsm

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// The naming rules are model's, so that sdnctl's local checks (spec), the
// CNI plugin's and the server's can never disagree.

// checkName validates a network, workload or node name.
func checkName(what model.Kind, name string) string {
	validate := model.ValidateName
	if what == model.KindNode {
		validate = model.ValidateNodeName
	}
	if err := validate(name); err != nil {
		return fmt.Sprintf("%s name %q: %v", what, name, err)
	}
	return ""
}

// checkLabels validates Kubernetes-style label keys and values.
func checkLabels(labels map[string]string) string {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if err := model.ValidateLabelKey(k); err != nil {
			return fmt.Sprintf("label key %q: %v", k, err)
		}
		if err := model.ValidateLabelValue(labels[k]); err != nil {
			return fmt.Sprintf("label %s=%q: %v", k, labels[k], err)
		}
	}
	return ""
}

// checkAddrs validates a workload's requested address and MAC, and puts the
// MAC in canonical (lowercase colon) form. It returns the field at fault and
// why.
func checkAddrs(w *sdnv1.Workload) (string, string) {
	if w.Ip != "" {
		if _, err := model.ParseIPv4("ip", w.Ip); err != nil {
			return "ip", err.Error()
		}
	}
	if w.Mac != "" {
		m, err := model.ParseMAC("mac", w.Mac)
		if err != nil {
			return "mac", err.Error()
		}
		w.Mac = m
	}
	return "", ""
}

// checkUnderlay says why a host's underlay address cannot be its tunnel
// endpoint: every other host sends VXLAN to it, so it must be an address
// they can reach, and one the overlay does not route itself (c's cluster
// and service CIDRs). "" when it can.
func checkUnderlay(ip netip.Addr, c *sdnv1.ClusterSettings) string {
	const fix = "give the agent the interface of the network the hosts share (--underlay-iface)"
	what := ""
	switch {
	case ip.IsUnspecified():
		what = "is the unspecified address"
	case ip.IsLoopback():
		what = "is a loopback address"
	case ip.IsMulticast():
		what = "is a multicast address"
	case ip.IsLinkLocalUnicast():
		what = "is a link-local address"
	case ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		what = "is the broadcast address"
	}
	if what != "" {
		return fmt.Sprintf("underlay address %s %s: other hosts cannot send tunnels to it; %s", ip, what, fix)
	}
	for _, r := range []struct{ name, cidr, attr string }{{"cluster", c.Cidr, "cidr"}, {"service", c.ServiceCidr, "service_cidr"}} {
		if p, err := netip.ParsePrefix(r.cidr); err == nil && p.Contains(ip) {
			return fmt.Sprintf("underlay address %s is inside the %s CIDR %s, which the overlay routes itself; %s, or choose another cluster.%s", ip, r.name, p, fix, r.attr)
		}
	}
	return ""
}
