package spec

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// ValidateName checks a network or workload name: a DNS label of 1-63
// lowercase letters, digits and '-', starting with a letter and ending with a
// letter or digit. The error says which rule failed.
func ValidateName(s string) error {
	switch {
	case s == "":
		return errors.New("it is empty")
	case len(s) > 63:
		return fmt.Errorf("it is %d characters long, more than 63", len(s))
	}
	for i, r := range s {
		if !isLower(r) && !isDigit(r) && r != '-' {
			return fmt.Errorf("it contains %q at position %d; only lowercase letters, digits and '-' are allowed", r, i+1)
		}
	}
	if !isLower(rune(s[0])) {
		return fmt.Errorf("it starts with %q, not a lowercase letter", s[0])
	}
	if s[len(s)-1] == '-' {
		return errors.New("it ends with '-', not a letter or digit")
	}
	return nil
}

// ValidateNodeName checks a host name as a DNS subdomain: at most 253
// characters, dot-separated DNS labels of lowercase letters, digits and '-'
// that start and end with a letter or digit (e.g. "host1", "rack2.dc1").
func ValidateNodeName(s string) error {
	if len(s) > 253 {
		return fmt.Errorf("it is %d characters long, more than 253", len(s))
	}
	return validateSubdomain(s)
}

// ValidateLabelKey checks a label key as Kubernetes does: an optional prefix
// that is a DNS subdomain followed by '/', then a name of at most 63
// characters from [A-Za-z0-9._-] that starts and ends with a letter or digit.
func ValidateLabelKey(k string) error {
	name := k
	if i := strings.IndexByte(k, '/'); i >= 0 {
		prefix := k[:i]
		name = k[i+1:]
		if strings.Contains(name, "/") {
			return errors.New("a key has at most one '/', between the prefix and the name")
		}
		if prefix == "" {
			return errors.New("the prefix before '/' is empty")
		}
		if len(prefix) > 253 {
			return fmt.Errorf("the prefix is %d characters long, more than 253", len(prefix))
		}
		if err := validateSubdomain(prefix); err != nil {
			return fmt.Errorf("the prefix %q is not a DNS subdomain: %v", prefix, err)
		}
	}
	if name == "" {
		return errors.New("the name part is empty")
	}
	if err := validateLabelName(name); err != nil {
		return fmt.Errorf("the name part %v", err)
	}
	return nil
}

// ValidateLabelValue checks a label value as Kubernetes does: empty, or at
// most 63 characters from [A-Za-z0-9._-] starting and ending with a letter
// or digit.
func ValidateLabelValue(v string) error {
	if v == "" {
		return nil
	}
	if err := validateLabelName(v); err != nil {
		return fmt.Errorf("it %v", err)
	}
	return nil
}

// validateLabelName checks the shared syntax of label names and values; its
// error reads after "it" or "the name part".
func validateLabelName(s string) error {
	if len(s) > 63 {
		return fmt.Errorf("is %d characters long, more than 63", len(s))
	}
	for i, r := range s {
		if !isAlnum(r) && r != '-' && r != '_' && r != '.' {
			return fmt.Errorf("contains %q at position %d; only letters, digits, '-', '_' and '.' are allowed", r, i+1)
		}
	}
	if !isAlnum(rune(s[0])) || !isAlnum(rune(s[len(s)-1])) {
		return errors.New("must start and end with a letter or digit")
	}
	return nil
}

func validateSubdomain(s string) error {
	if s == "" {
		return errors.New("it is empty")
	}
	for part := range strings.SplitSeq(s, ".") {
		if part == "" {
			return errors.New("it has an empty part between dots")
		}
		if len(part) > 63 {
			return fmt.Errorf("its part %q is longer than 63 characters", part)
		}
		for i, r := range part {
			if !isLower(r) && !isDigit(r) && r != '-' {
				return fmt.Errorf("it contains %q in part %q at position %d; only lowercase letters, digits, '-' and '.' are allowed", r, part, i+1)
			}
		}
		if part[0] == '-' || part[len(part)-1] == '-' {
			return fmt.Errorf("its part %q starts or ends with '-'", part)
		}
	}
	return nil
}

func isLower(r rune) bool { return r >= 'a' && r <= 'z' }
func isDigit(r rune) bool { return r >= '0' && r <= '9' }
func isAlnum(r rune) bool { return isLower(r) || isDigit(r) || (r >= 'A' && r <= 'Z') }

// addrProblem is a value that does not parse, with a summary and detail for a
// diagnostic.
type addrProblem struct{ summary, detail string }

// ParseIPv4Prefix parses a CIDR such as "10.128.0.0/14". It refuses IPv6
// (not supported yet) and host bits set beyond the prefix. attr names the
// attribute in messages.
func ParseIPv4Prefix(attr, s string) (netip.Prefix, error) {
	p, prob := parsePrefix(attr, s)
	if prob != nil {
		return netip.Prefix{}, errors.New(prob.detail)
	}
	return p, nil
}

