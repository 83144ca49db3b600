package policy

import (
	"strconv"
	"strings"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// RangeOf returns where in its source the attribute a Problem names was
// declared: field is a Problem.Field ("priority", "ingress[1].peers[0].cidr").
// A rule's part is looked up in that rule's ranges (keyed "peers[0].cidr"),
// the rest in the policy's. When the exact attribute has no range, the
// nearest enclosing one that has is returned (the peer, the rule, the
// policy's block); nil when the policy carries no ranges at all.
func RangeOf(p *sdnv1.Policy, field string) *sdnv1.SourceRange {
	for _, d := range []Direction{Ingress, Egress} {
		rest, ok := strings.CutPrefix(field, string(d)+"[")
		if !ok {
			continue
		}
		num, tail, ok := strings.Cut(rest, "]")
		i, err := strconv.Atoi(num)
		rules := p.Ingress
		if d == Egress {
			rules = p.Egress
		}
		if !ok || err != nil || i < 0 || i >= len(rules) {
			break
		}
		if r := nearest(rules[i].Ranges, strings.TrimPrefix(tail, ".")); r != nil {
			return r
		}
		return p.Ranges[""]
	}
	return nearest(p.Ranges, field)
}

// nearest looks key up in ranges, dropping its last component
// (".cidr", "[0]") until one is found; "" is the last resort.
func nearest(ranges map[string]*sdnv1.SourceRange, key string) *sdnv1.SourceRange {
	for {
		if r := ranges[key]; r != nil {
			return r
		}
		if key == "" {
			return nil
		}
		cut := max(strings.LastIndexByte(key, '.'), strings.LastIndexByte(key, '['))
		key = key[:max(cut, 0)]
	}
}
