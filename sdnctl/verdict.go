package main

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func (a *app) verdictCommand() *cobra.Command {
	var from, to, port, output string
	cmd := &cobra.Command{
		Use:   "verdict --from NETWORK/NAME|IP --to NETWORK/NAME|IP|service:NETWORK/NAME --port tcp/80|udp/53|icmp [-o table|json]",
		Short: "Say whether the policies allow a packet, and which policy, rule or baseline decided",
		Long: "verdict decides the first packet of a connection from the servers' state alone (docs/policy.md):\n" +
			"the source's egress and the destination's ingress, each with what decided it in words. An end\n" +
			"is a workload (NETWORK/NAME) or an address: a workload's, a host's gateway, or one outside.\n" +
			"The destination may be a service (service:NETWORK/NAME, or its VIP), --port its port: the\n" +
			"verdict is then each endpoint's on the port it serves (the host balances connections over\n" +
			"them), ALLOWED when every endpoint allows it, PARTIAL when some do, REFUSED when no\n" +
			"endpoint serves the port (the host answers a TCP reset or ICMP port unreachable).\n" +
			"It exits 0 whenever the servers answered, allowed or denied; scripts read -o json or the first word.",
		Args: cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			req, err := verdictRequest(from, to, port)
			if err != nil {
				return err
			}
			if err := checkFormat(output); err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := a.callContext(cmd.Context())
			defer cancel()
			resp, err := c.policy.Verdict(ctx, req)
			if err != nil {
				return a.rpcError(ctx, err)
			}
			if output == formatJSON {
				b, err := marshalJSON(resp)
				if err != nil {
					return fmt.Errorf("render the verdict as JSON: %w", err)
				}
				_, err = a.stdout.Write(b)
				return err
			}
			if resp.Service != nil {
				return writeServiceVerdict(a.stdout, from, resp)
			}
			return writeVerdict(a.stdout, from, to, resp)
		}),
	}
	cmd.Flags().StringVar(&from, "from", "", "the source: a workload as NETWORK/NAME, or an IPv4 address")
	cmd.Flags().StringVar(&to, "to", "", "the destination: a workload as NETWORK/NAME, an IPv4 address (a service's VIP too), or a service as service:NETWORK/NAME")
	cmd.Flags().StringVar(&port, "port", "", "the protocol and destination port: tcp/80, udp/53 or icmp")
	cmd.Flags().StringVarP(&output, "output", "o", formatTable, "output format: table or json")
	return cmd
}

// verdictRequest reads the command line's ends and port.
func verdictRequest(from, to, port string) (*sdnv1.VerdictRequest, error) {
	req := &sdnv1.VerdictRequest{}
	var err error
	if req.From, err = endpoint("--from", from); err != nil {
		return nil, err
	}
	if req.To, err = endpoint("--to", to); err != nil {
		return nil, err
	}
	if req.Protocol, req.Port, err = parsePort(port); err != nil {
		return nil, err
	}
	return req, nil
}

// servicePrefix marks a destination that is a service: workload and
// network names hold no ':', so service:NETWORK/NAME is never a workload.
const servicePrefix = "service:"

func endpoint(flag, s string) (*sdnv1.Endpoint, error) {
	if key, ok := strings.CutPrefix(s, servicePrefix); ok {
		if n, w, ok := strings.Cut(key, "/"); flag != "--to" || !ok || n == "" || w == "" {
			return nil, usagef("%s %q: a service is a destination only, written --to service:NETWORK/NAME, e.g. --to service:proj1/web", flag, s)
		}
		return &sdnv1.Endpoint{Service: key}, nil
	}
	switch {
	case s == "":
		return nil, usagef("%s is required: a workload as NETWORK/NAME (e.g. proj1/web1) or an IPv4 address", flag)
	case strings.Contains(s, "/"):
		return &sdnv1.Endpoint{Workload: s}, nil
	}
	if a, err := netip.ParseAddr(s); err != nil || !a.Is4() {
		return nil, usagef("%s %q is neither a workload (NETWORK/NAME, e.g. proj1/web1) nor an IPv4 address", flag, s)
	}
	return &sdnv1.Endpoint{Ip: s}, nil
}

