package flows

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/sdn-dev/sdn/datapath/ovs"
	"github.com/sdn-dev/sdn/model"
)

// Stage is a named table of the pipeline.
type Stage string

// The pipeline, in order. A stage's table number is its index.
const (
	Classify        Stage = "classify"
	ARP             Stage = "arp"
	Conntrack       Stage = "conntrack"
	Services        Stage = "services"         // new connections to a VIP:port → its group
	ServiceAffinity Stage = "service-affinity" // learned: client → its endpoint
	ServiceLB       Stage = "service-lb"       // affinity services: the learned endpoint, else the group
	ServiceLearn    Stage = "service-learn"    // affinity services: record the client's endpoint
	Egress          Stage = "egress"           // cluster-wide tier of egress rules
	EgressPolicy    Stage = "egress-policy"    // network tier of egress rules, egress isolation
	Forward         Stage = "forward"          // by destination
	Ingress         Stage = "ingress"          // host exemption, cluster-wide tier of ingress rules
	IngressPolicy   Stage = "ingress-policy"   // network tier of ingress rules, ingress isolation
	Isolate         Stage = "isolation"        // the baseline of the isolation mode
	Output          Stage = "output"
)

// Stages lists the pipeline in table order.
var Stages = []Stage{Classify, ARP, Conntrack, Services, ServiceAffinity, ServiceLB, ServiceLearn, Egress, EgressPolicy, Forward, Ingress, IngressPolicy, Isolate, Output}

// StageOf returns the stage of a table number, "" when there is none.
func StageOf(table uint8) Stage {
	if int(table) < len(Stages) {
		return Stages[table]
	}
	return ""
}

// Table returns a stage's table number.
func (s Stage) Table() uint8 {
	i := slices.Index(Stages, s)
	if i < 0 {
		panic(fmt.Sprintf("flows: unknown stage %q", s))
	}
	return uint8(i)
}

func (s Stage) String() string { return string(s) }

// RouterMAC answers the host's ARP for workloads on other hosts: such
// packets are routed, and the receiving host rewrites the Ethernet header.
var RouterMAC = net.HardwareAddr{0x0a, 0x58, 0xa9, 0xfe, 0x00, 0x01}

// ConntrackZone is the zone every workload connection is tracked in.
const ConntrackZone = 1

// Registers carrying metadata between stages.
const (
	regSrcVNID = "NXM_NX_REG0[]"
	regDstVNID = "NXM_NX_REG1[]"
	regOutPort = "NXM_NX_REG2[]"
)

// Compile returns the integration bridge's flows for h, ordered by table,
// then descending priority, then match.
func Compile(h *Host) []ovs.Flow { return CompileAll(h).Flows }

// Compiled is the compiler's whole output: the flows, and what the rule
// ids in their cookies stand for.
type Compiled struct {
	Flows []ovs.Flow
	// Groups are the services' select groups, ids in GroupRange; a
	// group comes before any group that points to it.
	Groups []ovs.Group
	// Rules maps a policy flow's cookie category (ovs.CookieCategory) to
	// the rule it realizes.
	Rules map[uint32]RuleRef
}

// CompileAll compiles h, returning the flows and the rule table.
//
// The whole flow set goes to OVS in one atomic bundle (the reconciler in
// datapath/ovs), so a new workload's classify flows, the only way its port
// passes any traffic, arrive together with its policy flows: it never
// sends or receives a packet its policies forbid.
func CompileAll(h *Host) Compiled {
	c := &compiler{h: h}
	c.classify()
	c.arp()
	c.conntrack()
	c.services()
	c.egress()
	c.forward()
	c.ingress()
	c.isolation()
	c.output()
	c.policies()
	slices.SortFunc(c.flows, func(a, b ovs.Flow) int {
		return cmp.Or(cmp.Compare(a.Table, b.Table), cmp.Compare(b.Priority, a.Priority), cmp.Compare(a.Match, b.Match))
	})
	return Compiled{Flows: c.flows, Groups: c.groups, Rules: c.rules}
}

type compiler struct {
	h      *Host
	flows  []ovs.Flow
	groups []ovs.Group
	rules  map[uint32]RuleRef
}

func (c *compiler) add(s Stage, prio uint16, match, actions string, args ...any) {
	c.flows = append(c.flows, ovs.Flow{Table: s.Table(), Priority: prio, Match: match, Actions: fmt.Sprintf(actions, args...)})
}

func gotoTable(s Stage) string { return fmt.Sprintf("goto_table:%d", s.Table()) }

// local returns the local workloads in address order.
func (c *compiler) local() []Workload {
	ws := slices.Clone(c.h.Local)
	slices.SortFunc(ws, func(a, b Workload) int { return a.IP.Compare(b.IP) })
	return ws
}