func parsePrefix(attr, s string) (netip.Prefix, *addrProblem) {
	if s == "" {
		return netip.Prefix{}, &addrProblem{"Invalid CIDR", fmt.Sprintf(
			"%s is empty; write an IPv4 address and a prefix length, e.g. \"10.128.0.0/14\", or remove it to use the default.", attr)}
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		if a, aerr := netip.ParseAddr(s); aerr == nil {
			ex := "10.128.0.0/14"
			if a.Is4() {
				ex = a.String() + "/24"
			}
			return p, &addrProblem{"Invalid CIDR", fmt.Sprintf(
				"%s %q is an address, not a CIDR: add the prefix length, e.g. %q.", attr, s, ex)}
		}
		return p, &addrProblem{"Invalid CIDR", fmt.Sprintf(
			"%s %q is not a CIDR (%s); write an IPv4 address and a prefix length, e.g. \"10.128.0.0/14\".",
			attr, s, netipReason(err))}
	}
	if !p.Addr().Is4() {
		return p, &addrProblem{"IPv6 is not supported", fmt.Sprintf(
			"%s %q is an IPv6 CIDR; only IPv4 is supported for now, e.g. \"10.128.0.0/14\".", attr, s)}
	}
	if p.Masked() != p {
		return p, &addrProblem{"CIDR has host bits set", fmt.Sprintf(
			"%s %q has bits set after its /%d prefix; did you mean %q?", attr, s, p.Bits(), p.Masked().String())}
	}
	return p, nil
}

// ParseIPv4 parses a workload address such as "10.128.0.10" (IPv4 only).
func ParseIPv4(attr, s string) (netip.Addr, error) {
	a, prob := parseAddr(attr, s)
	if prob != nil {
		return netip.Addr{}, errors.New(prob.detail)
	}
	return a, nil
}

func parseAddr(attr, s string) (netip.Addr, *addrProblem) {
	if s == "" {
		return netip.Addr{}, &addrProblem{"Invalid IP address", fmt.Sprintf(
			"%s is empty; write an IPv4 address, e.g. \"10.128.0.10\", or remove it to have one allocated.", attr)}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		if _, perr := netip.ParsePrefix(s); perr == nil {
			return a, &addrProblem{"Invalid IP address", fmt.Sprintf(
				"%s %q is a CIDR; write the address alone, without the prefix length, e.g. %q.", attr, s, s[:strings.IndexByte(s, '/')])}
		}
		return a, &addrProblem{"Invalid IP address", fmt.Sprintf(
			"%s %q is not an IP address (%s); write an IPv4 address, e.g. \"10.128.0.10\".", attr, s, netipReason(err))}
	}
	if !a.Is4() {
		return a, &addrProblem{"IPv6 is not supported", fmt.Sprintf(
			"%s %q is an IPv6 address; only IPv4 is supported for now, e.g. \"10.128.0.10\".", attr, s)}
	}
	return a, nil
}

// ParseMAC parses a unicast Ethernet address such as "0a:58:0a:80:00:0a" and
// returns it in lowercase colon form.
func ParseMAC(attr, s string) (string, error) {
	m, prob := parseMAC(attr, s)
	if prob != nil {
		return "", errors.New(prob.detail)
	}
	return m, nil
}

func parseMAC(attr, s string) (string, *addrProblem) {
	if s == "" {
		return "", &addrProblem{"Invalid MAC address", fmt.Sprintf(
			"%s is empty; write six hex octets, e.g. \"0a:58:0a:80:00:0a\", or remove it to have one derived from the IP.", attr)}
	}
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", &addrProblem{"Invalid MAC address", fmt.Sprintf(
			"%s %q is not an Ethernet MAC address; write six hex octets separated by colons, e.g. \"0a:58:0a:80:00:0a\".", attr, s)}
	}
	if hw[0]&1 == 1 {
		return "", &addrProblem{"Invalid MAC address", fmt.Sprintf(
			"%s %q is a multicast address (the first octet is odd); a workload needs a unicast MAC, e.g. \"0a:58:0a:80:00:0a\".", attr, s)}
	}
	if string(hw) == "\x00\x00\x00\x00\x00\x00" {
		return "", &addrProblem{"Invalid MAC address", fmt.Sprintf(
			"%s %q is the all-zero address; omit mac to have one derived from the IP.", attr, s)}
	}
	return hw.String(), nil
}

// netipReason trims net/netip's error down to the reason, e.g.
// `ParseAddr("10.300.0.0"): IPv4 field has value >255` -> `IPv4 field has value >255`.
func netipReason(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, "): "); i >= 0 {
		return s[i+3:]
	}
	return s
}
