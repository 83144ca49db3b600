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

// traceCommand is `sdnctl trace`: the question `sdnctl verdict` answers
// from the model, asked of the real datapath of the hosts the packet
// crosses (PolicyService.Trace). (trace.go is about something else: the
// diagnosis of failed gRPC calls.)
func (a *app) traceCommand() *cobra.Command {
	var from, to, port, output string
	var raw bool
	cmd := &cobra.Command{
		Use:   "trace --from NETWORK/NAME --to NETWORK/NAME|IP|service:NETWORK/NAME --port tcp/80|udp/53|icmp [-o table|json] [--raw]",
		Short: "Trace a packet through the real datapaths, step by step, and compare with the model",
		Long: "trace asks the hosts' datapaths (ofproto/trace on the source workload's host and,\n" +
			"when the packet goes over the tunnel, on the destination's) what they do with the\n" +
			"first packet of a connection, and prints every step in our words: stages, policies\n" +
			"and rules by name. It ends with the verdict and its reason, and says so loudly\n" +
			"when the datapath and the model (`sdnctl verdict`) disagree. A host that cannot be\n" +
			"asked makes the outcome unknown. --raw adds each host's ofproto/trace output.\n" +
			"To a service (service:NETWORK/NAME, or its VIP): the source host's trace says which\n" +
			"endpoint its hash chose, and the trace goes on to that endpoint as for a packet sent to\n" +
			"it, compared with the model's verdict for that endpoint; with no endpoint, the host\n" +
			"refuses the connection.",
		Args: cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			req, err := traceRequest(from, to, port)
			if err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := a.callContext(cmd.Context())
			defer cancel()
			resp, err := sdnv1.NewPolicyServiceClient(c.conn).Trace(ctx, req)
			if err != nil {
				return a.rpcError(ctx, err)
			}
			if output == formatJSON {
				b, err := marshalJSON(resp)
				if err != nil {
					return fmt.Errorf("render the trace as JSON: %w", err)
				}
				_, err = a.stdout.Write(b)
				return err
			}
			writeTrace(a.stdout, resp, raw)
			return nil
		}),
	}
	cmd.Flags().StringVar(&from, "from", "", "the workload the packet starts at, NETWORK/NAME")
	cmd.Flags().StringVar(&to, "to", "", "where it goes: a workload, NETWORK/NAME, an IPv4 address (a VIP too), or service:NETWORK/NAME")
	cmd.Flags().StringVar(&port, "port", "", "protocol and destination port: tcp/80, udp/53 or icmp")
	cmd.Flags().StringVarP(&output, "output", "o", formatTable, "output format: table or json")
	cmd.Flags().BoolVar(&raw, "raw", false, "also print each host's raw ofproto/trace output, for experts")
	return cmd
}

// traceRequest checks the flags and makes the request.
func traceRequest(from, to, port string) (*sdnv1.VerdictRequest, error) {
	if n, w, ok := strings.Cut(from, "/"); !ok || n == "" || w == "" {
		return nil, usagef("--from %q: want the source workload as NETWORK/NAME, e.g. --from proj1/client1", from)
	}
	req := &sdnv1.VerdictRequest{From: &sdnv1.Endpoint{Workload: from}, To: &sdnv1.Endpoint{}}
	switch n, w, ok := strings.Cut(to, "/"); {
	case strings.HasPrefix(to, servicePrefix):
		e, err := endpoint("--to", to)
		if err != nil {
			return nil, err
		}
		req.To = e
	case ok && n != "" && w != "":
		req.To.Workload = to
	case !ok && to != "":
		ip, err := netip.ParseAddr(to)
		if err != nil || !ip.Is4() {
			return nil, usagef("--to %q: want NETWORK/NAME or an IPv4 address", to)
		}
		req.To.Ip = ip.String()
	default:
		return nil, usagef("--to %q: want NETWORK/NAME, an IPv4 address or service:NETWORK/NAME, e.g. --to proj1/server1", to)
	}
	proto, num, hasPort := strings.Cut(port, "/")
	switch {
	case proto == "icmp" && !hasPort:
		req.Protocol = "icmp"
	case (proto == "tcp" || proto == "udp") && hasPort:
		p, err := strconv.ParseUint(num, 10, 16)
		if err != nil || p == 0 {
			return nil, usagef("--port %q: want a port 1-65535 after %s/", port, proto)
		}
		req.Protocol, req.Port = proto, uint32(p)
	default:
		return nil, usagef("--port %q: want tcp/PORT, udp/PORT or icmp, e.g. --port tcp/80", port)
	}
	return req, nil
}