func (c *compiler) classify() {
	for _, w := range c.local() {
		meter := ""
		if w.Meter != 0 {
			meter = fmt.Sprintf("meter:%d,", w.Meter)
		}
		c.add(Classify, 100, fmt.Sprintf("ip,in_port=%d,dl_src=%s,nw_src=%s", w.Port, w.MAC, w.IP),
			"%sload:%#x->%s,%s", meter, w.VNID, regSrcVNID, gotoTable(Conntrack))
		c.add(Classify, 100, fmt.Sprintf("arp,in_port=%d,dl_src=%s,arp_spa=%s,arp_sha=%s", w.Port, w.MAC, w.IP, w.MAC),
			"load:%#x->%s,%s", w.VNID, regSrcVNID, gotoTable(ARP))
	}
	c.add(Classify, 100, fmt.Sprintf("ip,in_port=%d", c.h.TunnelPort),
		"move:NXM_NX_TUN_ID[0..23]->NXM_NX_REG0[0..23],%s", gotoTable(Conntrack))
	c.add(Classify, 100, fmt.Sprintf("ip,in_port=%d", c.h.GatewayPort), "load:%#x->%s,%s", model.HostVNID, regSrcVNID, gotoTable(Conntrack))
	c.add(Classify, 100, fmt.Sprintf("arp,in_port=%d", c.h.GatewayPort), "load:%#x->%s,%s", model.HostVNID, regSrcVNID, gotoTable(ARP))
	c.add(Classify, 0, "", "drop")
}

// arpReply turns a request into the reply from ip at mac, out of the port
// it came in on.
func arpReply(ip netip.Addr, mac net.HardwareAddr) string {
	return fmt.Sprintf("move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:%s->eth_src,load:0x2->NXM_OF_ARP_OP[],"+
		"move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],"+
		"set_field:%s->arp_sha,set_field:%s->arp_spa,IN_PORT", mac, mac, ip)
}

func (c *compiler) arp() {
	for _, w := range c.local() {
		c.add(ARP, 100, fmt.Sprintf("arp,arp_op=1,arp_tpa=%s", w.IP), "%s", arpReply(w.IP, w.MAC))
	}
	c.add(ARP, 100, fmt.Sprintf("arp,arp_op=1,arp_tpa=%s", c.h.Gateway), "%s", arpReply(c.h.Gateway, c.h.GatewayMAC))
	if c.h.ClusterCIDR.IsValid() {
		// The host reaches every workload through its gateway port; for
		// those on other hosts the virtual router answers.
		c.add(ARP, 50, fmt.Sprintf("arp,arp_op=1,in_port=%d,arp_tpa=%s", c.h.GatewayPort, c.h.ClusterCIDR), "%s",
			"move:NXM_OF_ARP_TPA[]->NXM_NX_REG3[],"+arpReplyFromReg(RouterMAC))
	}
	if c.h.ServiceCIDR.IsValid() {
		c.add(ARP, 50, fmt.Sprintf("arp,arp_op=1,in_port=%d,arp_tpa=%s", c.h.GatewayPort, c.h.ServiceCIDR), "%s",
			"move:NXM_OF_ARP_TPA[]->NXM_NX_REG3[],"+arpReplyFromReg(RouterMAC))
	}
	c.add(ARP, 0, "", "drop")
}

// arpReplyFromReg answers with mac for whatever address was asked (saved in
// reg3 first, since the reply overwrites the target address).
func arpReplyFromReg(mac net.HardwareAddr) string {
	return fmt.Sprintf("move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:%s->eth_src,load:0x2->NXM_OF_ARP_OP[],"+
		"move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],"+
		"set_field:%s->arp_sha,move:NXM_NX_REG3[]->NXM_OF_ARP_SPA[],IN_PORT", mac, mac)
}

func (c *compiler) conntrack() {
	// nat: established connections are translated both ways (requests to
	// their endpoint, replies back from the VIP) before anything looks
	// at them.
	c.add(Conntrack, 0, "ip", "ct(table=%d,zone=%d,nat)", Services.Table(), ConntrackZone)
}

// Priorities of the fixed flows of the policy stages; the rules' levels
// take the priorities below prioLevels (policy.go).
const (
	prioShortcut = 65000 // replies, related, invalid
	prioHost     = 64000 // the host's own traffic to its workloads
)

// egress: replies and related packets of committed connections pass
// unevaluated (egress → forward); invalid ones are dropped. Packets of a
// connection's own direction go through the rules every time, so removing
// the rule that allowed a connection stops it. The rules themselves are
// added by policies().
func (c *compiler) egress() {
	c.add(Egress, prioShortcut, "ct_state=+inv+trk", "drop")
	c.add(Egress, prioShortcut, "ct_state=+est+rpl+trk", "%s", gotoTable(Forward))
	c.add(Egress, prioShortcut, "ct_state=+rel+trk", "%s", gotoTable(Forward))
	c.add(Egress, 0, "", "%s", gotoTable(EgressPolicy))
	c.add(EgressPolicy, 0, "", "%s", gotoTable(Forward))
}

