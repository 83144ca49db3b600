package ovs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"
)

// canonFlow is a desired flow in OVS's canonical text: what dump-flows will
// print for it once installed.
type canonFlow struct {
	key     flowKey
	actions string
}

// canonicalize returns the canonical forms of flows (same order). Inputs
// seen before come from the cache; the rest go through one
// `ovs-ofctl -O OpenFlow15 parse-flows -` run, which parses the text,
// encodes it as an OpenFlow 1.5 flow_mod, decodes that and prints it with
// the same formatting code dump-flows uses (see doc.go for the
// measurements). It needs no bridge and no switch state. Callers hold i.mu.
func (i *Instance) canonicalize(ctx context.Context, flows []Flow, lines []string) ([]canonFlow, error) {
	if len(lines) != len(flows) {
		lines = canonInputs(flows)
	}
	out := make([]canonFlow, len(flows))
	used := make(map[string]canonFlow, len(flows))
	var missing []int
	var input strings.Builder
	for k, f := range flows {
		if strings.ContainsAny(f.Match, "\n\r") || strings.ContainsAny(f.Actions, "\n\r") {
			return nil, fmt.Errorf("flow %s: match and actions must be one line each", f.String())
		}
		line := lines[k]
		if c, ok := i.canon[line]; ok {
			out[k], used[line] = c, c
			continue
		}
		missing = append(missing, k)
		input.WriteString(line)
		input.WriteByte('\n')
	}
	if len(missing) > 0 {
		stdout, err := i.runInput(ctx, input.String(), "ovs-ofctl", "-O", "OpenFlow15", "parse-flows", "-")
		if err != nil {
			return nil, explainParseError(err, flows, missing)
		}
		canon, err := parseFlowMods(stdout)
		if err != nil {
			return nil, err
		}
		if len(canon) != len(missing) {
			return nil, fmt.Errorf("canonicalize flows: ovs-ofctl parse-flows printed %d flows for %d inputs", len(canon), len(missing))
		}
		for j, k := range missing {
			c := canon[j]
			if c.key.table != flows[k].Table || c.key.priority != flows[k].Priority {
				return nil, &FlowError{Flow: flows[k], Reason: fmt.Sprintf(
					"OVS reads it as table %d priority %d; put table, priority and cookie in the Flow fields, not in Match",
					c.key.table, c.key.priority)}
			}
			if err := checkFieldsKept(flows[k], c); err != nil {
				return nil, err
			}
			out[k], used[lines[k]] = c, c
		}
	}
	// Keep what this call used; forget the rest once it outweighs that.
	if i.canon == nil || len(i.canon) > 2*len(used)+4096 {
		i.canon = used
	} else {
		maps.Copy(i.canon, used)
	}
	return out, nil
}

// canonInput is the line parse-flows gets for f, and f's cache key. The
// cookie is left out: canonical match and actions do not depend on it.
func canonInput(f Flow) string {
	f.Cookie = 0
	return f.String()
}

// canonInputs are the canonInputs of flows.
func canonInputs(flows []Flow) []string {
	lines := make([]string, len(flows))
	for k, f := range flows {
		lines[k] = canonInput(f)
	}
	return lines
}

// parse-flows reports a bad line as "ovs-ofctl: -:LINE: message".
var lineErr = regexp.MustCompile(`-:(\d+): (.*)`)

func explainParseError(err error, flows []Flow, missing []int) error {
	var ce *CommandError
	if errors.As(err, &ce) {
		if m := lineErr.FindStringSubmatch(ce.Stderr); m != nil {
			n, _ := strconv.Atoi(m[1])
			if n >= 1 && n <= len(missing) {
				return &FlowError{Flow: flows[missing[n-1]], Reason: m[2]}
			}
		}
	}
	return fmt.Errorf("canonicalize flows: %w", err)
}

// checkFieldsKept refuses flows whose match OVS silently widens: a field
// without its prerequisite ("ip,tp_dst=80" names neither tcp nor udp) is
// dropped while parsing, and the flow would match far more than its author
// meant. ovs-ofctl logs only some of these cases ("normalization changed
// ofp_match" on stderr; "ip,tcp_flags=+syn" loses tcp_flags silently), so
// every field named in the input must appear in OVS's reading of it.
func checkFieldsKept(f Flow, c canonFlow) error {
	have := map[string]bool{}
	for _, name := range matchFields(c.key.match) {
		have[name] = true
	}
	for _, name := range matchFields(f.Match) {
		switch name {
		case "table", "priority", "cookie", "actions":
			return &FlowError{Flow: f, Reason: fmt.Sprintf("Match names %q; put table, priority and cookie in the Flow fields, not in Match", name)}
		}
		if protocolFields[name] {
			continue
		}
		if alias, ok := fieldAliases[name]; ok {
			name = alias
		}
		if !have[name] {
			return &FlowError{Flow: f, Reason: fmt.Sprintf(
				"OVS drops field %q from the match (it reads %q): the field's prerequisite is missing "+
					"(e.g. tcp or udp for tp_dst, ip for nw_src) or its mask is all zeros; "+
					"or write OVS's own field name", name, c.key.match)}
		}
	}
	return nil
}

