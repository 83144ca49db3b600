package host

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/sdn-dev/sdn/datapath/flows"
	"github.com/sdn-dev/sdn/datapath/hostnet"
	"github.com/sdn-dev/sdn/datapath/ovs"
	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TracePacket is the first packet of a connection, as it enters this
// host's integration bridge: from a local workload (InWorkload, its
// "network/name"), or over the tunnel (InWorkload "", TunnelVNID the
// source's VNID).
type TracePacket struct {
	InWorkload string
	TunnelVNID uint32
	Src, Dst   netip.Addr
	Protocol   string // "tcp", "udp" or "icmp"
	Port       uint16 // destination port (tcp, udp)
}

// Outcomes of a host trace.
const (
	OutcomeAllowed   = "allowed"   // delivered to a local port
	OutcomeDenied    = "denied"    // dropped
	OutcomeForwarded = "forwarded" // sent on to another host over the tunnel
	OutcomeRefused   = "refused"   // to a VIP no endpoint serves: the host refuses it
)

// Trace asks OVS what this host does with p (`ovs-appctl ofproto/trace`,
// the conntrack recirculation resumed as a new connection) and says each
// step in our words: stage names, policies and rules, workloads and hosts.
func (d *Datapath) Trace(ctx context.Context, p TracePacket) (*sdnv1.HostTrace, error) {
	h, rules := d.last()
	if h == nil {
		return nil, fmt.Errorf("trace on node %q: the datapath has not realized a desired state yet; wait for the agent's first sync", d.cfg.NodeName)
	}
	flow, err := traceFlow(h, p)
	if err != nil {
		return nil, fmt.Errorf("trace on node %q: %w", d.cfg.NodeName, err)
	}
	raw, err := d.ovs.Appctl(ctx, "ovs-vswitchd", "ofproto/trace", IntegrationBridge, flow, "--ct-next", "trk,new")
	if err != nil {
		return nil, fmt.Errorf("trace on node %q: ofproto/trace %s: %w", d.cfg.NodeName, flow, err)
	}
	t := explainTrace(h, rules, raw)
	t.Node = d.cfg.NodeName
	noteService(h, p, t)
	return t, nil
}

// traceFlow renders p as ofproto/trace's flow.
func traceFlow(h *flows.Host, p TracePacket) (string, error) {
	if !p.Dst.Is4() {
		return "", errors.New("the packet needs an IPv4 destination")
	}
	var in string
	if p.InWorkload != "" {
		var w *flows.Workload
		for i := range h.Local {
			if h.Local[i].Name == p.InWorkload {
				w = &h.Local[i]
			}
		}
		if w == nil {
			return "", fmt.Errorf("workload %s has no port on this host; trace from the host it runs on", p.InWorkload)
		}
		src := p.Src
		if !src.IsValid() {
			src = w.IP
		}
		in = fmt.Sprintf("in_port=%d,dl_src=%s,dl_dst=%s,nw_src=%s", w.Port, w.MAC, h.GatewayMAC, src)
	} else {
		if !p.Src.Is4() {
			return "", errors.New("a packet from the tunnel needs an IPv4 source")
		}
		in = fmt.Sprintf("in_port=%d,tun_id=%#x,dl_src=%s,dl_dst=%s,nw_src=%s", h.TunnelPort, p.TunnelVNID, flows.RouterMAC, flows.RouterMAC, p.Src)
	}
	switch p.Protocol {
	case "tcp", "udp":
		// dp_hash: a service's select group picks by the datapath's hash of
		// the connection (selection_method=dp_hash), which ofproto/trace
		// cannot compute: it stops at the hash's recirculation ("no live
		// bucket"). Given a hash, it picks the bucket that hash picks. One
		// derived from the 5-tuple is as good as any: the trace shows one
		// connection's path, and another source port may take another
		// endpoint (docs/services.md, "Tools").
		return fmt.Sprintf("%s,%s,nw_dst=%s,nw_ttl=64,%s_src=40000,%s_dst=%d,dp_hash=%#x", p.Protocol, in, p.Dst, p.Protocol, p.Protocol, p.Port,
			traceHash(in, p)), nil
	case "icmp":
		return fmt.Sprintf("icmp,%s,nw_dst=%s,nw_ttl=64,icmp_type=8,icmp_code=0", in, p.Dst), nil
	}
	return "", fmt.Errorf("protocol %q: trace tcp, udp or icmp", p.Protocol)
}

// traceHash is the dp_hash a trace of p assumes: non-zero (0 means "not
// computed yet" to OVS), from the packet's addresses and ports.
func traceHash(in string, p TracePacket) uint32 {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s %s %s %d", in, p.Dst, p.Protocol, p.Port)
	return h.Sum32() | 1
}

