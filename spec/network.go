package spec

import (
	"github.com/hashicorp/hcl/v2"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

var networkSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "admin"},
		{Name: "labels"},
		{Name: "snat"},
	},
}

// decodeNetwork decodes a network "NAME" block. It returns nil when the
// block is too broken to name a network.
func decodeNetwork(filename string, b *hcl.Block) (*sdnv1.Network, hcl.Diagnostics) {
	name := b.Labels[0]
	bl := newBlock("network "+model.Quote(name), b)
	content, diags := b.Body.Content(networkSchema)
	bl.diags = append(bl.diags, diags...)
	attrs := bl.present(content)

	n := &sdnv1.Network{
		Name:   name,
		Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_HCL, File: filename},
		Ranges: bl.ranges,
	}
	if err := model.ValidateName(name); err != nil {
		bl.errorf(b.LabelRanges[0], "Invalid network name",
			"Network name %s is not a DNS label: %v. Names are 1-63 lowercase letters, digits and '-', start with a letter and end with a letter or digit, e.g. \"proj1\".",
			model.Quote(name), err)
	}
	if admin, _, ok := bl.boolean(attrs, "admin"); ok {
		n.Admin = admin
	}
	if labels, ok := bl.labels(attrs); ok {
		n.Labels = labels
	}
	// snat = false keeps workloads' own addresses on traffic that leaves
	// the cluster; the default (true) gives it the host's underlay address.
	if snat, _, ok := bl.boolean(attrs, "snat"); ok {
		n.NoSnat = !snat
	}
	return n, bl.diags
}