// parsePort reads tcp/80, udp/53 or icmp.
func parsePort(s string) (string, uint32, error) {
	if s == "icmp" {
		return "icmp", 0, nil
	}
	proto, num, ok := strings.Cut(s, "/")
	n, err := strconv.ParseUint(num, 10, 16)
	if s == "" || !ok || (proto != "tcp" && proto != "udp") || err != nil || n == 0 {
		return "", 0, usagef("--port %q: write tcp/PORT, udp/PORT (1-65535) or icmp, e.g. --port tcp/80", s)
	}
	return proto, uint32(n), nil
}

// writeVerdict prints the verdict and, per direction, what decided it:
//
//	DENIED  proj1/client2 (10.128.0.5 on host1) -> proj1/server1 (10.128.2.7 on host2) tcp/80
//	  egress  at proj1/client2: allowed (baseline): no policy decides egress from ...
//	  ingress at proj1/server1: denied by policy proj1/allow-client1 (isolation): ...
func writeVerdict(w io.Writer, from, to string, r *sdnv1.VerdictResponse) error {
	word := "DENIED "
	if r.Allowed {
		word = "ALLOWED"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", word, r.Summary)
	fmt.Fprintf(&b, "  egress  at %s: %s\n", from, decisionWords(r.Egress))
	fmt.Fprintf(&b, "  ingress at %s: %s\n", to, decisionWords(r.Ingress))
	_, err := io.WriteString(w, b.String())
	return err
}

// decisionWords says who decided one direction, and why.
func decisionWords(d *sdnv1.Decision) string {
	verb := "denied"
	if d.GetAllowed() {
		verb = "allowed"
	}
	var who string
	switch d.GetBy() {
	case "policy":
		who = fmt.Sprintf(" by policy %s rule %s", d.Policy, d.Rule)
	case "cluster-policy":
		who = fmt.Sprintf(" by cluster-wide policy %s rule %s", d.Policy, d.Rule)
	case "isolation":
		who = fmt.Sprintf(" by policy %s (isolation)", d.Policy)
	case "baseline":
		who = " (baseline)"
	case "host":
		who = " (own host)"
	case "none":
		who = " (not a workload)"
	default:
		who = fmt.Sprintf(" (%s)", d.GetBy())
	}
	passed := ""
	if len(d.GetPassed()) > 0 {
		passed = " [passed down by cluster-wide " + strings.Join(d.Passed, ", ") + "]"
	}
	return verb + who + passed + ": " + d.GetReason()
}

// writeServiceVerdict prints the verdict to a service: the whole, then
// each endpoint's, or why the host refuses the connection:
//
//	PARTIAL proj1/a (10.128.0.4 on host1) -> service proj1/web (172.30.0.1) tcp/80
//	  service proj1/web: 1 of 2 endpoints serving tcp/80 allow it: ...
//	  endpoint proj1/w1 (10.128.4.3:8080 on host2): ALLOWED
//	    egress  at proj1/a: allowed (baseline): ...
//	    ingress at proj1/w1: allowed (baseline): ...
func writeServiceVerdict(w io.Writer, from string, r *sdnv1.VerdictResponse) error {
	sv := r.Service
	var b strings.Builder
	fmt.Fprintf(&b, "%-7s %s\n", serviceWord(sv), r.Summary)
	if sv.Service != "" && !strings.Contains(sv.Reason, sv.Service) {
		fmt.Fprintf(&b, "  service %s: %s\n", sv.Service, sv.Reason)
	} else {
		fmt.Fprintf(&b, "  %s\n", sv.Reason)
	}
	if r.Egress != nil {
		fmt.Fprintf(&b, "  egress  at %s: %s\n", from, decisionWords(r.Egress))
	}
	for _, ev := range sv.Endpoints {
		word := "DENIED"
		if ev.Verdict.GetAllowed() {
			word = "ALLOWED"
		}
		fmt.Fprintf(&b, "  endpoint %s (%s:%d on %s): %s\n", ev.Workload, ev.Ip, ev.Port, ev.Node, word)
		fmt.Fprintf(&b, "    egress  at %s: %s\n", from, decisionWords(ev.Verdict.GetEgress()))
		fmt.Fprintf(&b, "    ingress at %s: %s\n", ev.Workload, decisionWords(ev.Verdict.GetIngress()))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// serviceWord is a service verdict's first word: ALLOWED (every
// endpoint), PARTIAL (some), DENIED (none) or REFUSED (no endpoint: the
// host refuses the connection).
func serviceWord(sv *sdnv1.ServiceVerdict) string {
	switch sv.Outcome {
	case "all":
		return "ALLOWED"
	case "some":
		return "PARTIAL"
	case "refused":
		return "REFUSED"
	}
	return "DENIED"
}