func (c *compiler) forward() {
	gw := c.h.GatewayMAC
	for _, w := range c.local() {
		c.add(Forward, 100, fmt.Sprintf("ip,nw_dst=%s", w.IP), "set_field:%s->eth_src,set_field:%s->eth_dst,load:%#x->%s,load:%#x->%s,%s",
			gw, w.MAC, w.VNID, regDstVNID, w.Port, regOutPort, gotoTable(Ingress))
	}
	c.add(Forward, 100, fmt.Sprintf("ip,nw_dst=%s", c.h.Gateway), "set_field:%s->eth_dst,load:%#x->%s,load:%#x->%s,%s",
		gw, model.HostVNID, regDstVNID, c.h.GatewayPort, regOutPort, gotoTable(Ingress))
	// What arrives over the tunnel is for this host only: never relayed to
	// another host or out through the gateway.
	c.add(Forward, 60, fmt.Sprintf("ip,in_port=%d", c.h.TunnelPort), "drop")
	remote := slices.Clone(c.h.Remote)
	slices.SortFunc(remote, func(a, b RemoteHost) int { return cmp.Compare(a.Name, b.Name) })
	// Tunnelled frames carry the virtual router's MAC as source and
	// destination: the receiving host rewrites both anyway, and a set_field
	// makes OVS match the field's old value in the megaflow, so frames
	// carrying their workload's MAC would cost every receiving host one
	// datapath flow per remote workload instead of one.
	c.underlay()
	for _, r := range remote {
		c.add(Forward, 50, fmt.Sprintf("ip,nw_dst=%s", r.Subnet),
			"set_field:%s->eth_src,set_field:%s->eth_dst,move:NXM_NX_REG0[0..23]->NXM_NX_TUN_ID[0..23],set_field:%s->tun_dst,load:%#x->%s,%s",
			RouterMAC, RouterMAC, r.UnderlayIP, c.h.TunnelPort, regOutPort, gotoTable(Output))
	}
	if c.h.Subnet.IsValid() {
		c.add(Forward, 40, fmt.Sprintf("ip,nw_dst=%s", c.h.Subnet), "drop")
	}
	if c.h.ClusterCIDR.IsValid() {
		c.add(Forward, 30, fmt.Sprintf("ip,nw_dst=%s", c.h.ClusterCIDR), "drop")
	}
	// Everything else leaves through the host, which routes it.
	c.add(Forward, 0, "ip", "set_field:%s->eth_dst,load:%#x->%s,%s", gw, c.h.GatewayPort, regOutPort, gotoTable(Output))
}

// ingress: replies and related packets pass (ingress → output); so does
// the host's own traffic to its workloads (its gateway address, from the
// gateway port) unless the cluster wants it decided by policy. Then the
// cluster-wide rules, the network's rules (policies()), and the baseline.
func (c *compiler) ingress() {
	c.add(Ingress, prioShortcut, "ct_state=+est+rpl+trk", "%s", gotoTable(Output))
	c.add(Ingress, prioShortcut, "ct_state=+rel+trk", "%s", gotoTable(Output))
	if !c.h.HostTrafficByPolicy && c.h.Gateway.IsValid() {
		// Not through a service (ct_state +dnat: to a VIP or a node port,
		// which the host SNATs to its gateway address): who may use a
		// service is decided by its endpoints' policies, for a client on
		// this host as on any other.
		c.add(Ingress, prioHost, fmt.Sprintf("ip,in_port=%d,nw_src=%s,ct_state=-dnat+trk", c.h.GatewayPort, c.h.Gateway), "%s", gotoTable(Output))
	}
	c.add(Ingress, 0, "", "%s", gotoTable(IngressPolicy))
	c.add(IngressPolicy, 0, "", "%s", gotoTable(Isolate))
}

// isolation is the baseline for traffic no policy decided: the cluster's
// isolation mode, by VNID.
func (c *compiler) isolation() {
	if c.h.Isolation == Flat {
		c.add(Isolate, 0, "", "%s", gotoTable(Output))
		return
	}
	// The hosts reach all and are reached by all.
	c.add(Isolate, 100, fmt.Sprintf("reg0=%#x", model.HostVNID), "%s", gotoTable(Output))
	c.add(Isolate, 100, fmt.Sprintf("reg1=%#x", model.HostVNID), "%s", gotoTable(Output))
	if c.h.Isolation == Multitenant {
		// The admin network too; in policy mode it is a network like any
		// other, and policies (a later stage) decide for it.
		c.add(Isolate, 100, "reg0=0", "%s", gotoTable(Output))
		c.add(Isolate, 100, "reg1=0", "%s", gotoTable(Output))
	}
	var vnids []uint32
	for _, w := range c.h.Local {
		vnids = append(vnids, w.VNID)
	}
	slices.Sort(vnids)
	for _, v := range slices.Compact(vnids) {
		if v != 0 || c.h.Isolation != Multitenant {
			c.add(Isolate, 50, fmt.Sprintf("reg0=%#x,reg1=%#x", v, v), "%s", gotoTable(Output))
		}
	}
	c.add(Isolate, 0, "", "drop")
}

func (c *compiler) output() {
	c.add(Output, 100, "ip,ct_state=+new+trk", "ct(commit,zone=%d),output:%s", ConntrackZone, regOutPort)
	c.add(Output, 0, "", "output:%s", regOutPort)
}
