package spec

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

var policySchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "network"},
		{Name: "priority"},
		{Name: "isolate"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "networks"},
		{Type: "workloads"},
		{Type: "ingress"},
		{Type: "egress"},
	},
}

// policyDecoder decodes one policy block. Besides the ranges it stores in
// the objects (where each attribute was written), it keeps the full span
// of every nested block by the path policy.Check names it with
// ("ingress[0].peers[1]"), so a problem Check finds inside a part the
// decoder already reported is not reported twice.
type policyDecoder struct {
	*block
	spans map[string]hcl.Range
}

// decodePolicy decodes a policy "NAME" block and validates it with
// policy.Check, each problem reported at the attribute it concerns.
func decodePolicy(filename string, b *hcl.Block) (*sdnv1.Policy, hcl.Diagnostics) {
	name := b.Labels[0]
	pd := &policyDecoder{block: &block{what: "policy " + model.Quote(name), ranges: map[string]*sdnv1.SourceRange{},
		exact: map[*sdnv1.SourceRange]hcl.Range{}}, spans: map[string]hcl.Range{"": fullRange(b)}}
	pd.record("", b.DefRange)
	pd.record("name", b.LabelRanges[0])
	content, diags := b.Body.Content(policySchema)
	pd.diags = append(pd.diags, diags...)
	attrs := pd.present(content)

	p := &sdnv1.Policy{
		Name:     name,
		Priority: policy.DefaultPriority,
		Origin:   &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_HCL, File: filename},
		Ranges:   pd.ranges,
	}
	if err := model.ValidateName(name); err != nil {
		pd.errorf(b.LabelRanges[0], "Invalid policy name",
			"Policy name %s is not a DNS label: %v. Names are 1-63 lowercase letters, digits and '-', start with a letter and end with a letter or digit, e.g. \"web-from-clients\".",
			model.Quote(name), err)
	}
	pd.header(attrs, p)
	p.Networks = pd.selector(content.Blocks, "networks", p.Ranges, "")
	p.Workloads = pd.selector(content.Blocks, "workloads", p.Ranges, "")
	for _, hb := range content.Blocks {
		switch hb.Type {
		case "ingress":
			p.Ingress = append(p.Ingress, pd.rule(policy.Ingress, len(p.Ingress), hb))
		case "egress":
			p.Egress = append(p.Egress, pd.rule(policy.Egress, len(p.Egress), hb))
		}
	}
	pd.isolate(attrs, p)
	pd.check(p)
	return p, pd.diags
}

// header decodes the policy's network and priority.
func (pd *policyDecoder) header(attrs hcl.Attributes, p *sdnv1.Policy) {
	if s, attr, ok := pd.str(attrs, "network"); ok {
		if err := model.ValidateName(s); err != nil {
			pd.errorf(attr.Expr.Range(), "Invalid network name",
				"network %s in %s is not a DNS label: %v. Omit network for a cluster-wide policy.", model.Quote(s), pd.what, err)
		} else {
			p.Network = s
		}
	}
	if n, _, ok := pd.integer(attrs, "priority", 0, policy.MaxPriority,
		fmt.Sprintf("a priority is 0 to %d, lower evaluated first (default %d)", policy.MaxPriority, policy.DefaultPriority)); ok {
		p.Priority = int32(n)
	}
}

// isolate decodes isolate, or fills its default: a network's policy
// isolates ingress, and egress when it has egress rules; a cluster-wide
// one isolates nothing (docs/policy.md, "Isolation").
func (pd *policyDecoder) isolate(attrs hcl.Attributes, p *sdnv1.Policy) {
	list, attr, ok := pd.strList(attrs, "isolate", `["ingress", "egress"]`)
	switch {
	case ok:
		p.Isolate = list
		if p.Isolate == nil {
			p.Isolate = []string{}
		}
	case attr != nil: // reported
	case p.Network != "":
		p.Isolate = []string{string(policy.Ingress)}
		if len(p.Egress) > 0 {
			p.Isolate = append(p.Isolate, string(policy.Egress))
		}
	}
}

// check runs policy.Check and reports each problem at the range of the
// attribute it names, unless the decoder already reported a problem there.
func (pd *policyDecoder) check(p *sdnv1.Policy) {
	reported := pd.diags
	for _, pr := range policy.Check(p) {
		span, ok := pd.spans[pr.Field]
		if !ok {
			span = pd.exactRange(policy.RangeOf(p, pr.Field))
		}
		if overlapsAny(reported, span) {
			continue
		}
		pd.errorf(pd.exactRange(policy.RangeOf(p, pr.Field)), "Invalid policy", "%s: %s", pd.what, sentence(pr.Message))
	}
}

// exactRange is a range the decoder recorded, with its byte offsets.
func (pd *policyDecoder) exactRange(sr *sdnv1.SourceRange) hcl.Range {
	if r, ok := pd.exact[sr]; ok {
		return r
	}
	return HCLRange(sr)
}

// sentence ends msg with a full stop unless it ends with punctuation.
func sentence(msg string) string {
	if strings.HasSuffix(msg, ".") || strings.HasSuffix(msg, "?") {
		return msg
	}
	return msg + "."
}

// overlapsAny reports whether an error in diags points inside r.
func overlapsAny(diags hcl.Diagnostics, r hcl.Range) bool {
	for _, d := range diags {
		if d.Severity == hcl.DiagError && d.Subject != nil && d.Subject.Filename == r.Filename &&
			!posBefore(d.Subject.Start, r.Start) && !posBefore(r.End, d.Subject.End) {
			return true
		}
	}
	return false
}

func posBefore(a, b hcl.Pos) bool {
	return a.Line < b.Line || (a.Line == b.Line && a.Column < b.Column)
}

// fullRange is a block's whole extent, header to closing brace.
func fullRange(b *hcl.Block) hcl.Range {
	if body, ok := b.Body.(*hclsyntax.Body); ok {
		return hcl.RangeBetween(b.DefRange, body.SrcRange)
	}
	return b.DefRange
}

// only returns the first block of type typ, reporting any further ones.
func (pd *policyDecoder) only(blocks hcl.Blocks, typ string) *hcl.Block {
	var first *hcl.Block
	for _, hb := range blocks {
		if hb.Type != typ {
			continue
		}
		if first != nil {
			pd.errorf(hb.DefRange, "Duplicate block",
				"A %s block is already declared in this block at %s; write one, with every requirement in it (they all must hold).", typ, first.DefRange)
			continue
		}
		first = hb
	}
	return first
}
