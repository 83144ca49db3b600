package spec

import (
	"fmt"
	"slices"

	"github.com/hashicorp/hcl/v2"

	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

var (
	selectorSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "match_labels"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "match_expression"}},
	}
	expressionSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "key"}, {Name: "operator"}, {Name: "values"}},
	}
	ingressSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "name"}, {Name: "action"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "from"}, {Type: "port"}},
	}
	egressSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "name"}, {Name: "action"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "to"}, {Type: "port"}},
	}
	peerSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "cidr"}, {Name: "except"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "workloads"}, {Type: "networks"}},
	}
	portSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "protocol"}, {Name: "port"}, {Name: "end_port"}, {Name: "name"}},
	}
)

var (
	operators = []string{policy.OpIn, policy.OpNotIn, policy.OpExists, policy.OpDoesNotExist}
	actions   = map[string]sdnv1.PolicyAction{
		"allow": sdnv1.PolicyAction_POLICY_ACTION_ALLOW,
		"deny":  sdnv1.PolicyAction_POLICY_ACTION_DENY,
		"pass":  sdnv1.PolicyAction_POLICY_ACTION_PASS,
	}
)

// sub decodes a nested block's attributes with its own messages ("what")
// and records its ranges into ranges under prefix ("peers[0]" makes
// "peers[0].cidr"), and its span under path.
func (pd *policyDecoder) sub(what string, hb *hcl.Block, schema *hcl.BodySchema, ranges map[string]*sdnv1.SourceRange, prefix, path string) (*block, *hcl.BodyContent, hcl.Attributes) {
	c := &block{what: what, ranges: map[string]*sdnv1.SourceRange{}, exact: pd.exact}
	c.record("", hb.DefRange)
	content, diags := hb.Body.Content(schema)
	c.diags = diags
	attrs := c.present(content)
	for k, r := range c.ranges {
		ranges[join(prefix, k)] = r
	}
	pd.spans[path] = fullRange(hb)
	return c, content, attrs
}

func join(prefix, key string) string {
	switch {
	case prefix == "":
		return key
	case key == "":
		return prefix
	}
	return prefix + "." + key
}

// selector decodes the block of type typ among blocks (at most one) as a
// label selector: nil when absent, empty (everything) when empty. Its
// ranges go into ranges under prefix.typ; path prefixes its span's name.
func (pd *policyDecoder) selector(blocks hcl.Blocks, typ string, ranges map[string]*sdnv1.SourceRange, prefix string) *sdnv1.LabelSelector {
	hb := pd.only(blocks, typ)
	if hb == nil {
		return nil
	}
	at := join(prefix, typ)
	what := fmt.Sprintf("the %s selector of %s", typ, pd.what)
	if typ == "selector" { // a service's
		what = "the selector of " + pd.what
	}
	c, content, attrs := pd.sub(what, hb, selectorSchema, ranges, at, at)
	sel := &sdnv1.LabelSelector{}
	if m, ok := c.labelMap(attrs, "match_labels"); ok {
		sel.MatchLabels = m
	}
	for _, eb := range content.Blocks {
		k := len(sel.MatchExpressions)
		sel.MatchExpressions = append(sel.MatchExpressions, pd.expression(c, eb, ranges, fmt.Sprintf("%s.match_expression[%d]", at, k)))
	}
	pd.diags = append(pd.diags, c.diags...)
	return sel
}

// expression decodes a match_expression block; what is wrong in it is
// reported at the attribute at fault.
func (pd *policyDecoder) expression(sel *block, eb *hcl.Block, ranges map[string]*sdnv1.SourceRange, at string) *sdnv1.LabelRequirement {
	c, _, attrs := pd.sub("a match_expression of "+sel.what, eb, expressionSchema, ranges, at, at)
	c.required(attrs, eb.DefRange, map[string]string{
		"key":      `the label key, e.g. key = "tier"`,
		"operator": `one of "In", "NotIn", "Exists", "DoesNotExist"`,
	})
	r := &sdnv1.LabelRequirement{}
	if s, attr, ok := c.str(attrs, "key"); ok {
		r.Key = s
		if err := model.ValidateLabelKey(s); err != nil {
			c.errorf(attr.Expr.Range(), "Invalid label key", "Label key %s in %s is not valid: %v.", model.Quote(s), c.what, err)
		}
	}
	if s, attr, ok := c.str(attrs, "operator"); ok {
		r.Operator = s
		if !slices.Contains(operators, s) {
			c.errorf(attr.Expr.Range(), "Invalid operator", "operator %s in %s is not one of \"In\", \"NotIn\", \"Exists\", \"DoesNotExist\" (spelled so).%s",
				model.Quote(s), c.what, suggest(s, operators))
		}
	}
	values, vattr, ok := c.strList(attrs, "values", `["frontend", "edge"]`)
	if ok {
		r.Values = values
		for _, v := range values {
			if err := model.ValidateLabelValue(v); err != nil {
				c.errorf(vattr.Expr.Range(), "Invalid label value", "Label value %s in %s is not valid: %v.", model.Quote(v), c.what, err)
			}
		}
	}
	switch r.Operator {
	case policy.OpExists, policy.OpDoesNotExist:
		if vattr != nil {
			c.errorf(vattr.Expr.Range(), "Unexpected values", "operator %q tests only whether the key is there; remove values.", r.Operator)
		}
	case policy.OpIn, policy.OpNotIn:
		if vattr == nil || (ok && len(values) == 0) {
			c.errorf(rangeOr(attrs, "values", eb.DefRange), "Missing values", "operator %q needs values, at least one, e.g. values = [\"frontend\"].", r.Operator)
		}
	}
	pd.diags = append(pd.diags, c.diags...)
	return r
}