// traceStep is one table's line of ofproto/trace output with its actions.
type traceStep struct {
	table    uint8
	match    string
	priority int
	cookie   uint64
	actions  []string
}

var (
	traceTable   = regexp.MustCompile(`^\s*(\d+)\. (?:(.*), )?priority (\d+)(?:, cookie (0x[0-9a-f]+))?\s*$`)
	traceNoMatch = regexp.MustCompile(`^\s*(\d+)\. No match`)
	traceTunDst  = regexp.MustCompile(`set_field:([0-9.]+)->tun_dst`)
	// The DNAT of the bucket the group chose (its actions follow "using
	// bucket N"), or of the learned affinity flow's service-lb flow.
	traceNATDst = regexp.MustCompile(`nat\(dst=([0-9.]+):(\d+)\)`)
)

// parseTrace returns the table steps of ofproto/trace output, in order
// (across the conntrack recirculation), and the last "Datapath actions".
func parseTrace(raw string) (steps []traceStep, dpActions string) {
	bridge := IntegrationBridge
	for _, line := range strings.Split(raw, "\n") {
		// Userspace tunneling traces the encapsulated packet through
		// br-phy too: only br-int's tables are ours.
		if b, ok := strings.CutPrefix(strings.TrimSpace(line), "bridge(\""); ok {
			bridge = strings.TrimSuffix(b, "\")")
			continue
		}
		if bridge != IntegrationBridge {
			if a, ok := strings.CutPrefix(line, "Datapath actions: "); ok {
				dpActions = strings.TrimSpace(a)
			}
			continue
		}
		if m := traceTable.FindStringSubmatch(line); m != nil {
			t, _ := strconv.Atoi(m[1])
			prio, _ := strconv.Atoi(m[3])
			cookie, _ := strconv.ParseUint(m[4], 0, 64)
			steps = append(steps, traceStep{table: uint8(t), match: m[2], priority: prio, cookie: cookie})
			continue
		}
		if m := traceNoMatch.FindStringSubmatch(line); m != nil {
			t, _ := strconv.Atoi(m[1])
			steps = append(steps, traceStep{table: uint8(t), priority: -1, actions: []string{"drop"}})
			continue
		}
		if a, ok := strings.CutPrefix(line, "Datapath actions: "); ok {
			dpActions = strings.TrimSpace(a)
			continue
		}
		if len(steps) > 0 && strings.HasPrefix(line, "    ") && !strings.HasPrefix(strings.TrimSpace(line), "->") {
			s := &steps[len(steps)-1]
			s.actions = append(s.actions, strings.TrimSpace(line))
		}
	}
	return steps, dpActions
}

func (s traceStep) drops() bool {
	return len(s.actions) == 1 && s.actions[0] == "drop"
}

// explainTrace turns ofproto/trace output into steps in our words.
func explainTrace(h *flows.Host, rules map[uint32]flows.RuleRef, raw string) *sdnv1.HostTrace {
	t := &sdnv1.HostTrace{Raw: raw}
	steps, dp := parseTrace(raw)
	forwardedTo := ""
	fromWorkload := len(steps) > 0 && workloadByPort(h, portIn(steps[0].match, "in_port=")) != nil
	for _, s := range steps {
		stage := flows.StageOf(s.table)
		if stage == flows.ARP || (!fromWorkload && stage == flows.EgressPolicy) {
			continue
		}
		ts := &sdnv1.TraceStep{Stage: string(stage)}
		ts.Text = describeStep(h, rules, s, stage, ts)
		if !fromWorkload && stage == flows.Egress && ts.Policy == "" && !s.drops() {
			// Egress rules guard local workloads only: what arrives over
			// the tunnel was judged on its source's host.
			ts.Text = "not from a workload of this host: egress rules were applied on the sender's host"
		}
		if stage == flows.Forward {
			for _, a := range s.actions {
				if m := traceTunDst.FindStringSubmatch(a); m != nil {
					forwardedTo = m[1]
				}
			}
		}
		if ip, port, ok := chosenEndpoint(s, stage); ok {
			t.EndpointIp, t.EndpointPort = ip.String(), uint32(port)
			ts.Text += "; chosen: " + endpointName(h, ip, port)
		}
		t.Steps = append(t.Steps, ts)
	}
	switch {
	case dp == "" || dp == "drop":
		t.Outcome = OutcomeDenied
	case forwardedTo != "":
		t.Outcome = OutcomeForwarded
	default:
		t.Outcome = OutcomeAllowed
	}
	if len(steps) == 0 {
		t.Error = "could not read ofproto/trace's output; see raw"
	}
	return t
}

