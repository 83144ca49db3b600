package fsm

import (
	"fmt"
	"net/netip"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// VXLANOverhead is what VXLAN over IPv4 adds to a frame.
const VXLANOverhead = 50

// DefaultSettings is the configuration of a cluster nobody configured: the
// same defaults a cluster block gets for what it leaves out (spec's).
func DefaultSettings() *sdnv1.ClusterSettings {
	return &sdnv1.ClusterSettings{
		Cidr:        model.DefaultCIDR,
		HostPrefix:  model.DefaultHostPrefix,
		ServiceCidr: model.DefaultServiceCIDR,
		VxlanPort:   model.DefaultVXLANPort,
		Isolation:   sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT,
	}
}

// effectiveSettings returns the stored settings or the defaults.
func effectiveSettings(tx *state.Tx) *sdnv1.ClusterSettings {
	if c := tx.Cluster(); c != nil {
		return c
	}
	return DefaultSettings()
}

// fillSettingDefaults completes a requested settings object.
func fillSettingDefaults(c *sdnv1.ClusterSettings) *sdnv1.ClusterSettings {
	c = proto.Clone(c).(*sdnv1.ClusterSettings)
	d := DefaultSettings()
	if c.Cidr == "" {
		c.Cidr = d.Cidr
	}
	if c.HostPrefix == 0 {
		c.HostPrefix = d.HostPrefix
	}
	if c.ServiceCidr == "" {
		c.ServiceCidr = d.ServiceCidr
	}
	if c.VxlanPort == 0 {
		c.VxlanPort = d.VxlanPort
	}
	if c.Isolation == sdnv1.IsolationMode_ISOLATION_MODE_UNSPECIFIED {
		c.Isolation = d.Isolation
	}
	c.Ranges = nil
	return c
}

// checkSettings validates requested settings against themselves and against
// the hosts already registered.
func checkSettings(vs *violations, tx *state.Tx, c *sdnv1.ClusterSettings, strict bool) {
	bad := func(field, msg string) { vs.add(CodeInvalid, model.KindCluster, "", field, msg) }
	// Reserved ranges are refused when set; one a cluster already holds
	// (set before the rule) is kept, so its files still apply; and format 1
	// entries are applied as they were (strict, exec.go).
	stored := effectiveSettings(tx)
	cidr, err := model.ParseIPv4Prefix("cidr", c.Cidr)
	if err == nil && c.Cidr != stored.Cidr && strict {
		err = model.CheckUsableRange("cidr", cidr)
	}
	if err != nil {
		bad("cidr", err.Error())
	}
	svc, serr := model.ParseIPv4Prefix("service_cidr", c.ServiceCidr)
	if serr == nil && c.ServiceCidr != stored.ServiceCidr && strict {
		serr = model.CheckUsableRange("service_cidr", svc)
	}
	switch {
	case serr != nil:
		bad("service_cidr", serr.Error())
	case svc.Bits() > 30:
		bad("service_cidr", fmt.Sprintf("service_cidr %s holds no service addresses; use a /30 or larger", c.ServiceCidr))
	}
	if err == nil && serr == nil && cidr.Overlaps(svc) {
		bad("service_cidr", fmt.Sprintf("service_cidr %s overlaps cidr %s; they must be disjoint", c.ServiceCidr, c.Cidr))
	}
	if err == nil {
		if int(c.HostPrefix) <= cidr.Bits() || c.HostPrefix > 30 {
			bad("host_prefix", fmt.Sprintf("host_prefix %d with cidr %s leaves no room: it must be longer than /%d and at most /30", c.HostPrefix, c.Cidr, cidr.Bits()))
		} else if c.HostPrefix-uint32(cidr.Bits()) > 24 {
			bad("host_prefix", fmt.Sprintf("host_prefix %d with cidr %s makes %d host blocks; at most 2^24 are supported", c.HostPrefix, c.Cidr, uint64(1)<<(c.HostPrefix-uint32(cidr.Bits()))))
		}
	}
	if c.VxlanPort == 0 || c.VxlanPort > 65535 {
		bad("vxlan_port", fmt.Sprintf("vxlan_port %d is not a UDP port (1-65535)", c.VxlanPort))
	}
	switch c.Isolation {
	case sdnv1.IsolationMode_ISOLATION_MODE_FLAT, sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT, sdnv1.IsolationMode_ISOLATION_MODE_POLICY:
	default:
		bad("isolation", fmt.Sprintf("isolation %v is not flat, multitenant or policy", c.Isolation))
	}
	if r := c.NodeReleaseAfterSeconds; r < 0 && r != model.NeverReleaseNodes {
		bad("node_release_after_seconds", fmt.Sprintf("node_release_after_seconds %d: want 0 (the default, %s), a number of seconds, or %d (never)", r, model.DefaultNodeReleaseAfter, model.NeverReleaseNodes))
	}
	if c.Mtu != 0 && (c.Mtu < 576 || c.Mtu > 9000) {
		bad("mtu", fmt.Sprintf("mtu %d is outside 576-9000", c.Mtu))
	}
	nodes := tx.Nodes()
	cur := effectiveSettings(tx)
	withSubnets := 0
	for _, n := range nodes {
		if n.Subnet != "" {
			withSubnets++
		}
	}
	if withSubnets > 0 && (c.Cidr != cur.Cidr || c.HostPrefix != cur.HostPrefix) {
		bad("cidr", fmt.Sprintf("cidr and host_prefix cannot change from %s and /%d while %d hosts hold subnets of them; remove the hosts (sdnctl delete node) first", cur.Cidr, cur.HostPrefix, withSubnets))
	}
	for _, n := range nodes {
		ip, perr := netip.ParseAddr(n.UnderlayIp)
		if perr != nil || !strict {
			continue
		}
		if err == nil && cidr.Contains(ip) {
			bad("cidr", fmt.Sprintf("cidr %s contains host %s's underlay address %s, which must stay outside the overlay; choose a CIDR that does not", c.Cidr, n.Name, ip))
		}
		if serr == nil && svc.Contains(ip) {
			bad("service_cidr", fmt.Sprintf("service_cidr %s contains host %s's underlay address %s, which must stay outside the overlay; choose a CIDR that does not", c.ServiceCidr, n.Name, ip))
		}
	}
	if c.Mtu != 0 {
		for _, n := range nodes {
			if n.UnderlayMtu != 0 && c.Mtu+VXLANOverhead > n.UnderlayMtu {
				bad("mtu", fmt.Sprintf("mtu %d does not fit host %s's underlay MTU %d with %d bytes of VXLAN overhead; use %d or less", c.Mtu, n.Name, n.UnderlayMtu, VXLANOverhead, n.UnderlayMtu-VXLANOverhead))
			}
		}
	}
}

// settingsDetails lists attribute differences between two settings.
func settingsDetails(old, cur *sdnv1.ClusterSettings) []string {
	var d []string
	add := func(name string, a, b any) {
		if a != b {
			d = append(d, fmt.Sprintf("%s: %v -> %v", name, a, b))
		}
	}
	add("cidr", old.Cidr, cur.Cidr)
	add("host_prefix", old.HostPrefix, cur.HostPrefix)
	add("service_cidr", old.ServiceCidr, cur.ServiceCidr)
	add("vxlan_port", old.VxlanPort, cur.VxlanPort)
	add("isolation", model.IsolationName(old.Isolation), model.IsolationName(cur.Isolation))
	add("mtu", old.Mtu, cur.Mtu)
	add("node_release_after", model.FormatNodeReleaseAfter(old.NodeReleaseAfterSeconds), model.FormatNodeReleaseAfter(cur.NodeReleaseAfterSeconds))
	add("host_traffic", hostTrafficWord(old.HostTrafficByPolicy), hostTrafficWord(cur.HostTrafficByPolicy))
	return d
}

// NodeReleaseAfter is how long a host marked down keeps its subnet and
// workload addresses under these settings (nil: the defaults); never is
// true when they are kept until `sdnctl node remove`.
func NodeReleaseAfter(c *sdnv1.ClusterSettings) (d time.Duration, never bool) {
	switch r := c.GetNodeReleaseAfterSeconds(); {
	case r < 0:
		return 0, true
	case r == 0:
		return model.DefaultNodeReleaseAfter, false
	default:
		return time.Duration(r) * time.Second, false
	}
}

// hostTrafficWord is the HCL spelling of the host_traffic setting.
func hostTrafficWord(byPolicy bool) string {
	if byPolicy {
		return "policy"
	}
	return "allow"
}
