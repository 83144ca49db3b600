package spec

import (
	"github.com/hashicorp/hcl/v2"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

var workloadSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "network"},
		{Name: "node"},
		{Name: "ip"},
		{Name: "mac"},
		{Name: "labels"},
		{Name: "named_ports"},
	},
}

// decodeWorkload decodes a workload "NAME" block: a static endpoint such as a
// bare-metal host or a VM attached by hand.
func decodeWorkload(filename string, b *hcl.Block) (*sdnv1.Workload, hcl.Diagnostics) {
	name := b.Labels[0]
	bl := newBlock("workload "+model.Quote(name), b)
	content, diags := b.Body.Content(workloadSchema)
	bl.diags = append(bl.diags, diags...)
	attrs := bl.present(content)

	w := &sdnv1.Workload{
		Name:   name,
		Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_HCL, File: filename},
		Ranges: bl.ranges,
	}
	if err := model.ValidateName(name); err != nil {
		bl.errorf(b.LabelRanges[0], "Invalid workload name",
			"Workload name %s is not a DNS label: %v. Names are 1-63 lowercase letters, digits and '-', start with a letter and end with a letter or digit, e.g. \"db1\".",
			model.Quote(name), err)
	}
	bl.required(attrs, b.DefRange, map[string]string{
		"network": `the network it joins, e.g. network = "proj1"`,
		"node":    `the host it runs on, e.g. node = "host1"`,
	})

	if s, attr, ok := bl.str(attrs, "network"); ok {
		if err := model.ValidateName(s); err != nil {
			bl.errorf(attr.Expr.Range(), "Invalid network name",
				"network %s in %s is not a DNS label: %v.", model.Quote(s), bl.what, err)
		} else {
			w.Network = s
		}
	}
	if s, attr, ok := bl.str(attrs, "node"); ok {
		if err := model.ValidateNodeName(s); err != nil {
			bl.errorf(attr.Expr.Range(), "Invalid node name",
				"node %s in %s is not a host name (a DNS subdomain): %v.", model.Quote(s), bl.what, err)
		} else {
			w.Node = s
		}
	}
	if s, attr, ok := bl.str(attrs, "ip"); ok {
		if a, err := model.ParseIPv4("ip", s); err != nil {
			bl.errorf(attr.Expr.Range(), model.ProblemSummary(err, "Invalid IP address"), "%s", err)
		} else {
			w.Ip = a.String()
		}
	}
	if s, attr, ok := bl.str(attrs, "mac"); ok {
		if m, err := model.ParseMAC("mac", s); err != nil {
			bl.errorf(attr.Expr.Range(), model.ProblemSummary(err, "Invalid MAC address"), "%s", err)
		} else {
			w.Mac = m
		}
	}
	if labels, ok := bl.labels(attrs); ok {
		w.Labels = labels
	}
	w.NamedPorts = bl.namedPorts(attrs)
	return w, bl.diags
}
