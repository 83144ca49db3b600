package spec

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

var clusterSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "cidr"},
		{Name: "host_prefix"},
		{Name: "service_cidr"},
		{Name: "vxlan_port"},
		{Name: "isolation"},
		{Name: "mtu"},
		{Name: "node_release_after"},
		{Name: "host_traffic"},
		{Name: "dns_domain"},
		{Name: "node_port_range"},
	},
}

// decodeCluster decodes a cluster block. It always returns settings (with
// defaults for what is missing or wrong) so later checks can name the block.
func decodeCluster(filename string, b *hcl.Block) (*sdnv1.ClusterSettings, hcl.Diagnostics) {
	bl := newBlock("the cluster block", b)
	content, diags := b.Body.Content(clusterSchema)
	bl.diags = append(bl.diags, diags...)
	attrs := bl.present(content)

	cs := &sdnv1.ClusterSettings{
		Cidr:        model.DefaultCIDR,
		HostPrefix:  model.DefaultHostPrefix,
		ServiceCidr: model.DefaultServiceCIDR,
		VxlanPort:   model.DefaultVXLANPort,
		Isolation:   model.DefaultIsolationMode,
		Origin:      &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_HCL, File: filename},
		Ranges:      bl.ranges,
	}

	// A CIDR that does not decode is kept as written (or emptied), so later
	// checks do not test against a default the user did not ask for.
	cidr, rawCIDR, cidrOK := bl.prefix(attrs, "cidr", model.DefaultCIDR)
	svc, rawSvc, svcOK := bl.prefix(attrs, "service_cidr", model.DefaultServiceCIDR)
	cs.Cidr, cs.ServiceCidr = rawCIDR, rawSvc
	if svcOK {
		if svc.Bits() > 30 {
			bl.errorf(rangeOr(attrs, "service_cidr", b.DefRange), "Service CIDR too small",
				"service_cidr %s holds %d addresses, too few for service virtual IPs; use a prefix of /30 or shorter, e.g. 172.30.0.0/16.",
				svc, 1<<(32-svc.Bits()))
			svcOK = false
		}
	}
	if cidrOK && svcOK && cidr.Overlaps(svc) {
		// Point at whichever the user wrote; prefer service_cidr.
		subject, other := "service_cidr", "cidr"
		if attrs["service_cidr"] == nil && attrs["cidr"] != nil {
			subject, other = "cidr", "service_cidr"
		}
		bl.errorf(rangeOr(attrs, subject, b.DefRange), "Overlapping CIDRs",
			"%s %s overlaps %s %s%s; workload and service addresses must not overlap, so choose disjoint ranges (e.g. cidr 10.128.0.0/14 and service_cidr 172.30.0.0/16).",
			subject, prefixOf(cs, subject), other, prefixOf(cs, other), where(attrs, other))
	}

	if hp, attr, ok := bl.integer(attrs, "host_prefix", 0, 32, "a prefix length is 0 to 32"); ok {
		cs.HostPrefix = uint32(hp)
	} else if attr != nil {
		cidrOK = false // already reported; skip the pool check
	}
	if cidrOK {
		bl.checkPool(attrs, b.DefRange, cidr, int(cs.HostPrefix))
	}

	if port, _, ok := bl.integer(attrs, "vxlan_port", 1, 65535, "a UDP port is 1 to 65535 (the IANA VXLAN port is 4789)"); ok {
		cs.VxlanPort = uint32(port)
	}

	if s, attr, ok := bl.str(attrs, "isolation"); ok {
		if mode, known := model.ParseIsolation(s); known {
			cs.Isolation = mode
		} else {
			bl.errorf(attr.Expr.Range(), "Invalid isolation mode",
				"isolation %s is not one of \"flat\" (all workloads talk), \"multitenant\" (networks are isolated; the admin network reaches all) or \"policy\" (policies decide).%s",
				model.Quote(s), suggest(s, model.IsolationNames))
		}
	}

	if mtu, attr, ok := bl.integer(attrs, "mtu", 0, 9000, "use 0 (derived from the hosts' underlay MTU minus 50) or 576 to 9000"); ok {
		if mtu != 0 && mtu < 576 {
			bl.errorf(attr.Expr.Range(), "Invalid value",
				"mtu %d is out of range: use 0 (derived from the hosts' underlay MTU minus 50) or 576 to 9000.", mtu)
		} else {
			cs.Mtu = uint32(mtu)
		}
	}

	if s, attr, ok := bl.str(attrs, "node_release_after"); ok {
		if secs, err := model.ParseNodeReleaseAfter(s); err != nil {
			bl.errorf(attr.Expr.Range(), "Invalid value", "node_release_after %s: %v.", model.Quote(s), err)
		} else {
			cs.NodeReleaseAfterSeconds = secs
		}
	}
	if s, attr, ok := bl.str(attrs, "host_traffic"); ok {
		switch s {
		case "allow":
		case "policy":
			cs.HostTrafficByPolicy = true
		default:
			bl.errorf(attr.Expr.Range(), "Invalid host_traffic",
				"host_traffic %s is not \"allow\" (a workload's own host always reaches it, e.g. for health checks; the default) or \"policy\" (its ingress policies decide, like for any peer).%s",
				model.Quote(s), suggest(s, []string{"allow", "policy"}))
		}
	}
	bl.serviceSettings(attrs, cs)
	return cs, bl.diags
}

