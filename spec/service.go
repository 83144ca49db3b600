package spec

import (
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Session affinity timeouts, as Kubernetes': 3 hours unless given, at most
// a day.
const (
	DefaultAffinityTimeout = 3 * time.Hour
	MaxAffinityTimeout     = 24 * time.Hour
)

var (
	serviceSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "network"}, {Name: "vip"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "selector"}, {Type: "port"}, {Type: "session_affinity"}},
	}
	servicePortSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "name"}, {Name: "port"}, {Name: "target_port"}, {Name: "protocol"}, {Name: "node_port"},
		},
	}
	affinitySchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "timeout"}}}
)

// decodeService decodes a service "NAME" block:
//
//	service "web" {
//	  network  = "proj1"                             # required
//	  selector { match_labels = { app = "web" } }    # optional; absent: every workload of the network
//	  vip      = "172.30.0.10"                       # optional; allocated from service_cidr when absent
//	  port {                                         # one or more
//	    name        = "http"                         # optional, an IANA service name (as named ports)
//	    port        = 80                             # required
//	    target_port = 8080                           # or "http", the workloads' named port; absent: port
//	    protocol    = "tcp"                          # or "udp"; default tcp
//	    node_port   = 30080                          # optional, in the cluster's node_port_range
//	  }
//	  session_affinity { timeout = "3h" }            # optional: keep a client (by address) on one endpoint
//	}
//
// The selector block is a policy's selector (match_labels and
// match_expression blocks). target_port given as a number sets
// ServicePort.target_port; as a string, target_port_name. An empty
// session_affinity block means the default timeout, 3h.
//
// Ranges keys: "" (the block header), "name" (its label), "network",
// "vip", "selector" (and "selector.match_labels",
// "selector.match_expression[J]", ".key" and so on), "port[I]" (the Ith
// port block's header, from 0), "port[I].name", "port[I].port",
// "port[I].target_port", "port[I].protocol", "port[I].node_port",
// "session_affinity" and "session_affinity.timeout".
//
// The checks that need the other blocks (the cluster's service_cidr and
// node_port_range, duplicates) run in checkServices.
func decodeService(filename string, b *hcl.Block) (*sdnv1.Service, hcl.Diagnostics) {
	name := b.Labels[0]
	pd := &policyDecoder{block: &block{what: "service " + model.Quote(name), ranges: map[string]*sdnv1.SourceRange{},
		exact: map[*sdnv1.SourceRange]hcl.Range{}}, spans: map[string]hcl.Range{"": fullRange(b)}}
	pd.record("", b.DefRange)
	pd.record("name", b.LabelRanges[0])
	content, diags := b.Body.Content(serviceSchema)
	pd.diags = append(pd.diags, diags...)
	attrs := pd.present(content)

	s := &sdnv1.Service{
		Name:   name,
		Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_HCL, File: filename},
		Ranges: pd.ranges,
	}
	if err := model.ValidateName(name); err != nil {
		pd.errorf(b.LabelRanges[0], "Invalid service name",
			"Service name %s is not a DNS label: %v. Names are 1-63 lowercase letters, digits and '-', start with a letter and end with a letter or digit, e.g. \"web\".",
			model.Quote(name), err)
	}
	pd.serviceHeader(attrs, b.DefRange, s)
	s.Selector = pd.selector(content.Blocks, "selector", s.Ranges, "")
	for _, hb := range content.Blocks {
		if hb.Type == "port" {
			s.Ports = append(s.Ports, pd.servicePort(hb, s.Ranges, len(s.Ports)))
		}
	}
	s.SessionAffinity = pd.affinity(content.Blocks, s.Ranges)
	return s, pd.diags
}

// serviceHeader decodes the service's network (required) and vip.
func (pd *policyDecoder) serviceHeader(attrs hcl.Attributes, def hcl.Range, s *sdnv1.Service) {
	pd.required(attrs, def, map[string]string{
		"network": `the network whose workloads it balances over, e.g. network = "proj1"`,
	})
	if n, attr, ok := pd.str(attrs, "network"); ok {
		if err := model.ValidateName(n); err != nil {
			pd.errorf(attr.Expr.Range(), "Invalid network name",
				"network %s in %s is not a DNS label: %v.", model.Quote(n), pd.what, err)
		} else {
			s.Network = n
		}
	}
	if v, attr, ok := pd.str(attrs, "vip"); ok {
		if a, err := model.ParseIPv4("vip", v); err != nil {
			pd.errorf(attr.Expr.Range(), model.ProblemSummary(err, "Invalid VIP"), "%s", err)
		} else {
			s.Vip = a.String()
		}
	}
}

