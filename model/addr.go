package model

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Problem is a value that does not parse: a short summary (a diagnostic's
// title, e.g. "Invalid CIDR") and a detail that says what to write instead.
// Its Error is the detail. The Parse functions below return a *Problem as
// their error, so the HCL decoder can title its diagnostics with Summary.
type Problem struct{ Summary, Detail string }

func (p *Problem) Error() string { return p.Detail }

// ProblemSummary returns err's summary when it is a *Problem, else fallback.
func ProblemSummary(err error, fallback string) string {
	var p *Problem
	if errors.As(err, &p) {
		return p.Summary
	}
	return fallback
}

// ParseIPv4Prefix parses a CIDR such as "10.128.0.0/14". It refuses IPv6
// (not supported yet) and host bits set beyond the prefix. attr names the
// attribute in messages.
func ParseIPv4Prefix(attr, s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, &Problem{"Invalid CIDR", fmt.Sprintf(
			"%s is empty; write an IPv4 address and a prefix length, e.g. \"10.128.0.0/14\", or remove it to use the default.", attr)}
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		if a, aerr := netip.ParseAddr(s); aerr == nil {
			ex := "10.128.0.0/14"
			if a.Is4() {
				ex = a.String() + "/24"
			}
			return p, &Problem{"Invalid CIDR", fmt.Sprintf(
				"%s %s is an address, not a CIDR: add the prefix length, e.g. %q.", attr, Quote(s), ex)}
		}
		return p, &Problem{"Invalid CIDR", fmt.Sprintf(
			"%s %s is not a CIDR (%s); write an IPv4 address and a prefix length, e.g. \"10.128.0.0/14\".",
			attr, Quote(s), netipReason(err))}
	}
	if !p.Addr().Is4() {
		return p, &Problem{"IPv6 is not supported", fmt.Sprintf(
			"%s %s is an IPv6 CIDR; only IPv4 is supported for now, e.g. \"10.128.0.0/14\".", attr, Quote(s))}
	}
	if p.Masked() != p {
		return p, &Problem{"CIDR has host bits set", fmt.Sprintf(
			"%s %s has bits set after its /%d prefix; did you mean %q?", attr, Quote(s), p.Bits(), p.Masked().String())}
	}
	return p, nil
}

// reservedRanges are the IPv4 blocks that are no unicast space a host
// routes to a workload (RFC 6890), in address order.
var reservedRanges = []struct {
	p    netip.Prefix
	name string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network"`},
	{netip.MustParsePrefix("127.0.0.0/8"), "the loopback range"},
	{netip.MustParsePrefix("169.254.0.0/16"), "the link-local range"},
	{netip.MustParsePrefix("224.0.0.0/4"), "the multicast range"},
	{netip.MustParsePrefix("240.0.0.0/4"), "the reserved range (class E)"},
}

// CheckUsableRange refuses a workload or service range (cluster cidr,
// service_cidr) that is in or overlaps a block hosts cannot route as
// unicast: 0.0.0.0/8, loopback 127.0.0.0/8, link-local 169.254.0.0/16,
// multicast 224.0.0.0/4 and class E 240.0.0.0/4 with the broadcast address
// 255.255.255.255. The HCL decoder and the FSM both call it, so a file
// sdnctl validates is one the servers accept. attr names the attribute.
func CheckUsableRange(attr string, p netip.Prefix) error {
	for _, r := range reservedRanges {
		if !p.Overlaps(r.p) {
			continue
		}
		rel := "overlaps"
		if r.p.Bits() <= p.Bits() {
			rel = "is in"
		}
		what := fmt.Sprintf("%s %s", r.name, r.p)
		if r.p.Contains(netip.AddrFrom4([4]byte{255, 255, 255, 255})) {
			what += " (with the broadcast address 255.255.255.255)"
		}
		ex := DefaultCIDR
		if attr == "service_cidr" {
			ex = DefaultServiceCIDR
		}
		return &Problem{"Reserved address range", fmt.Sprintf(
			"%s %s %s %s; workload and service addresses must be unicast addresses hosts can route, so choose a private range, e.g. %q.",
			attr, p, rel, what, ex)}
	}
	return nil
}

// ParseIPv4 parses a workload address such as "10.128.0.10" (IPv4 only).
func ParseIPv4(attr, s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, &Problem{"Invalid IP address", fmt.Sprintf(
			"%s is empty; write an IPv4 address, e.g. \"10.128.0.10\", or remove it to have one allocated.", attr)}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		if _, perr := netip.ParsePrefix(s); perr == nil {
			return a, &Problem{"Invalid IP address", fmt.Sprintf(
				"%s %s is a CIDR; write the address alone, without the prefix length, e.g. %q.", attr, Quote(s), s[:strings.IndexByte(s, '/')])}
		}
		return a, &Problem{"Invalid IP address", fmt.Sprintf(
			"%s %s is not an IP address (%s); write an IPv4 address, e.g. \"10.128.0.10\".", attr, Quote(s), netipReason(err))}
	}
	if !a.Is4() {
		return a, &Problem{"IPv6 is not supported", fmt.Sprintf(
			"%s %s is an IPv6 address; only IPv4 is supported for now, e.g. \"10.128.0.10\".", attr, Quote(s))}
	}
	return a, nil
}

// ParseMAC parses a unicast Ethernet address such as "0a:58:0a:80:00:0a" and
// returns it in lowercase colon form.
func ParseMAC(attr, s string) (string, error) {
	if s == "" {
		return "", &Problem{"Invalid MAC address", fmt.Sprintf(
			"%s is empty; write six hex octets, e.g. \"0a:58:0a:80:00:0a\", or remove it to have one derived from the IP.", attr)}
	}
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", &Problem{"Invalid MAC address", fmt.Sprintf(
			"%s %s is not an Ethernet MAC address; write six hex octets separated by colons, e.g. \"0a:58:0a:80:00:0a\".", attr, Quote(s))}
	}
	if hw[0]&1 == 1 {
		return "", &Problem{"Invalid MAC address", fmt.Sprintf(
			"%s %s is a multicast address (the first octet is odd); a workload needs a unicast MAC, e.g. \"0a:58:0a:80:00:0a\".", attr, Quote(s))}
	}
	if string(hw) == "\x00\x00\x00\x00\x00\x00" {
		return "", &Problem{"Invalid MAC address", fmt.Sprintf(
			"%s %s is the all-zero address; omit mac to have one derived from the IP.", attr, Quote(s))}
	}
	return hw.String(), nil
}

// netipReason trims net/netip's error down to the reason, e.g.
// `ParseAddr("10.300.0.0"): IPv4 field has value >255` -> `IPv4 field has value >255`.
// The reason may quote the rest of the input (`unexpected character (at
// "...")`), so it is clipped.
func netipReason(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, "): "); i >= 0 {
		s = s[i+3:]
	}
	return clip(s)
}
