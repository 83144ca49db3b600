package feed

import (
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// entry is one change as watchers receive it: encoded once, with the hosts
// it goes to.
type entry struct {
	all   bool     // every host
	hosts []string // otherwise these (sorted)
	wire  []byte   // the ObjectChange as a WatchEvent's field 3
}

// concerns reports whether host receives the entry.
func (e *entry) concerns(host string) bool {
	if e.all {
		return true
	}
	_, ok := slices.BinarySearch(e.hosts, host)
	return ok
}

// workloadRec is a workload as the index holds it.
type workloadRec struct {
	node string
	wire []byte
}

// groupRec is an address group as the index holds it.
type groupRec struct {
	nodes []string // sorted
	wire  []byte
}

// index is the state agents need, encoded, as of one revision: what
// snapshots are made of and what tells a change's audience (a workload's
// previous host, a group's previous nodes, whether a node's cut changed).
type index struct {
	cluster   []byte
	networks  map[string][]byte
	nets      map[string]*sdnv1.Network // decoded, for policy selectors
	nodes     map[string][]byte         // cut to what agents use
	workloads map[string]workloadRec
	wobjs     map[string]*sdnv1.Workload // decoded, for policy selectors
	pols      map[string]*polRec         // span.go
	// polsByHost are the policies whose span includes each host.
	polsByHost map[string]map[string]struct{}
	byNode     map[string]map[string][]byte // host → workload key → wire
	groups     map[string]groupRec
	// Services and their endpoints go to every host: a client of a
	// service can be on any host, and node ports are on every host.
	services  map[string][]byte
	endpoints map[string][]byte
	down      map[string]bool // hosts marked down (for WaitRealized)
	// shared counts changes to what every host receives (cluster,
	// networks, nodes, services), so snapshot chunks of it are cached.
	shared uint64
	// known is false while the index replays history without the state
	// before it: a change whose previous form it has not seen then goes to
	// every host (a bare delete costs a host nothing).
	known bool
}

func newIndex() *index {
	return &index{networks: map[string][]byte{}, nets: map[string]*sdnv1.Network{}, nodes: map[string][]byte{},
		wobjs: map[string]*sdnv1.Workload{}, pols: map[string]*polRec{}, polsByHost: map[string]map[string]struct{}{},
		workloads: map[string]workloadRec{}, byNode: map[string]map[string][]byte{}, groups: map[string]groupRec{}, down: map[string]bool{}, known: true,
		services: map[string][]byte{}, endpoints: map[string][]byte{}}
}

// load fills an empty index from a whole state.
func (x *index) load(st *model.State) {
	for _, c := range st.Changes() {
		x.apply(c)
	}
}

// apply records one change and returns the entries watchers receive for
// it (none when no host's view changes).
func (x *index) apply(c *sdnv1.ObjectChange) []entry {
	del := c.Op == sdnv1.ChangeOp_CHANGE_OP_DELETE
	switch model.Kind(c.Kind) {
	case model.KindCluster:
		return x.putShared(&x.cluster, c, del)
	case model.KindNetwork:
		out := x.putMap(x.networks, c, del)
		delete(x.nets, c.Name)
		if !del && c.Network != nil {
			x.nets[c.Name] = c.Network
		}
		if len(out) == 0 {
			return nil
		}
		return append(out, x.respanNetwork()...)
	case model.KindNode:
		delete(x.down, c.Name)
		if !del && c.Node != nil {
			if c.Node.DownSinceUnixMs != 0 {
				x.down[c.Name] = true
			}
			c = model.Put(model.KindNode, c.Name, &sdnv1.ObjectChange{Node: AgentNode(c.Node)})
		}
		return x.putMap(x.nodes, c, del)
	case model.KindPolicy:
		return x.applyPolicy(c, del)
	case model.KindWorkload:
		old := x.wobjs[c.Name]
		delete(x.wobjs, c.Name)
		var now *sdnv1.Workload
		if !del && c.Workload != nil {
			now = c.Workload
			x.wobjs[c.Name] = now
		}
		// The workload first, then the policies its host gains or loses.
		return append(x.applyWorkload(c, del), x.respanWorkload(old, now)...)
	case model.KindAddressGroup:
		return x.applyGroup(c, del)
	case model.KindService:
		return x.putMap(x.services, c, del)
	case model.KindServiceEndpoints:
		return x.putMap(x.endpoints, c, del)
	}
	return nil // kinds agents do not use (servers, certificates)
}

// AgentNode cuts a node to what agents use: a host's flows need another
// host's underlay address and MTU, subnet and gateway; its liveness, drain
// state, labels and bookkeeping would only make every host hear of every
// heartbeat lapse.
func AgentNode(n *sdnv1.Node) *sdnv1.Node {
	return &sdnv1.Node{Name: n.Name, UnderlayIp: n.UnderlayIp, UnderlayMtu: n.UnderlayMtu, Subnet: n.Subnet, GatewayIp: n.GatewayIp}
}

// putShared records a change to the one cluster object.
func (x *index) putShared(slot *[]byte, c *sdnv1.ObjectChange, del bool) []entry {
	w := encode(c)
	if del {
		*slot = nil
	} else if slices.Equal(*slot, w) && x.known {
		return nil
	} else {
		*slot = w
	}
	x.shared++
	return []entry{{all: true, wire: w}}
}

// putMap records a change to an object every host receives; a put that
// changes nothing agents see reaches no one.
func (x *index) putMap(m map[string][]byte, c *sdnv1.ObjectChange, del bool) []entry {
	w := encode(c)
	old, had := m[c.Name]
	switch {
	case del && !had && x.known:
		return nil
	case del:
		delete(m, c.Name)
	case had && slices.Equal(old, w):
		return nil
	default:
		m[c.Name] = w
	}
	x.shared++
	return []entry{{all: true, wire: w}}
}

// applyWorkload records a workload change: its host receives it, and a
// host it left a bare delete.
func (x *index) applyWorkload(c *sdnv1.ObjectChange, del bool) []entry {
	old, had := x.workloads[c.Name]
	var out []entry
	switch {
	case had:
		delete(x.workloads, c.Name)
		x.dropFromNode(old.node, c.Name)
	case !x.known:
		// Its previous host is unknown: every host drops it (a bare
		// delete of what a host never had changes nothing), before its
		// new host receives it below.
		out = append(out, entry{all: true, wire: bareDelete(c)})
	}
	newNode := ""
	if !del && c.Workload != nil {
		newNode = c.Workload.Node
	}
	if had && old.node != "" && old.node != newNode {
		out = append(out, entry{hosts: []string{old.node}, wire: bareDelete(c)})
	}
	if newNode != "" {
		w := encode(c)
		x.workloads[c.Name] = workloadRec{node: newNode, wire: w}
		x.addToNode(newNode, c.Name, w)
		out = append(out, entry{hosts: []string{newNode}, wire: w})
	}
	return out
}

func (x *index) addToNode(node, key string, w []byte) {
	m := x.byNode[node]
	if m == nil {
		m = map[string][]byte{}
		x.byNode[node] = m
	}
	m[key] = w
}

func (x *index) dropFromNode(node, key string) {
	if m := x.byNode[node]; m != nil {
		delete(m, key)
		if len(m) == 0 {
			delete(x.byNode, node)
		}
	}
}

// applyGroup records an address group change: the hosts in its nodes
// receive it, and hosts that left its nodes a bare delete.
func (x *index) applyGroup(c *sdnv1.ObjectChange, del bool) []entry {
	old, had := x.groups[c.Name]
	var out []entry
	var nodes []string
	if !del && c.AddressGroup != nil {
		nodes = slices.Compact(slices.Sorted(slices.Values(c.AddressGroup.Nodes)))
	}
	switch {
	case had:
		if left := minus(old.nodes, nodes); len(left) > 0 {
			out = append(out, entry{hosts: left, wire: bareDelete(c)})
		}
	case !x.known:
		// Who held it before is unknown: every host drops it first.
		out = append(out, entry{all: true, wire: bareDelete(c)})
	}
	delete(x.groups, c.Name)
	if del || c.AddressGroup == nil {
		return out
	}
	w := encode(model.Put(model.KindAddressGroup, c.Name, &sdnv1.ObjectChange{AddressGroup: AgentGroup(c.AddressGroup)}))
	x.groups[c.Name] = groupRec{nodes: nodes, wire: w}
	to := nodes
	if had && slices.Equal(old.wire, w) {
		to = minus(nodes, old.nodes) // only the hosts that did not have it
	}
	if len(to) > 0 {
		out = append(out, entry{hosts: to, wire: w})
	}
	return out
}

// AgentGroup cuts an address group to what agents use: its members (which
// hosts need it is the servers' business, and would make every host in it
// hear of each host that joins).
func AgentGroup(g *sdnv1.AddressGroup) *sdnv1.AddressGroup {
	return &sdnv1.AddressGroup{Name: g.Name, Selector: g.Selector, Members: g.Members}
}

// minus returns the elements of sorted a not in sorted b.
func minus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if _, ok := slices.BinarySearch(b, s); !ok {
			out = append(out, s)
		}
	}
	return out
}

// bareDelete is the encoded delete of c's object, without the object.
func bareDelete(c *sdnv1.ObjectChange) []byte { return bareDeleteOf(model.Kind(c.Kind), c.Name) }

// encode renders c as a WatchEvent's changes field (tag, length, bytes),
// ready to be concatenated into an event.
func encode(c *sdnv1.ObjectChange) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		panic(err) // a message built in memory always encodes
	}
	out := protowire.AppendTag(make([]byte, 0, len(b)+6), fieldChanges, protowire.BytesType)
	return protowire.AppendBytes(out, b)
}

// fieldChanges is WatchEvent.changes' field number.
const fieldChanges = 3