// describeStep says what one table did.
func describeStep(h *flows.Host, rules map[uint32]flows.RuleRef, s traceStep, stage flows.Stage, ts *sdnv1.TraceStep) string {
	if s.priority < 0 {
		return "no flow matched: dropped"
	}
	if ref, ok := rules[ovs.CookieCategory(s.cookie)]; ok && s.cookie != 0 {
		ts.Policy, ts.Rule = ref.Policy, ref.Rule
		return describeRule(h, ref, s)
	}
	switch stage {
	case flows.Classify:
		return describeClassify(h, s)
	case flows.Conntrack:
		return fmt.Sprintf("tracked in conntrack (zone %d)", flows.ConntrackZone)
	case flows.Egress, flows.Ingress, flows.EgressPolicy, flows.IngressPolicy:
		return describeShortcut(s, stage)
	case flows.Services, flows.ServiceLB:
		return describeService(h, s)
	case flows.ServiceLearn:
		if s.priority > 0 {
			return "the endpoint chosen is learned for this client (session affinity)"
		}
		return "on to egress"
	case flows.ServiceAffinity:
		if s.cookie&ovs.TagMask == flows.AffinityCookie {
			return "the client's endpoint, as learned by its last connection (session affinity)"
		}
		return "no endpoint learned for this client yet"
	case flows.Forward:
		return describeForward(h, s)
	case flows.Isolate:
		if s.drops() {
			return "no policy decided, and the isolation mode's baseline keeps these networks apart: dropped"
		}
		return "no policy decided; the isolation mode's baseline allows it"
	case flows.Output:
		if strings.Contains(s.match, "+new") {
			return "new connection committed to conntrack; sent out"
		}
		return "sent out"
	}
	return strings.Join(s.actions, "; ")
}

func describeRule(h *flows.Host, ref flows.RuleRef, s traceStep) string {
	kind := "policy"
	if !strings.Contains(ref.Policy, "/") {
		kind = "cluster-wide policy"
	}
	if ref.Rule == flows.IsolationRule {
		subject := "the workload"
		field := "in_port="
		if ref.Direction == policy.Ingress {
			field = "reg2="
		}
		if w := workloadByPort(h, portIn(s.match, field)); w != nil {
			subject = w.Name
		}
		return fmt.Sprintf("%s isolates %s; no rule matched: dropped", ref.Policy, subject)
	}
	switch ref.Action {
	case "deny":
		return fmt.Sprintf("denied by %s %s rule %s", kind, ref.Policy, ref.Rule)
	case "pass":
		return fmt.Sprintf("passed by %s %s rule %s to the network's policies", kind, ref.Policy, ref.Rule)
	}
	return fmt.Sprintf("allowed by %s %s rule %s", kind, ref.Policy, ref.Rule)
}

func describeClassify(h *flows.Host, s traceStep) string {
	port := portIn(s.match, "in_port=")
	switch {
	case s.drops():
		return "the packet does not come from a known port with its workload's own addresses: dropped"
	case port == h.TunnelPort:
		return "from another host over the tunnel"
	case port == h.GatewayPort:
		return "from this host (the gateway port)"
	}
	if w := workloadByPort(h, port); w != nil {
		return "from workload " + w.Name
	}
	return "from port " + strconv.Itoa(port)
}

func describeShortcut(s traceStep, stage flows.Stage) string {
	switch {
	case strings.Contains(s.match, "+inv"):
		return "invalid for conntrack: dropped"
	case strings.Contains(s.match, "+rpl"):
		return "reply of an allowed connection: passes"
	case strings.Contains(s.match, "+rel"):
		return "related to an allowed connection: passes"
	case strings.Contains(s.match, "in_port="):
		return "from this host's own address: always allowed (cluster host_traffic = \"allow\")"
	}
	if stage == flows.Egress || stage == flows.Ingress {
		return "no cluster-wide rule decided"
	}
	return "no rule of the network's policies decided"
}

// describeService names the service whose VIP the step matched.
func describeService(h *flows.Host, s traceStep) string {
	dst := fieldOf(s.match, "nw_dst=")
	for _, svc := range h.Services {
		if dst != "" && svc.VIP.String() == dst {
			how := "load-balanced over its endpoints"
			switch {
			case fieldOf(s.match, "reg4=") != "":
				how = "to the endpoint the client had (session affinity)"
			case len(s.actions) > 0 && strings.HasPrefix(s.actions[0], "resubmit("):
				how = "session affinity first: the client's learned endpoint, else load-balanced"
			}
			return fmt.Sprintf("new connection to service %s (%s:%s): %s", svc.Key, dst, fieldOf(s.match, "tp_dst="), how)
		}
	}
	return "not a new connection to a service"
}