// prefix decodes a CIDR attribute, or returns the default when it is absent.
// A range hosts cannot route (model.CheckUsableRange) is refused. raw is the
// canonical form when ok, else what was written ("" if not a string).
func (b *block) prefix(attrs hcl.Attributes, name, def string) (p netip.Prefix, raw string, ok bool) {
	s, attr, ok := b.str(attrs, name)
	if attr == nil {
		return netip.MustParsePrefix(def), def, true
	}
	if !ok {
		return netip.Prefix{}, "", false
	}
	p, err := model.ParseIPv4Prefix(name, s)
	if err == nil {
		err = model.CheckUsableRange(name, p)
	}
	if err != nil {
		b.errorf(attr.Expr.Range(), model.ProblemSummary(err, "Invalid CIDR"), "%s", err)
		return netip.Prefix{}, s, false
	}
	return p, p.String(), true
}

// checkPool checks that cidr splits into host blocks of /hostPrefix that hold
// workloads: host_prefix longer than cidr's prefix and at most 30.
func (b *block) checkPool(attrs hcl.Attributes, def hcl.Range, cidr netip.Prefix, hostPrefix int) {
	if hostPrefix > cidr.Bits() && hostPrefix <= 30 {
		return
	}
	subject := rangeOr(attrs, "host_prefix", rangeOr(attrs, "cidr", def))
	hp := fmt.Sprintf("host_prefix %d", hostPrefix)
	if attrs["host_prefix"] == nil {
		hp = fmt.Sprintf("host_prefix %d (the default)", hostPrefix)
	}
	var allows string
	switch {
	case hostPrefix < cidr.Bits():
		allows = fmt.Sprintf("a /%d host block is larger than the whole cidr, so the pair allows no hosts", hostPrefix)
	default:
		allows = fmt.Sprintf("the pair allows %s of %s each", plural(hostCount(cidr.Bits(), hostPrefix), "host"),
			plural(workloadsPerHost(hostPrefix), "workload"))
	}
	fix := fmt.Sprintf("set host_prefix between %d and 30%s", cidr.Bits()+1, suggestHostPrefix(cidr.Bits()))
	if cidr.Bits() >= 30 {
		fix = "widen cidr, e.g. 10.128.0.0/14 with host_prefix 23"
	}
	b.errorf(subject, "Address pool too small", "%s with cidr %s: %s; %s.", hp, cidr, allows, fix)
}

// suggestHostPrefix proposes a host_prefix for a cidr prefix: 23 when it
// fits (512 addresses per host), else the longest that leaves 2+ hosts.
func suggestHostPrefix(bits int) string {
	hp := model.DefaultHostPrefix
	if hp <= bits {
		hp = min(bits+1, 30)
	}
	return fmt.Sprintf(" (e.g. %d: %s of %s each)", hp, plural(hostCount(bits, hp), "host"),
		plural(workloadsPerHost(hp), "workload"))
}

