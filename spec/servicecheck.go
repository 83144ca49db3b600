package spec

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// addService keeps a decoded service and its decoding problems.
func (all *decoded) addService(s *sdnv1.Service, diags hcl.Diagnostics) {
	if all.serviceDiags == nil {
		all.serviceDiags = map[*sdnv1.Service]hcl.Diagnostics{}
	}
	all.services = append(all.services, s)
	all.serviceDiags[s] = diags
}

// serviceChecker runs the checks on services that need the other blocks of
// the files: the cluster's service_cidr and node_port_range (the defaults
// when the files have no cluster block; the servers check again against
// the cluster's own), a service declared twice, and a VIP or a node port
// two services claim. Unknown networks are the servers' check: a network
// may be declared on the server only.
type serviceChecker struct {
	all   *decoded
	doc   *Document
	at    func(map[string]*sdnv1.SourceRange, string) hcl.Range
	diags hcl.Diagnostics

	cidr             netip.Prefix // invalid: the cluster block's is broken, not checked
	cidrFrom         string       // where cidr was set, for messages
	nodeMin, nodeMax uint32
	rangeFrom        string
}

// checkServices keeps the first service of each key ("network/name") in
// doc and reports the later ones, and checks each service's ports and VIP
// against the cluster settings and the other services.
func (all *decoded) checkServices(doc *Document, at func(map[string]*sdnv1.SourceRange, string) hcl.Range) hcl.Diagnostics {
	c := &serviceChecker{all: all, doc: doc, at: at}
	c.settings()
	services := map[string]*sdnv1.Service{}
	type portOf struct {
		s *sdnv1.Service
		i int
	}
	vips, nodePorts := map[string]*sdnv1.Service{}, map[uint32]portOf{}
	for _, s := range all.services {
		key := model.ServiceKey(s)
		if first := services[key]; first != nil && s.Network != "" {
			c.errorf(s, "name", "Duplicate service",
				"A service named %s on network %s is already declared at %s; service names are unique within a network, so rename or remove one.",
				model.Quote(s.Name), model.Quote(s.Network), at(first.Ranges, "name"))
			continue
		}
		services[key] = s
		doc.Services = append(doc.Services, s)
		c.ports(s)
		c.vip(s)
		if first := vips[s.Vip]; first != nil && s.Vip != "" {
			c.errorf(s, "vip", "Duplicate VIP",
				"vip %s of %s is already that of %s (%s); each service needs its own address, or omit vip to have one allocated.",
				s.Vip, all.what(s), all.what(first), at(first.Ranges, "vip"))
		} else if s.Vip != "" {
			vips[s.Vip] = s
		}
		for i, p := range s.Ports {
			first, taken := nodePorts[p.NodePort]
			switch {
			case p.NodePort == 0 || (taken && first.s == s): // none, or the model's check within one service
			case taken:
				c.errorf(s, fmt.Sprintf("port[%d].node_port", i), "Duplicate node port",
					"node_port %d of %s is already that of %s (%s); a node port opens on every host, so each service needs its own.",
					p.NodePort, all.what(s), all.what(first.s), at(first.s.Ranges, fmt.Sprintf("port[%d].node_port", first.i)))
			default:
				nodePorts[p.NodePort] = portOf{s, i}
			}
		}
	}
	return c.diags
}