// rule decodes an ingress or egress block, rule i of its direction.
func (pd *policyDecoder) rule(d policy.Direction, i int, hb *hcl.Block) *sdnv1.PolicyRule {
	schema, peerType := ingressSchema, "from"
	if d == policy.Egress {
		schema, peerType = egressSchema, "to"
	}
	path := fmt.Sprintf("%s[%d]", d, i)
	r := &sdnv1.PolicyRule{Action: sdnv1.PolicyAction_POLICY_ACTION_ALLOW, Ranges: map[string]*sdnv1.SourceRange{}}
	c, content, attrs := pd.sub(fmt.Sprintf("%s rule %d of %s", d, i+1, pd.what), hb, schema, r.Ranges, "", path)
	if s, _, ok := c.str(attrs, "name"); ok {
		r.Name = s // policy.Check validates it
	}
	if s, attr, ok := c.str(attrs, "action"); ok {
		if a, known := actions[s]; known {
			r.Action = a
		} else {
			c.errorf(attr.Expr.Range(), "Invalid action", "action %s in %s is not one of \"allow\" (the default), \"deny\" or \"pass\" (cluster-wide policies only).%s",
				model.Quote(s), c.what, suggest(s, []string{"allow", "deny", "pass"}))
		}
	}
	pd.diags = append(pd.diags, c.diags...)
	for _, b := range content.Blocks {
		switch b.Type {
		case peerType:
			r.Peers = append(r.Peers, pd.peer(c.what, b, r.Ranges, path, len(r.Peers)))
		case "port":
			r.Ports = append(r.Ports, pd.port(c.what, b, r.Ranges, path, len(r.Ports)))
		}
	}
	return r
}

// peer decodes a from or to block, peer j of its rule.
func (pd *policyDecoder) peer(rule string, hb *hcl.Block, ranges map[string]*sdnv1.SourceRange, path string, j int) *sdnv1.PolicyPeer {
	at := fmt.Sprintf("peers[%d]", j)
	c, content, attrs := pd.sub(fmt.Sprintf("%s block %d of %s", hb.Type, j+1, rule), hb, peerSchema, ranges, at, path+"."+at)
	peer := &sdnv1.PolicyPeer{}
	if s, _, ok := c.str(attrs, "cidr"); ok {
		peer.Cidr = s // policy.Check parses it
	}
	if list, _, ok := c.strList(attrs, "except", `["10.1.0.0/16"]`); ok {
		peer.Except = list
	}
	pd.diags = append(pd.diags, c.diags...)
	peer.Workloads = pd.selector(content.Blocks, "workloads", ranges, at)
	peer.Networks = pd.selector(content.Blocks, "networks", ranges, at)
	return peer
}

// port decodes a port block, port j of its rule. protocol defaults to tcp.
func (pd *policyDecoder) port(rule string, hb *hcl.Block, ranges map[string]*sdnv1.SourceRange, path string, j int) *sdnv1.PolicyPort {
	at := fmt.Sprintf("ports[%d]", j)
	c, _, attrs := pd.sub(fmt.Sprintf("port block %d of %s", j+1, rule), hb, portSchema, ranges, at, path+"."+at)
	pp := &sdnv1.PolicyPort{Protocol: "tcp"}
	if s, _, ok := c.str(attrs, "protocol"); ok {
		pp.Protocol = s // policy.Check refuses sctp and the unknown
	}
	if n, _, ok := c.integer(attrs, "port", 1, 65535, "a port is 1 to 65535"); ok {
		pp.Port = uint32(n)
	}
	if n, _, ok := c.integer(attrs, "end_port", 1, 65535, "a port is 1 to 65535"); ok {
		pp.EndPort = uint32(n)
	}
	if s, _, ok := c.str(attrs, "name"); ok {
		pp.Name = s
	}
	pd.diags = append(pd.diags, c.diags...)
	return pp
}