func describeForward(h *flows.Host, s traceStep) string {
	if s.drops() {
		return "no workload has this address: dropped"
	}
	for _, a := range s.actions {
		if m := traceTunDst.FindStringSubmatch(a); m != nil {
			for _, r := range h.Remote {
				if r.UnderlayIP.String() == m[1] {
					return "to " + r.Name + " over the tunnel"
				}
			}
			return "to " + m[1] + " over the tunnel"
		}
	}
	if dst, ok := strings.CutPrefix(fieldOf(s.match, "nw_dst="), ""); ok && dst != "" {
		for _, w := range h.Local {
			if w.IP.String() == dst {
				return "to local workload " + w.Name
			}
		}
		if dst == h.Gateway.String() {
			return "to this host"
		}
	}
	return "out through this host's gateway"
}

// fieldOf returns a field's value in a match, "" when absent.
func fieldOf(match, field string) string {
	for _, f := range strings.Split(match, ",") {
		if v, ok := strings.CutPrefix(f, field); ok {
			return v
		}
	}
	return ""
}

func portIn(match, field string) int {
	n, _ := strconv.ParseInt(fieldOf(match, field), 0, 32)
	return int(n)
}

func workloadByPort(h *flows.Host, port int) *flows.Workload {
	for i := range h.Local {
		if h.Local[i].Port == port {
			return &h.Local[i]
		}
	}
	return nil
}

// chosenEndpoint is the endpoint a services step translated the packet
// to: the nat(dst=IP:PORT) of the group bucket the hash chose (ofproto/
// trace prints the chosen bucket's actions under the group action), or of
// the service-lb flow of a learned affinity.
func chosenEndpoint(s traceStep, stage flows.Stage) (netip.Addr, uint16, bool) {
	if stage != flows.Services && stage != flows.ServiceLB {
		return netip.Addr{}, 0, false
	}
	for _, a := range s.actions {
		m := traceNATDst.FindStringSubmatch(a)
		if m == nil {
			continue
		}
		ip, err := netip.ParseAddr(m[1])
		port, perr := strconv.ParseUint(m[2], 10, 16)
		if err == nil && perr == nil {
			return ip, uint16(port), true
		}
	}
	return netip.Addr{}, 0, false
}

// endpointName is "network/name (IP:PORT)" for an endpoint of a service
// this host knows, "IP:PORT" otherwise.
func endpointName(h *flows.Host, ip netip.Addr, port uint16) string {
	for _, svc := range h.Services {
		for _, e := range svc.Endpoints {
			if e.IP == ip {
				return fmt.Sprintf("%s (%s:%d)", e.Name, ip, port)
			}
		}
	}
	return fmt.Sprintf("%s:%d", ip, port)
}

// noteService names the service a packet to a VIP is for and, when no
// endpoint was chosen and OVS sent the packet out of its gateway port
// into the host, says the host refuses it: the nftables table of
// datapath/hostnet rejects what comes from the gateway to the service
// CIDR (a TCP reset, ICMP port unreachable otherwise).
func noteService(h *flows.Host, p TracePacket, t *sdnv1.HostTrace) {
	what := "no service has this address"
	if !h.ServiceCIDR.Contains(p.Dst) {
		what = "" // not a VIP unless a service has it
	}
	for _, svc := range h.Services {
		if svc.VIP == p.Dst {
			t.Service = svc.Key
			what = fmt.Sprintf("service %s has no endpoint for %s/%d", svc.Key, p.Protocol, p.Port)
			if p.Protocol == "icmp" {
				what = fmt.Sprintf("service %s has no icmp port", svc.Key)
			}
		}
	}
	if what == "" || t.EndpointIp != "" || t.Outcome != OutcomeAllowed || !toGateway(h, t) {
		return
	}
	answer := "a TCP reset"
	if p.Protocol != "tcp" {
		answer = "ICMP port unreachable"
	}
	t.Outcome = OutcomeRefused
	t.Steps = append(t.Steps, &sdnv1.TraceStep{Stage: "host",
		Text: fmt.Sprintf("%s: the host refuses the connection (%s, nftables table inet %s)", what, answer, hostnet.Table)})
}

// toGateway reports whether the trace's forward step sent the packet to
// the gateway port.
func toGateway(h *flows.Host, t *sdnv1.HostTrace) bool {
	for _, line := range strings.Split(t.Raw, "\n") {
		if strings.Contains(line, fmt.Sprintf("set_field:%#x->reg2", h.GatewayPort)) {
			return true
		}
	}
	return false
}