// settings reads the service_cidr and node-port range the services are
// checked against.
func (c *serviceChecker) settings() {
	cs := c.doc.Cluster
	c.nodeMin, c.nodeMax = model.NodePortRange(cs)
	c.rangeFrom = "the default; these files have no cluster block, and the servers check against the cluster's own"
	c.cidr = netip.MustParsePrefix(model.DefaultServiceCIDR)
	c.cidrFrom = c.rangeFrom
	if cs == nil {
		return
	}
	c.rangeFrom, c.cidrFrom = "the default", "the default"
	if r := cs.Ranges["node_port_range"]; r != nil {
		c.rangeFrom = "set at " + c.at(cs.Ranges, "node_port_range").String()
		if cs.NodePortMin == 0 { // refused in the cluster block: check nothing against it
			c.nodeMin, c.nodeMax = 1, 65535
		}
	}
	if r := cs.Ranges["service_cidr"]; r != nil {
		c.cidrFrom = "set at " + c.at(cs.Ranges, "service_cidr").String()
	}
	p, err := netip.ParsePrefix(cs.ServiceCidr)
	if err != nil || !p.Addr().Is4() || p.Masked() != p || p.Bits() > 30 {
		c.cidr = netip.Prefix{}
		return
	}
	c.cidr = p
}

// errorf reports a problem at the attribute key of s (its block when s
// has no range for key), unless decoding s already reported one there.
func (c *serviceChecker) errorf(s *sdnv1.Service, key, summary, format string, args ...any) {
	r := c.at(s.Ranges, key)
	if s.Ranges[key] == nil {
		if i := strings.IndexByte(key, '.'); i > 0 && s.Ranges[key[:i]] != nil {
			r = c.at(s.Ranges, key[:i]) // the port block
		}
	}
	if overlapsAny(c.all.serviceDiags[s], r) {
		return
	}
	c.diags = append(c.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary,
		Detail: fmt.Sprintf(format, args...), Subject: r.Ptr()})
}

// ports checks a service's ports with model.ValidateServicePorts, each
// problem reported at the attribute it names.
func (c *serviceChecker) ports(s *sdnv1.Service) {
	for _, err := range model.ValidateServicePorts(s.Ports, c.nodeMin, c.nodeMax) {
		key, msg := portProblemKey(err.Error())
		if strings.Contains(msg, "node-port range") {
			msg += " (" + c.rangeFrom + ")"
		}
		summary := "Invalid service port"
		if key == "" {
			summary = "Missing port"
			msg += `, e.g. port { port = 80 }`
		}
		c.errorf(s, key, summary, "%s: %s", c.all.what(s), sentence(msg))
	}
}

// portProblem matches the position model.ValidateServicePorts names a
// port's problems by ("port 2: ...").
var portProblem = regexp.MustCompile(`^port (\d+): (.*)$`)

// portProblemKey is the ranges key of the attribute a
// model.ValidateServicePorts message concerns ("port[1].node_port"), "" for
// the service as a whole; msg is the message without the position when
// the key carries it.
func portProblemKey(msg string) (key, rest string) {
	m := portProblem.FindStringSubmatch(msg)
	if m == nil {
		return "", msg
	}
	n, _ := strconv.Atoi(m[1])
	field := "port"
	switch rest = m[2]; {
	case strings.HasPrefix(rest, "protocol"):
		field = "protocol"
	case strings.HasPrefix(rest, "node_port"):
		field = "node_port"
	case strings.HasPrefix(rest, "target_port"), strings.HasPrefix(rest, "give target_port"):
		field = "target_port"
	case strings.HasPrefix(rest, "name "):
		field = "name"
	}
	return fmt.Sprintf("port[%d].%s", n-1, field), msg
}

// vip checks a requested VIP against the service_cidr.
func (c *serviceChecker) vip(s *sdnv1.Service) {
	if s.Vip == "" || !c.cidr.IsValid() {
		return
	}
	if err := model.ValidateVIP(s.Vip, c.cidr); err != nil {
		c.errorf(s, "vip", "Invalid VIP", "%s: %s (%s); choose another address in it, or omit vip to have one allocated.",
			c.all.what(s), err, c.cidrFrom)
	}
}

// what names a service in messages: service "web" on network "proj1".
func (all *decoded) what(s *sdnv1.Service) string {
	if s.Network == "" {
		return "service " + model.Quote(s.Name)
	}
	return fmt.Sprintf("service %s on network %s", model.Quote(s.Name), model.Quote(s.Network))
}
