package flows

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"maps"
	"net/netip"
	"slices"
	"strconv"

	"github.com/sdn-dev/sdn/datapath/ovs"
)

// Service is a virtual IP this host's workloads may connect to, with the
// endpoints that serve it (the agent derives it from model.Desired's
// Services and ServiceEndpoints).
type Service struct {
	Key       string // "network/name": group ids derive from it
	VIP       netip.Addr
	Ports     []ServicePort
	Endpoints []Endpoint
	// AffinityTimeout keeps a client (by source address) on one endpoint
	// until it has opened no connection for this long (seconds); 0: none.
	AffinityTimeout uint32
}

// ServicePort is one port of a service's VIP.
type ServicePort struct {
	Protocol string // "tcp" or "udp"
	Port     uint16
}

// Endpoint is one workload behind a service.
type Endpoint struct {
	Name string // "network/name" of the workload
	IP   netip.Addr
	// Ports holds, per service port (same index), the port the endpoint
	// serves it on; 0: it does not serve that port.
	Ports []uint16
	Local bool // runs on this host
}

// HairpinIP is the source a client sees on a connection to a service that
// the service sent back to the client itself: with its own address as
// source the client's kernel would drop the packet (a martian), so OVS
// SNATs it to this link-local address in HairpinZone.
var HairpinIP = netip.MustParseAddr("169.254.169.252")

// HairpinZone is the conntrack zone of the hairpin SNAT.
const HairpinZone = 2

// GroupRange is the span of OpenFlow group ids the compiler's groups take
// (the host datapath passes it to the reconciler as the owned range).
var GroupRange = ovs.GroupRange{Min: 0x10000, Max: 0x7fffffff}

// AffinityCookie is the cookie of the flows a service's learn action
// writes into the service-affinity table. Its tag is not ovs.AppTag, so
// the reconciler neither sees nor deletes them: they live until their
// idle timeout.
const AffinityCookie uint64 = 0x5d4f << 48

// MaxBuckets is the most endpoints one select group holds (one OpenFlow
// message is at most 64 KiB); a service port with more is split into
// sub-groups of at most this many, under a group that picks among them
// weighted by size.
const MaxBuckets = 512

// Registers the affinity table loads: the endpoint's address, and its
// port with bit 16 set (a hit).
const (
	regAffinityIP = "NXM_NX_REG4[]"
	affinityHit   = 0x10000
)

// svcPort is one (service, port) the compiler realizes: the unit of a
// group.
type svcPort struct {
	svc  *Service
	port ServicePort
	eps  []portEndpoint // serving this port, by name
	k    string         // key(), made once: sorting 1,000 ports asks it 20,000 times
}

type portEndpoint struct {
	name string
	ip   netip.Addr
	port uint16
}

func (p svcPort) key() string {
	if p.k != "" {
		return p.k
	}
	return p.svc.Key + "/" + p.port.Protocol + "/" + strconv.Itoa(int(p.port.Port))
}

func (p svcPort) match() string {
	return fmt.Sprintf("%s,nw_dst=%s,tp_dst=%d", p.port.Protocol, p.svc.VIP, p.port.Port)
}

// servicePorts lists the realizable service ports in key order.
func (c *compiler) servicePorts() []svcPort {
	var out []svcPort
	for i := range c.h.Services {
		s := &c.h.Services[i]
		if !s.VIP.Is4() {
			continue
		}
		for k, p := range s.Ports {
			if p.Protocol != "tcp" && p.Protocol != "udp" || p.Port == 0 {
				continue
			}
			sp := svcPort{svc: s, port: p}
			sp.k = sp.key()
			for _, e := range s.Endpoints {
				if k < len(e.Ports) && e.Ports[k] != 0 && e.IP.Is4() {
					sp.eps = append(sp.eps, portEndpoint{e.Name, e.IP, e.Ports[k]})
				}
			}
			slices.SortFunc(sp.eps, func(a, b portEndpoint) int { return cmp.Or(cmp.Compare(a.name, b.name), a.ip.Compare(b.ip)) })
			out = append(out, sp)
		}
	}
	slices.SortFunc(out, func(a, b svcPort) int { return cmp.Compare(a.k, b.k) })
	return slices.CompactFunc(out, func(a, b svcPort) bool { return a.k == b.k })
}

