package spec

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// writePolicy renders a policy for FuzzParse's round trip, every
// attribute spelled out (priority and isolate too, so no default is
// relied on).
func writePolicy(b *bytes.Buffer, p *sdnv1.Policy) {
	fmt.Fprintf(b, "policy %s {\n", hclString(p.Name))
	if p.Network != "" {
		fmt.Fprintf(b, "  network = %s\n", hclString(p.Network))
	}
	fmt.Fprintf(b, "  priority = %d\n", p.Priority)
	if p.Isolate != nil || p.Network != "" {
		fmt.Fprintf(b, "  isolate = %s\n", hclList(p.Isolate))
	}
	writeSelector(b, "  ", "networks", p.Networks)
	writeSelector(b, "  ", "workloads", p.Workloads)
	for _, d := range []policy.Direction{policy.Ingress, policy.Egress} {
		rules, peer := p.Ingress, "from"
		if d == policy.Egress {
			rules, peer = p.Egress, "to"
		}
		for _, r := range rules {
			writeRule(b, string(d), peer, r)
		}
	}
	b.WriteString("}\n")
}

func writeRule(b *bytes.Buffer, dir, peerType string, r *sdnv1.PolicyRule) {
	fmt.Fprintf(b, "  %s {\n", dir)
	if r.Name != "" {
		fmt.Fprintf(b, "    name = %s\n", hclString(r.Name))
	}
	fmt.Fprintf(b, "    action = %q\n", strings.ToLower(strings.TrimPrefix(policy.ActionOf(r).String(), "POLICY_ACTION_")))
	for _, pp := range r.Peers {
		fmt.Fprintf(b, "    %s {\n", peerType)
		if pp.Cidr != "" {
			fmt.Fprintf(b, "      cidr = %s\n", hclString(pp.Cidr))
		}
		if pp.Except != nil {
			fmt.Fprintf(b, "      except = %s\n", hclList(pp.Except))
		}
		writeSelector(b, "      ", "workloads", pp.Workloads)
		writeSelector(b, "      ", "networks", pp.Networks)
		b.WriteString("    }\n")
	}
	for _, pt := range r.Ports {
		fmt.Fprintf(b, "    port {\n      protocol = %s\n", hclString(pt.Protocol))
		if pt.Port != 0 {
			fmt.Fprintf(b, "      port = %d\n", pt.Port)
		}
		if pt.EndPort != 0 {
			fmt.Fprintf(b, "      end_port = %d\n", pt.EndPort)
		}
		if pt.Name != "" {
			fmt.Fprintf(b, "      name = %s\n", hclString(pt.Name))
		}
		b.WriteString("    }\n")
	}
	b.WriteString("  }\n")
}

func writeSelector(b *bytes.Buffer, indent, typ string, s *sdnv1.LabelSelector) {
	if s == nil {
		return
	}
	fmt.Fprintf(b, "%s%s {\n", indent, typ)
	if s.MatchLabels != nil {
		fmt.Fprintf(b, "%s  match_labels = {\n", indent)
		for _, k := range slices.Sorted(maps.Keys(s.MatchLabels)) {
			fmt.Fprintf(b, "%s    %s = %s\n", indent, hclString(k), hclString(s.MatchLabels[k]))
		}
		fmt.Fprintf(b, "%s  }\n", indent)
	}
	for _, r := range s.MatchExpressions {
		fmt.Fprintf(b, "%s  match_expression {\n%s    key = %s\n%s    operator = %s\n", indent, indent, hclString(r.Key), indent, hclString(r.Operator))
		if r.Values != nil {
			fmt.Fprintf(b, "%s    values = %s\n", indent, hclList(r.Values))
		}
		fmt.Fprintf(b, "%s  }\n", indent)
	}
	fmt.Fprintf(b, "%s}\n", indent)
}

func writeNamedPorts(b *bytes.Buffer, ports []*sdnv1.NamedPort) {
	if ports == nil {
		return
	}
	b.WriteString("  named_ports = {\n")
	for _, np := range ports {
		fmt.Fprintf(b, "    %s = \"%s/%d\"\n", hclString(np.Name), np.Protocol, np.Port)
	}
	b.WriteString("  }\n")
}

func hclList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = hclString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
