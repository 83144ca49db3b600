package spec

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// namedPorts decodes named_ports = { http = "tcp/8080", dns = "udp/53",
// web = "8080" } (a bare number is tcp), sorted by name. Each problem is
// reported at the entry at fault when the map is written literally.
func (b *block) namedPorts(attrs hcl.Attributes) []*sdnv1.NamedPort {
	attr := attrs["named_ports"]
	if attr == nil {
		return nil
	}
	v, ok := b.value(attr)
	if !ok {
		return nil
	}
	if t := v.Type(); !t.IsObjectType() && !t.IsMapType() {
		b.errorf(attr.Expr.Range(), "Incorrect attribute value type",
			`Attribute "named_ports" in %s must be a map from port names to "protocol/port", like { http = "tcp/8080", dns = "udp/53" }, not %s.`, b.what, friendly(t))
		return nil
	}
	at := map[string]hcl.Range{} // each entry's value, when written literally
	if obj, isObj := attr.Expr.(*hclsyntax.ObjectConsExpr); isObj {
		for _, it := range obj.Items {
			if k, d := it.KeyExpr.Value(nil); !d.HasErrors() && k.Type() == cty.String {
				at[k.AsString()] = it.ValueExpr.Range()
			}
		}
	}
	ports := map[string]*sdnv1.NamedPort{}
	for it := v.ElementIterator(); it.Next(); {
		k, ev := it.Element()
		name := k.AsString()
		r, found := at[name]
		if !found {
			r = attr.Expr.Range()
		}
		np, msg := parseNamedPort(name, ev)
		if msg == "" {
			if err := policy.CheckNamedPorts([]*sdnv1.NamedPort{np}); err != nil {
				msg = err.Error()
			}
		}
		if msg != "" {
			b.errorf(r, "Invalid named port", "named port %s in %s: %s.", model.Quote(name), b.what, msg)
			continue
		}
		ports[name] = np
	}
	out := make([]*sdnv1.NamedPort, 0, len(ports))
	for _, name := range slices.Sorted(maps.Keys(ports)) {
		out = append(out, ports[name])
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// parseNamedPort reads "tcp/8080", "udp/53" or "8080" (tcp).
func parseNamedPort(name string, v cty.Value) (*sdnv1.NamedPort, string) {
	if v.IsNull() || v.Type() != cty.String {
		return nil, `write "tcp/8080", "udp/53" or "8080" (tcp), in quotes`
	}
	s := v.AsString()
	proto, num, found := strings.Cut(s, "/")
	if !found {
		proto, num = "tcp", s
	}
	if proto != "tcp" && proto != "udp" {
		return nil, "protocol " + model.Quote(proto) + ` is not "tcp" or "udp"; write e.g. "udp/53"`
	}
	n, err := strconv.ParseUint(num, 10, 32)
	if err != nil || n == 0 || n > 65535 {
		return nil, "port " + model.Quote(num) + " is not a number from 1 to 65535"
	}
	return &sdnv1.NamedPort{Name: name, Protocol: proto, Port: uint32(n)}, ""
}