// services: new connections to a VIP:port pick an endpoint in the port's
// group, whose bucket DNATs (and commits) them in zone 1 and goes on to
// egress, so policy sees the endpoint's address. With affinity, the
// affinity table (flows the buckets learn) is asked first. A port without
// endpoints gets no flow: its packets go on as any other, out through the
// gateway, where the host rejects them. Everything else goes to egress.
func (c *compiler) services() {
	c.add(Services, 0, "", "%s", gotoTable(Egress))
	c.hostPorts()
	ports := c.servicePorts()
	if len(ports) == 0 {
		if len(c.h.HostPorts) > 0 {
			c.hairpin()
		}
		return
	}
	c.add(ServiceAffinity, 0, "", "drop") // a miss: the resubmit returns with no endpoint chosen
	c.add(ServiceLB, 0, "", "%s", gotoTable(Egress))
	c.add(ServiceLearn, 0, "", "%s", gotoTable(Egress))
	c.hairpin()
	ids := newGroupIDs()
	for _, p := range ports {
		if len(p.eps) > 0 {
			ids.want(p.key())
			for k := range subGroups(p) {
				ids.want(fmt.Sprintf("%s#%d", p.key(), k))
			}
		}
	}
	ids.assign()
	c.nodePorts(ports, ids)
	for _, p := range ports {
		if len(p.eps) == 0 {
			continue
		}
		id := ids.of(p.key())
		match := "ct_state=+new+trk," + p.match()
		if p.svc.AffinityTimeout == 0 {
			c.add(Services, 100, match, "group:%d", id)
		} else {
			c.add(Services, 100, match, "resubmit(,%d),%s", ServiceAffinity.Table(), gotoTable(ServiceLB))
			c.add(ServiceLB, 100, p.match(), "group:%d", id)
			c.add(ServiceLearn, 100, fmt.Sprintf("ct_state=+new+trk+dnat,%s,ct_nw_proto=%d,ct_nw_dst=%s,ct_tp_dst=%d", p.port.Protocol, protoNumber(p.port.Protocol), p.svc.VIP, p.port.Port), "%s", learn(p))
			for _, e := range p.eps {
				c.add(ServiceLB, 110, fmt.Sprintf("%s,reg4=%#x,reg5=%#x", p.match(), ipReg(e.ip), affinityHit|uint32(e.port)), "%s", dnat(e, Egress))
			}
		}
		c.groups = append(c.groups, serviceGroups(p, id, ids)...)
	}
}

// hairpin: a client whose connection to a service lands on itself gets
// its packets back from HairpinIP (SNAT in HairpinZone at output, out
// the port they came in on); their replies are un-SNATed first
// (conntrack), then un-DNATed in zone 1 as any reply.
func (c *compiler) hairpin() {
	c.add(Conntrack, 100, fmt.Sprintf("ip,ct_state=-trk,nw_dst=%s", HairpinIP), "ct(table=%d,zone=%d,nat)", Conntrack.Table(), HairpinZone)
	c.add(Conntrack, 90, fmt.Sprintf("ip,nw_dst=%s", HairpinIP), "drop") // no hairpin connection of ours
	// The bucket committed DNATed connections already.
	c.add(Output, 105, "ip,ct_state=+new+trk+dnat", "output:%s", regOutPort)
	for _, w := range c.local() {
		m := fmt.Sprintf("ip,in_port=%d,reg2=%#x", w.Port, w.Port)
		c.add(Output, 120, "ct_state=+new+trk,"+m, "ct(commit,zone=%d,nat(src=%s)),IN_PORT", HairpinZone, HairpinIP)
		c.add(Output, 110, "ct_state=-rpl+trk,"+m, "ct(zone=%d,nat),IN_PORT", HairpinZone)
		c.add(Output, 110, "ct_state=+rpl+trk,"+m, "IN_PORT")
	}
}

// dnat commits the connection in zone 1 with its destination translated
// to the endpoint and goes on to egress.
func dnat(e portEndpoint, next Stage) string {
	return "ct(commit,table=" + strconv.Itoa(int(next.Table())) + ",zone=" + strconv.Itoa(ConntrackZone) +
		",nat(dst=" + e.ip.String() + ":" + strconv.Itoa(int(e.port)) + "))"
}