// matchFields returns the field names in a match ("ip,nw_src=10.0.0.1" ->
// ip, nw_src), splitting on commas outside parentheses.
func matchFields(m string) []string {
	var names []string
	depth, start := 0, 0
	for k := 0; k <= len(m); k++ {
		if k < len(m) {
			switch m[k] {
			case '(':
				depth++
				continue
			case ')':
				depth--
				continue
			case ',':
				if depth > 0 {
					continue
				}
			default:
				continue
			}
		}
		item := strings.TrimSpace(m[start:k])
		start = k + 1
		if name, _, _ := strings.Cut(item, "="); name != "" {
			names = append(names, strings.TrimSpace(name))
		}
	}
	return names
}

// protocolFields fold into OVS's protocol shorthand ("dl_type=0x0800,nw_proto=6"
// prints as "tcp"); their loss is never silent widening.
var protocolFields = map[string]bool{
	"dl_type": true, "eth_type": true, "nw_proto": true, "ip_proto": true,
	"eth": true, "ip": true, "ipv6": true, "icmp": true, "icmp6": true, "tcp": true, "tcp6": true,
	"udp": true, "udp6": true, "sctp": true, "sctp6": true, "arp": true, "rarp": true,
	"mpls": true, "mplsm": true,
}

// fieldAliases maps OXM-style names to the names OVS prints.
var fieldAliases = map[string]string{
	"eth_src": "dl_src", "eth_dst": "dl_dst",
	"ip_src": "nw_src", "ip_dst": "nw_dst", "ip_ttl": "nw_ttl", "ip_ecn": "nw_ecn",
	"tcp_src": "tp_src", "tcp_dst": "tp_dst", "udp_src": "tp_src", "udp_dst": "tp_dst",
	"sctp_src": "tp_src", "sctp_dst": "tp_dst",
	"tunnel_id": "tun_id", "tun_ipv4_src": "tun_src", "tun_ipv4_dst": "tun_dst",
	"icmpv4_type": "icmp_type", "icmpv4_code": "icmp_code",
	"icmpv6_type": "icmp_type", "icmpv6_code": "icmp_code",
}

// FlowError is a flow OVS refused, and why.
type FlowError struct {
	Flow   Flow
	Reason string
}

func (e *FlowError) Error() string {
	return fmt.Sprintf("flow %s: %s", e.Flow.String(), e.Reason)
}

// parseFlowMods parses parse-flows output lines like
//
//	OFPT_FLOW_MOD (OF1.5) (xid=0x3): ADD table:10 priority=200,tcp,reg0=0x5,tp_dst=80 actions=ct(commit,table=20)
func parseFlowMods(out string) ([]canonFlow, error) {
	var res []canonFlow
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "OFPT_FLOW_MOD") {
			continue
		}
		_, mod, ok := strings.Cut(line, "): ")
		if !ok {
			return nil, fmt.Errorf("canonicalize flows: unexpected ovs-ofctl output %q", line)
		}
		f, err := parseFlowMod(mod)
		if err != nil {
			return nil, err
		}
		res = append(res, canonFlow{key: f.key(), actions: f.Actions})
	}
	return res, nil
}

// parseFlowMod parses "ADD table:10 priority=200,tcp actions=..." (also
// DELETE_STRICT etc.), as ovs-ofctl prints flow_mods in parse-flows output
// and in error replies.
func parseFlowMod(mod string) (Flow, error) {
	_, rest, ok := strings.Cut(mod, " ")
	if !ok {
		return Flow{}, fmt.Errorf("unexpected flow_mod text %q", mod)
	}
	var table uint8
	if t, ok := strings.CutPrefix(rest, "table:"); ok {
		n, tail, _ := strings.Cut(t, " ")
		v, err := strconv.ParseUint(n, 10, 8)
		if err != nil {
			return Flow{}, fmt.Errorf("unexpected flow_mod text %q: %w", mod, err)
		}
		table, rest = uint8(v), tail
	}
	// " cookie:0x..." and other "name:value" items may sit between the
	// match and the actions; dump syntax wants them gone.
	head, actions := "", rest
	if j := strings.Index(rest, " actions="); j >= 0 {
		head, actions = rest[:j], rest[j+1:]
	}
	var kept []string
	for _, w := range strings.Fields(head) {
		if !strings.Contains(w, ":") || strings.Contains(w, "=") {
			kept = append(kept, w)
		}
	}
	f, err := parseDumpLine(strings.TrimSpace(strings.Join(append(kept, actions), " ")))
	f.Table = table
	return f, err
}