// writeTrace prints each host's steps, then the verdict: the datapath's
// outcome, and the model's agreement or, loudly, the disagreement.
func writeTrace(w io.Writer, resp *sdnv1.TraceResponse, raw bool) {
	tw := newTable(w)
	for _, h := range resp.Hosts {
		for _, s := range h.Steps {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", h.Node, s.Stage, s.Text)
		}
		if h.Error != "" {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", h.Node, "(unknown)", h.Error)
		}
	}
	tw.Flush()
	if raw {
		for _, h := range resp.Hosts {
			if h.Raw != "" {
				fmt.Fprintf(w, "\n%s: ofproto/trace\n%s\n", h.Node, traceIndent(strings.TrimRight(h.Raw, "\n"), "    "))
			}
		}
	}
	if resp.Service != "" || resp.GetModel().GetService() != nil {
		fmt.Fprintln(w, serviceHop(resp))
	}
	fmt.Fprintln(w, traceVerdict(resp))
}

// serviceHop says which endpoint of the service the source host chose.
func serviceHop(resp *sdnv1.TraceResponse) string {
	svc := "service " + resp.Service
	if resp.Service == "" {
		svc = "the service CIDR (no service has this address)"
	}
	src := resp.Hosts[0].Node
	switch {
	case resp.Endpoint != "":
		return fmt.Sprintf("%s: %s chose endpoint %s (%s:%d); traced on as a packet sent to it", svc, src, resp.Endpoint, resp.EndpointIp, resp.EndpointPort)
	case resp.EndpointIp != "":
		return fmt.Sprintf("%s: %s chose %s:%d, no endpoint the model knows", svc, src, resp.EndpointIp, resp.EndpointPort)
	}
	return fmt.Sprintf("%s: %s chose no endpoint", svc, src)
}

// traceVerdict is the closing line(s).
func traceVerdict(resp *sdnv1.TraceResponse) string {
	m := resp.GetModel()
	model := fmt.Sprintf("%s: %s", allowWord(m.GetAllowed()), modelWords(m))
	if sv := m.GetService(); sv != nil && resp.Endpoint == "" {
		model = fmt.Sprintf("%s: %s", serviceWord(sv), sv.Reason)
	}
	if unknown := unknownHosts(resp); unknown != "" {
		return fmt.Sprintf("UNKNOWN: the datapath's outcome is unknown (%s could not be asked); the model says %s", unknown, model)
	}
	last := resp.Hosts[len(resp.Hosts)-1]
	dp := fmt.Sprintf("%s by the datapath (%s)", allowWord(resp.Allowed), last.Node)
	switch {
	case last.Outcome == "refused":
		dp = fmt.Sprintf("REFUSED by host %s (it answers the client: the connection is refused)", last.Node)
	case !resp.Allowed:
		if s := lastTraceStep(last); s != nil {
			dp = fmt.Sprintf("%s by the datapath (%s, %s)", allowWord(false), last.Node, s.Stage)
		}
	}
	if resp.Disagreement != "" {
		return fmt.Sprintf("%s\n!!! DISAGREEMENT: %s\n!!! the model says %s\n!!! This is a bug: please report it with `sdnctl trace ... -o json --raw`.", dp, resp.Disagreement, model)
	}
	if sv := m.GetService(); sv != nil && resp.Endpoint == "" {
		return fmt.Sprintf("%s — the model agrees: %s", dp, sv.Reason)
	}
	return fmt.Sprintf("%s — the model agrees: %s", dp, modelWords(m))
}

func allowWord(allowed bool) string {
	if allowed {
		return "ALLOWED"
	}
	return "DENIED"
}

// modelWords is the model's reason: the denying decision's, or both
// directions' for an allowed packet.
func modelWords(m *sdnv1.VerdictResponse) string {
	var parts []string
	for _, d := range []*sdnv1.Decision{m.GetEgress(), m.GetIngress()} {
		if d == nil || d.Reason == "" {
			continue
		}
		if !d.Allowed {
			return d.Reason
		}
		if d.By != "none" {
			parts = append(parts, d.Reason)
		}
	}
	if len(parts) == 0 {
		return "no policy decides it"
	}
	return strings.Join(parts, "; ")
}

// unknownHosts names the hosts that could not be asked, "" when all were.
func unknownHosts(resp *sdnv1.TraceResponse) string {
	var names []string
	for _, h := range resp.Hosts {
		if h.Error != "" || h.Outcome == "unknown" {
			names = append(names, h.Node)
		}
	}
	if len(resp.Hosts) == 0 {
		return "no host"
	}
	return strings.Join(names, ", ")
}

func lastTraceStep(h *sdnv1.HostTrace) *sdnv1.TraceStep {
	if len(h.Steps) == 0 {
		return nil
	}
	return h.Steps[len(h.Steps)-1]
}

func traceIndent(s, pre string) string {
	return pre + strings.ReplaceAll(s, "\n", "\n"+pre)
}