// hostCount is how many /hostPrefix blocks a /bits CIDR holds.
func hostCount(bits, hostPrefix int) int64 {
	if hostPrefix < bits {
		return 0
	}
	return int64(1) << (hostPrefix - bits)
}

// workloadsPerHost is how many workload addresses a /hostPrefix block holds:
// all but the network, gateway and broadcast addresses.
func workloadsPerHost(hostPrefix int) int64 {
	n := int64(1)<<(32-hostPrefix) - 3
	return max(n, 0)
}

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func prefixOf(cs *sdnv1.ClusterSettings, name string) string {
	if name == "cidr" {
		return cs.Cidr
	}
	return cs.ServiceCidr
}

// where says where an attribute was set, or that its value is the default.
func where(attrs hcl.Attributes, name string) string {
	if a := attrs[name]; a != nil {
		return fmt.Sprintf(" (set at %s)", a.Expr.Range())
	}
	return " (the default)"
}

func rangeOr(attrs hcl.Attributes, name string, def hcl.Range) hcl.Range {
	if a := attrs[name]; a != nil {
		return a.Expr.Range()
	}
	return def
}

// maxDNSDomain is the longest dns_domain: SERVICE.NETWORK.<dns_domain>,
// with names of 63 characters each, must fit DNS's 253.
const maxDNSDomain = 253 - 2*(63+1)

// serviceSettings decodes dns_domain and node_port_range. Unset, they stay
// empty and 0, which the servers read as the defaults (model.DNSDomain,
// model.NodePortRange); set, they are kept as written.
func (b *block) serviceSettings(attrs hcl.Attributes, cs *sdnv1.ClusterSettings) {
	if s, attr, ok := b.str(attrs, "dns_domain"); ok {
		if msg := checkDNSDomain(s); msg != "" {
			b.errorf(attr.Expr.Range(), "Invalid DNS domain", "dns_domain %s %s.", model.Quote(s), msg)
		} else {
			cs.DnsDomain = s
		}
	}
	if s, attr, ok := b.str(attrs, "node_port_range"); ok {
		if lo, hi, ok := parsePortRange(s); ok {
			cs.NodePortMin, cs.NodePortMax = lo, hi
		} else {
			b.errorf(attr.Expr.Range(), "Invalid node_port_range",
				"node_port_range %s is not a range of ports: write the first and the last port, 1 to 65535, first no larger than last, like %q (the default).",
				model.Quote(s), fmt.Sprintf("%d-%d", model.DefaultNodePortMin, model.DefaultNodePortMax))
		}
	}
}

// checkDNSDomain says what is wrong with a dns_domain ("" when nothing):
// a DNS name in lower case, without a trailing dot, at most maxDNSDomain
// characters.
func checkDNSDomain(s string) string {
	switch {
	case strings.ToLower(s) != s:
		return fmt.Sprintf("has upper-case letters; write it in lower case, %s", model.Quote(strings.ToLower(s)))
	case strings.HasSuffix(s, ".") && s != ".":
		return fmt.Sprintf("ends with a dot; write it without, %s", model.Quote(strings.TrimSuffix(s, ".")))
	case len(s) > maxDNSDomain:
		return fmt.Sprintf("is %d characters long, more than %d: SERVICE.NETWORK.<dns_domain> must fit DNS's 253 with 63-character names", len(s), maxDNSDomain)
	}
	if err := model.ValidateNodeName(s); err != nil {
		return fmt.Sprintf("is not a DNS name (dot-separated labels of lowercase letters, digits and '-', e.g. %q): %v", model.DefaultDNSDomain, err)
	}
	return ""
}

// parsePortRange reads "FIRST-LAST", both 1 to 65535, FIRST <= LAST.
func parsePortRange(s string) (lo, hi uint32, ok bool) {
	a, z, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	first, err1 := strconv.ParseUint(a, 10, 16)
	last, err2 := strconv.ParseUint(z, 10, 16)
	if err1 != nil || err2 != nil || first == 0 || first > last {
		return 0, 0, false
	}
	return uint32(first), uint32(last), true
}