// servicePort decodes a port block, port i of the service. protocol
// defaults to tcp.
func (pd *policyDecoder) servicePort(hb *hcl.Block, ranges map[string]*sdnv1.SourceRange, i int) *sdnv1.ServicePort {
	at := fmt.Sprintf("port[%d]", i)
	c, _, attrs := pd.sub(fmt.Sprintf("port block %d of %s", i+1, pd.what), hb, servicePortSchema, ranges, at, at)
	c.required(attrs, hb.DefRange, map[string]string{"port": "the port clients connect to on the VIP, e.g. port = 80"})
	sp := &sdnv1.ServicePort{Protocol: "tcp"}
	if s, attr, ok := c.str(attrs, "name"); ok {
		if err := policy.CheckPortName(s); err != nil {
			c.errorf(attr.Expr.Range(), "Invalid port name", "name in %s: %v.", c.what, err)
		} else {
			sp.Name = s
		}
	}
	if s, attr, ok := c.str(attrs, "protocol"); ok {
		sp.Protocol = s
		if s != "tcp" && s != "udp" {
			c.errorf(attr.Expr.Range(), "Invalid protocol", "protocol %s in %s is not \"tcp\" or \"udp\" (spelled so).%s",
				model.Quote(s), c.what, suggest(s, []string{"tcp", "udp"}))
		}
	}
	const portRange = "a port is 1 to 65535"
	if n, _, ok := c.integer(attrs, "port", 1, 65535, portRange); ok {
		sp.Port = uint32(n)
	}
	if n, _, ok := c.integer(attrs, "node_port", 1, 65535, portRange+", and a node port must be in the cluster's node_port_range (default 30000-32767)"); ok {
		sp.NodePort = uint32(n)
	}
	c.targetPort(attrs, sp)
	pd.diags = append(pd.diags, c.diags...)
	return sp
}

// targetPort decodes target_port: a number (target_port) or the name of
// the workloads' named port (target_port_name).
func (b *block) targetPort(attrs hcl.Attributes, sp *sdnv1.ServicePort) {
	attr := attrs["target_port"]
	if attr == nil {
		return
	}
	v, ok := b.value(attr)
	if !ok {
		return
	}
	switch v.Type() {
	case cty.Number:
		if n, _, ok := b.integer(attrs, "target_port", 1, 65535, "a port is 1 to 65535"); ok {
			sp.TargetPort = uint32(n)
		}
	case cty.String:
		s := v.AsString()
		if _, err := strconv.ParseUint(s, 10, 32); err == nil {
			b.errorf(attr.Expr.Range(), "Incorrect attribute value type",
				"target_port %s in %s is a port number in quotes; write it without quotes (target_port = %s), or give the name of the workloads' named port.",
				model.Quote(s), b.what, s)
			return
		}
		if err := policy.CheckPortName(s); err != nil {
			b.errorf(attr.Expr.Range(), "Invalid port name", "target_port in %s names no possible named port: %v.", b.what, err)
			return
		}
		sp.TargetPortName = s
	default:
		b.errorf(attr.Expr.Range(), "Incorrect attribute value type",
			"Attribute \"target_port\" in %s must be a port number (target_port = 8080) or the name of the workloads' named port (target_port = \"http\"), not %s.",
			b.what, friendly(v.Type()))
	}
}

// affinity decodes the session_affinity block, at most one: nil when
// absent, the default timeout when it gives none.
func (pd *policyDecoder) affinity(blocks hcl.Blocks, ranges map[string]*sdnv1.SourceRange) *sdnv1.SessionAffinity {
	hb := pd.only(blocks, "session_affinity")
	if hb == nil {
		return nil
	}
	c, _, attrs := pd.sub("the session_affinity of "+pd.what, hb, affinitySchema, ranges, "session_affinity", "session_affinity")
	sa := &sdnv1.SessionAffinity{TimeoutSeconds: uint32(DefaultAffinityTimeout / time.Second)}
	if attr := attrs["timeout"]; attr != nil {
		if v, ok := c.value(attr); ok {
			if secs, msg := parseAffinityTimeout(v); msg != "" {
				c.errorf(attr.Expr.Range(), "Invalid timeout", "timeout in %s: %s.", c.what, msg)
			} else {
				sa.TimeoutSeconds = secs
			}
		}
	}
	pd.diags = append(pd.diags, c.diags...)
	return sa
}

// parseAffinityTimeout reads a duration string of whole seconds, 1s to
// MaxAffinityTimeout; msg says what is wrong.
func parseAffinityTimeout(v cty.Value) (secs uint32, msg string) {
	const want = `want a duration of whole seconds from 1s to 24h in quotes, like "3h" (the default) or "30m"`
	if v.Type() != cty.String {
		return 0, want + ", not " + friendly(v.Type())
	}
	d, err := time.ParseDuration(v.AsString())
	if err != nil || d < time.Second || d > MaxAffinityTimeout || d%time.Second != 0 {
		return 0, model.Quote(v.AsString()) + ": " + want
	}
	return uint32(d / time.Second), ""
}
