package suites

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// dpStats is what one OVS datapath holds: its megaflows and their masks.
type dpStats struct {
	Flows     int // `dpctl/show`'s "flows:"
	Dumped    int // megaflows `dpctl/dump-flows -m` listed
	Masks     int // distinct masks among them
	Subtables int // distinct (in_port, mask): the userspace datapath's classifier subtables
	// ByMask counts megaflows per mask, for reading a dump by eye.
	ByMask map[string]int
}

var showFlowsRE = regexp.MustCompile(`(?m)^\s*flows:\s*(\d+)\s*$`)

// parseShowFlows returns the "flows: N" of `ovs-appctl dpctl/show`. The
// userspace datapath prints no "masks:" line (only the kernel one does), so
// masks are counted from the dump instead (parseDumpFlows).
func parseShowFlows(out string) (int, error) {
	m := showFlowsRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("dpctl/show printed no \"flows: N\" line: %.300q", out)
	}
	return strconv.Atoi(m[1])
}

// parseDumpFlows reads `ovs-appctl dpctl/dump-flows -m` and fills Dumped,
// Masks, Subtables and ByMask.
func parseDumpFlows(out string) dpStats {
	s := dpStats{ByMask: map[string]int{}}
	subtables := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		key, ok := flowKey(line)
		if !ok {
			continue // "flow-dump from ..." headers
		}
		mask, inPort := megaflowMask(key)
		s.Dumped++
		s.ByMask[mask]++
		subtables[inPort+" "+mask] = true
	}
	s.Masks, s.Subtables = len(s.ByMask), len(subtables)
	return s
}

// flowKey returns the match part of one line of `dpctl/dump-flows -m`
// ("ufid:UUID, KEY, packets:..."); ok is false for other lines.
func flowKey(line string) (key string, ok bool) {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "ufid:") {
		return "", false
	}
	_, key, _ = strings.Cut(line, ", ")
	key, _, _ = strings.Cut(key, ", packets:")
	return key, true
}

// megaflowMask returns the mask of a megaflow key as printed by `dpctl/
// dump-flows -m` (every field: "value" when matched exactly, "value/mask"
// when partly or wholly wildcarded), in a form where two flows differing
// only in the values they match give the same string: the fields the mask
// does not wildcard entirely, each with its mask ("*" = exact), sorted.
// Fields that share one slot of the datapath's flow key share a name
// (tcp/udp ports and icmp type/code are tp_src/tp_dst; the IPv4 and IPv6
// protocol, tos, ttl and frag are nw_*), so the count matches the distinct
// masks the datapath keeps. It also returns the in_port, which the
// userspace datapath matches exactly and classifies by before any mask.
func megaflowMask(key string) (mask, inPort string) {
	var fields []string
	for _, item := range splitTop(key) {
		maskFields(item, "", &fields, &inPort)
	}
	slices.Sort(fields)
	return strings.Join(slices.Compact(fields), ","), inPort
}

// maskFields appends the masked fields of one attribute: name(...),
// key=value or a bare value (of parent).
func maskFields(item, parent string, fields *[]string, inPort *string) {
	add := func(name, mask string) {
		if !zeroMask(mask) {
			*fields = append(*fields, name+"="+mask)
		}
	}
	if open := strings.IndexByte(item, '('); open > 0 && strings.HasSuffix(item, ")") && !strings.Contains(item[:open], "=") {
		name, inner := item[:open], item[open+1:len(item)-1]
		switch {
		case name == "in_port":
			*inPort = inner
			add(name, "*")
			return
		case name == "flags":
			// Masked flags print as the flags in the mask, each with a
			// + or - for its value: the names are the mask.
			add(parent+".flags", strings.Join(flagNames(inner), "|"))
			return
		case !strings.ContainsAny(inner, "=("):
			add(name, maskValue(inner)) // recirc_id(0), eth_type(0x0800), ct_state(0x21/0x31)
			return
		}
		for _, p := range splitTop(inner) {
			maskFields(p, name, fields, inPort)
		}
		return
	}
	if k, v, ok := strings.Cut(item, "="); ok {
		name := parent + "." + k
		if c, ok := flowField[name]; ok {
			name = c
		}
		add(name, maskValue(v))
		return
	}
	add(parent, maskValue(item))
}

// flowField names the datapath flow-key slot of protocol fields that share
// one (see megaflowMask).
var flowField = map[string]string{
	"tcp.src": "tp_src", "tcp.dst": "tp_dst", "udp.src": "tp_src", "udp.dst": "tp_dst",
	"sctp.src": "tp_src", "sctp.dst": "tp_dst",
	"icmp.type": "tp_src", "icmp.code": "tp_dst", "icmpv6.type": "tp_src", "icmpv6.code": "tp_dst",
	"ipv4.proto": "nw_proto", "ipv6.proto": "nw_proto", "arp.op": "nw_proto",
	"ipv4.tos": "nw_tos", "ipv6.tclass": "nw_tos",
	"ipv4.ttl": "nw_ttl", "ipv6.hlimit": "nw_ttl",
	"ipv4.frag": "nw_frag", "ipv6.frag": "nw_frag",
	"ipv4.src": "nw_src", "ipv4.dst": "nw_dst", "arp.sip": "nw_src", "arp.tip": "nw_dst",
	"arp.sha": "arp_sha", "arp.tha": "arp_tha", "nd.sll": "arp_sha", "nd.tll": "arp_tha",
}

// maskValue returns the mask of "value/mask", or "*" for an exact "value".
func maskValue(v string) string {
	if i := strings.LastIndexByte(v, '/'); i >= 0 {
		return v[i+1:]
	}
	return "*"
}

// zeroMask reports whether a printed mask wildcards everything: 0, 0x0,
// 0.0.0.0, ::, 00:00:00:00:00:00.
func zeroMask(m string) bool {
	return m != "" && strings.Trim(strings.TrimPrefix(m, "0x"), "0.:") == ""
}

// flagNames returns the names in "-df-csum+key", sorted.
func flagNames(s string) []string {
	names := strings.FieldsFunc(s, func(r rune) bool { return r == '+' || r == '-' || r == '|' })
	slices.Sort(names)
	return names
}

// splitTop splits s at the commas outside parentheses.
func splitTop(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	if start < len(s) {
		parts = append(parts, s[start:])
	}
	return parts
}
