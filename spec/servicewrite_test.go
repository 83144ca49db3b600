package spec

import (
	"bytes"
	"fmt"
	"net/netip"

	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// writeService renders a service for FuzzParse's round trip, every
// attribute spelled out (protocol and the affinity timeout too, so no
// default is relied on).
func writeService(b *bytes.Buffer, s *sdnv1.Service) {
	fmt.Fprintf(b, "service %s {\n", hclString(s.Name))
	fmt.Fprintf(b, "  network = %s\n", hclString(s.Network))
	if s.Vip != "" {
		fmt.Fprintf(b, "  vip = %s\n", hclString(s.Vip))
	}
	writeSelector(b, "  ", "selector", s.Selector)
	for _, p := range s.Ports {
		b.WriteString("  port {\n")
		if p.Name != "" {
			fmt.Fprintf(b, "    name = %s\n", hclString(p.Name))
		}
		fmt.Fprintf(b, "    port = %d\n    protocol = %s\n", p.Port, hclString(p.Protocol))
		switch {
		case p.TargetPort != 0:
			fmt.Fprintf(b, "    target_port = %d\n", p.TargetPort)
		case p.TargetPortName != "":
			fmt.Fprintf(b, "    target_port = %s\n", hclString(p.TargetPortName))
		}
		if p.NodePort != 0 {
			fmt.Fprintf(b, "    node_port = %d\n", p.NodePort)
		}
		b.WriteString("  }\n")
	}
	if sa := s.SessionAffinity; sa != nil {
		fmt.Fprintf(b, "  session_affinity {\n    timeout = \"%ds\"\n  }\n", sa.TimeoutSeconds)
	}
	b.WriteString("}\n")
}

// checkServiceRules applies the model's rules for services, and the
// cluster's service settings, to a request the decoder accepted.
func checkServiceRules(req *sdnv1.ApplyRequest) error {
	cs := req.Cluster
	if d := cs.GetDnsDomain(); d != "" {
		if err := model.ValidateNodeName(d); err != nil {
			return fmt.Errorf("dns_domain %q: %v", d, err)
		}
	}
	if lo, hi := cs.GetNodePortMin(), cs.GetNodePortMax(); (lo == 0) != (hi == 0) || lo > hi || hi > 65535 {
		return fmt.Errorf("node-port range %d-%d", lo, hi)
	}
	nodeMin, nodeMax := model.NodePortRange(cs)
	cidr := netip.MustParsePrefix(model.DefaultServiceCIDR)
	if cs != nil {
		cidr = netip.MustParsePrefix(cs.ServiceCidr)
	}
	for _, s := range req.Services {
		for _, err := range []error{model.ValidateName(s.Name), model.ValidateName(s.Network),
			policy.CheckSelector("selector", s.Selector), model.ValidateVIP(s.Vip, cidr)} {
			if err != nil {
				return fmt.Errorf("service %q: %v", s.Name, err)
			}
		}
		if errs := model.ValidateServicePorts(s.Ports, nodeMin, nodeMax); len(errs) > 0 {
			return fmt.Errorf("service %q: %v", s.Name, errs[0])
		}
		if sa := s.SessionAffinity; sa != nil && (sa.TimeoutSeconds == 0 || sa.TimeoutSeconds > 86400) {
			return fmt.Errorf("service %q: affinity timeout %ds", s.Name, sa.TimeoutSeconds)
		}
	}
	return nil
}