func ipReg(ip netip.Addr) uint32 {
	b := ip.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// bucket is an endpoint's bucket. With affinity the connection goes on
// to service-learn, which records the client's endpoint.
func bucket(p svcPort, e portEndpoint) ovs.Bucket {
	if p.svc.AffinityTimeout == 0 {
		return ovs.Bucket{Actions: dnat(e, Egress)}
	}
	return ovs.Bucket{Actions: dnat(e, ServiceLearn)}
}

// learn writes, for a new connection an affinity service port just
// DNATed, a flow into service-affinity: this client, the VIP and port
// (conntrack's original destination) → this endpoint, idle for at most
// the timeout. (OVS 3.1 does not perform a learn action in a group
// bucket, so it runs here, after the DNAT.)
func learn(p svcPort) string {
	proto, field := protoNumber(p.port.Protocol), "NXM_OF_TCP_DST[]"
	if p.port.Protocol == "udp" {
		field = "NXM_OF_UDP_DST[]"
	}
	return fmt.Sprintf("learn(table=%d,idle_timeout=%d,priority=100,cookie=%#x,eth_type=0x800,nw_proto=%d,"+
		"NXM_OF_IP_SRC[],NXM_OF_IP_DST[]=NXM_NX_CT_NW_DST[],%s=NXM_NX_CT_TP_DST[],"+
		"load:NXM_OF_IP_DST[]->%s,load:%s->NXM_NX_REG5[0..15],load:0x1->NXM_NX_REG5[16]),%s",
		ServiceAffinity.Table(), min(p.svc.AffinityTimeout, 0xffff), AffinityCookie, proto, field,
		regAffinityIP, field, gotoTable(Egress))
}

// A service port's group selects with dp_hash: the datapath hashes the
// connection's 5-tuple and OVS maps hash values to buckets, so the
// megaflows match a few hash bits. With selection_method=hash over the
// 5-tuple every new connection was an upcall and a megaflow of its own
// (the source port matched exactly): 6,000-8,000 datapath flows after a
// round of wrk through a VIP against ~9 going direct, and new connections
// through the VIP at 0.04-0.58 of direct (docs/performance.md,
// "Services"). Sub-groups (services split over more than MaxBuckets
// endpoints) hash the client's address and port with selection_method=
// hash instead: the same dp_hash value would tie their pick to the top
// group's.

// hashFields are a sub-group's hash inputs: the client's side, so its
// pick does not follow the top group's.
func hashFields(proto string) []string {
	return []string{"ip_src", proto + "_src"}
}

// subGroups splits a port's endpoints when one group cannot hold them:
// by a hash of the endpoint's name, so one endpoint's change rewrites
// one sub-group (and the top group's weights), not all of them. nil when
// one group is enough.
func subGroups(p svcPort) [][]portEndpoint {
	limit := MaxBuckets
	if len(p.eps) <= limit {
		return nil
	}
	for n := (len(p.eps) + limit*3/4 - 1) / (limit * 3 / 4); ; n++ {
		subs := make([][]portEndpoint, n)
		ok := true
		for _, e := range p.eps {
			h := fnv.New32a()
			h.Write([]byte(e.name))
			k := h.Sum32() % uint32(n)
			subs[k] = append(subs[k], e)
			ok = ok && len(subs[k]) <= limit
		}
		if ok {
			return subs
		}
	}
}

// serviceGroups returns the groups of one service port: its select group
// and, when split, its sub-groups (first: a group must exist before a
// bucket points to it).
func serviceGroups(p svcPort, id uint32, ids *groupIDs) []ovs.Group {
	top := ovs.Group{ID: id, Type: "select", SelectionMethod: "dp_hash"}
	subs := subGroups(p)
	if subs == nil {
		top.Buckets = make([]ovs.Bucket, 0, len(p.eps))
		for _, e := range p.eps {
			top.Buckets = append(top.Buckets, bucket(p, e))
		}
		return []ovs.Group{top}
	}
	var out []ovs.Group
	for k, eps := range subs {
		if len(eps) == 0 {
			continue
		}
		sub := ovs.Group{ID: ids.of(fmt.Sprintf("%s#%d", p.key(), k)), Type: "select", SelectionMethod: "hash", Fields: hashFields(p.port.Protocol)}
		for _, e := range eps {
			sub.Buckets = append(sub.Buckets, bucket(p, e))
		}
		out = append(out, sub)
		top.Buckets = append(top.Buckets, ovs.Bucket{Weight: uint16(len(eps)), Actions: fmt.Sprintf("group:%d", sub.ID)})
	}
	return append(out, top)
}

// groupIDs derives group ids in GroupRange from keys: a hash of the key,
// moved on to the next free id on a collision, in key order (as idSet).
type groupIDs struct{ idSet }

func newGroupIDs() *groupIDs { return &groupIDs{idSet{keys: map[string]bool{}}} }

func (s *groupIDs) assign() {
	s.ids = make(map[string]uint32, len(s.keys))
	taken := map[uint32]bool{}
	span := GroupRange.Max - GroupRange.Min + 1
	for _, k := range slices.Sorted(maps.Keys(s.keys)) {
		h := fnv.New32a()
		h.Write([]byte(k))
		off := h.Sum32() % span
		for taken[GroupRange.Min+off] {
			off = (off + 1) % span
		}
		taken[GroupRange.Min+off] = true
		s.ids[k] = GroupRange.Min + off
	}
}

func protoNumber(proto string) int {
	if proto == "udp" {
		return 17
	}
	return 6
}
