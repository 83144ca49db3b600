package fsm

// Allocation through the FSM, in random order: networks, hosts and workloads
// are created and removed by the same commands raft feeds the FSM, and after
// every command the stored state is scanned for duplicates. Refused commands
// must change nothing and, when a pool ran dry, say which pool, how big it is
// and what to do.
//
// The command generator here (fsmGen) is shared with determinism_test.go.

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// The random runs use small pools so that every one of them fills up:
// 32 host blocks of 29 addresses each (or of 13 with the other CIDR) for 40
// host names, and (see shrinkVNIDs) 16 VNIDs for 24 network names. genSettingsAlt is what a "change the cluster CIDR" command
// asks for; it is accepted only while no host holds a subnet.
var (
	genSettings    = &sdnv1.ClusterSettings{Cidr: "10.128.0.0/22", HostPrefix: 27}
	genSettingsAlt = &sdnv1.ClusterSettings{Cidr: "10.144.0.0/23", HostPrefix: 28}
)

const (
	genNodes    = 40 // host names; more than the 32 blocks either CIDR holds
	genNetworks = 24 // network names besides the admin network "infra"
	genHot      = 2  // hosts that get most workloads, so their blocks fill
	genMoodLen  = 200
)

type genMood int

const (
	moodGrow genMood = iota
	moodChurn
	moodDrain
)

func (m genMood) String() string { return [...]string{"grow", "churn", "drain"}[m] }

// fsmGen generates a random but reproducible sequence of commands. Each
// command is chosen by looking at the current stored state (so most commands
// do something), but the choice depends only on the seed and that state:
// map iteration is never involved. Every mood lasts genMoodLen commands:
// growing fills the pools, draining empties them, churn does both.
type fsmGen struct {
	rng  *rand.Rand
	step int
	mood genMood
	seq  int
}

func newFSMGen(seed uint64) *fsmGen {
	return &fsmGen{rng: rand.New(rand.NewPCG(seed, seed^0x5d4e)), mood: moodGrow}
}

// genCmd is one generated command.
type genCmd struct {
	typ  command.Type
	msg  proto.Message
	what string // the generator's intent, for failure messages
}

func (c genCmd) String() string { return fmt.Sprintf("%s (%s): %v", c.typ, c.what, c.msg) }

// genState is the stored state a command is generated from.
type genState struct {
	settings *sdnv1.ClusterSettings
	nets     []*sdnv1.Network
	nodes    []*sdnv1.Node
	wls      []*sdnv1.Workload
	pols     []*sdnv1.Policy
	nodeByNm map[string]*sdnv1.Node
	revision uint64
}

func readGenState(tx *state.Tx) *genState {
	s := &genState{settings: effectiveSettings(tx), nets: tx.Networks(), nodes: tx.Nodes(), wls: tx.Workloads(""), pols: tx.Policies(),
		nodeByNm: map[string]*sdnv1.Node{}, revision: tx.Meta().Revision}
	for _, n := range s.nodes {
		s.nodeByNm[n.Name] = n
	}
	return s
}

func nodeName(i int) string    { return fmt.Sprintf("n%02d", i) }
func networkName(i int) string { return fmt.Sprintf("p%02d", i) }
func underlay(i int) string    { return fmt.Sprintf("198.18.%d.%d", i/250, i%250+1) }
func nodeIndex(name string) int {
	i, _ := strconv.Atoi(strings.TrimPrefix(name, "n"))
	return i
}

type genOp struct {
	weight int
	fn     func(*fsmGen, *genState) genCmd
}

var genOps = map[genMood][]genOp{
	moodGrow: {
		{14, (*fsmGen).applyHCL}, {40, (*fsmGen).attach}, {8, (*fsmGen).detach}, {32, (*fsmGen).register},
		{2, (*fsmGen).removeNode}, {3, (*fsmGen).deleteNetwork}, {1, (*fsmGen).changeSettings}, {1, (*fsmGen).compact},
		{3, (*fsmGen).liveness}, {4, (*fsmGen).label},
	},
	moodChurn: {
		{15, (*fsmGen).applyHCL}, {28, (*fsmGen).attach}, {24, (*fsmGen).detach}, {10, (*fsmGen).register},
		{8, (*fsmGen).removeNode}, {5, (*fsmGen).deleteNetwork}, {1, (*fsmGen).changeSettings}, {1, (*fsmGen).compact},
		{6, (*fsmGen).liveness}, {4, (*fsmGen).label},
	},
	moodDrain: {
		{12, (*fsmGen).applyHCL}, {5, (*fsmGen).attach}, {35, (*fsmGen).detach}, {2, (*fsmGen).register},
		{30, (*fsmGen).removeNode}, {12, (*fsmGen).deleteNetwork}, {4, (*fsmGen).changeSettings}, {1, (*fsmGen).compact},
		{6, (*fsmGen).liveness}, {4, (*fsmGen).label},
	},
}

// next returns the next command for the state tx holds.
func (g *fsmGen) next(tx *state.Tx) genCmd {
	if g.step > 0 && g.step%genMoodLen == 0 {
		g.mood = genMood(g.rng.IntN(3))
	}
	g.step++
	s := readGenState(tx)
	ops := genOps[g.mood]
	total := 0
	for _, op := range ops {
		total += op.weight
	}
	r := g.rng.IntN(total)
	for _, op := range ops {
		if r < op.weight {
			return op.fn(g, s)
		}
		r -= op.weight
	}
	panic("unreachable")
}

func (g *fsmGen) pct(p int) bool { return g.rng.IntN(100) < p }

func pick[T any](g *fsmGen, xs []T) T { return xs[g.rng.IntN(len(xs))] }

// pickNode mostly picks a hot host or a registered one, sometimes any name
// (which may not be registered).
func (g *fsmGen) pickNode(s *genState) string {
	switch r := g.rng.IntN(100); {
	case r < 50:
		return nodeName(g.rng.IntN(genHot))
	case r < 92 && len(s.nodes) > 0:
		return pick(g, s.nodes).Name
	default:
		return nodeName(g.rng.IntN(genNodes))
	}
}

// requestIP returns an address to ask for: any address of the host's block
// (free, in use, or the network, gateway or broadcast address), sometimes of
// another host's block. "" when no host is registered.
func (g *fsmGen) requestIP(s *genState, node string) string {
	n := s.nodeByNm[node]
	if n == nil || g.pct(15) {
		if len(s.nodes) == 0 {
			return ""
		}
		n = pick(g, s.nodes)
	}
	sub := netip.MustParsePrefix(n.Subnet)
	a := sub.Addr()
	for range g.rng.IntN(1 << (32 - sub.Bits())) {
		a = a.Next()
	}
	return a.String()
}

var hclOrigin = &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_HCL, File: "main.hcl"}

// applyHCL sends the whole desired configuration with Prune, as `sdnctl
// apply` does: the HCL objects stored now, changed a little.
func (g *fsmGen) applyHCL(s *genState) genCmd {
	nets := map[string]*sdnv1.Network{}
	for _, n := range s.nets {
		if n.GetOrigin().GetKind() == sdnv1.OriginKind_ORIGIN_KIND_HCL {
			nets[n.Name] = &sdnv1.Network{Name: n.Name, Admin: n.Admin, Labels: n.Labels, Origin: hclOrigin}
		}
	}
	wls := map[string]*sdnv1.Workload{}
	for _, w := range s.wls {
		if w.GetOrigin().GetKind() == sdnv1.OriginKind_ORIGIN_KIND_HCL {
			wls[model.WorkloadKey(w.Network, w.Name)] = &sdnv1.Workload{Name: w.Name, Network: w.Network, Node: w.Node, Labels: w.Labels, NamedPorts: w.NamedPorts, Origin: hclOrigin}
		}
	}
	pols := map[string]*sdnv1.Policy{}
	for _, p := range s.pols {
		c := proto.Clone(p).(*sdnv1.Policy)
		c.CreateRevision, c.ModRevision = 0, 0
		pols[model.PolicyKey(c)] = c
	}
	// Mutation odds by mood: add network, drop network, add workload,
	// drop workload, move workload, relabel; the rest is a second admin.
	odds := map[genMood][6]int{
		moodGrow:  {30, 5, 45, 5, 8, 5},
		moodChurn: {15, 12, 30, 20, 12, 9},
		moodDrain: {5, 35, 5, 35, 12, 6},
	}[g.mood]
	var what []string
	for range 1 + g.rng.IntN(3) {
		r := g.rng.IntN(100)
		switch {
		case r < odds[0]:
			name := networkName(g.rng.IntN(genNetworks))
			if g.pct(10) {
				name = "infra"
			}
			if _, ok := nets[name]; !ok {
				nets[name] = &sdnv1.Network{Name: name, Admin: name == "infra", Origin: hclOrigin}
				what = append(what, "add network "+name)
			}
		case r < odds[0]+odds[1]:
			if len(nets) == 0 {
				continue
			}
			name := pick(g, slices.Sorted(maps.Keys(nets)))
			delete(nets, name)
			what = append(what, "drop network "+name)
			if g.pct(80) {
				for _, k := range slices.Sorted(maps.Keys(wls)) {
					if wls[k].Network == name {
						delete(wls, k)
					}
				}
				for _, k := range slices.Sorted(maps.Keys(pols)) {
					if pols[k].Network == name {
						delete(pols, k)
					}
				}
			}
		case r < odds[0]+odds[1]+odds[2]:
			if len(nets) == 0 {
				continue
			}
			g.seq++
			w := &sdnv1.Workload{Name: fmt.Sprintf("h%d", g.seq), Network: pick(g, slices.Sorted(maps.Keys(nets))), Node: g.pickNode(s), Origin: hclOrigin,
				Labels: map[string]string{"app": pick(g, genApps)}, NamedPorts: []*sdnv1.NamedPort{{Name: "http", Protocol: "tcp", Port: uint32(8000 + g.rng.IntN(3))}}}
			if g.pct(15) {
				w.Ip = g.requestIP(s, w.Node)
			}
			wls[model.WorkloadKey(w.Network, w.Name)] = w
			what = append(what, "add workload "+w.Name)
		case r < odds[0]+odds[1]+odds[2]+odds[3]:
			if len(wls) == 0 {
				continue
			}
			k := pick(g, slices.Sorted(maps.Keys(wls)))
			delete(wls, k)
			what = append(what, "drop workload "+k)
		case r < odds[0]+odds[1]+odds[2]+odds[3]+odds[4]:
			if len(wls) == 0 {
				continue
			}
			k := pick(g, slices.Sorted(maps.Keys(wls)))
			wls[k].Node = g.pickNode(s)
			if g.pct(20) {
				wls[k].Ip = g.requestIP(s, wls[k].Node)
			}
			what = append(what, "move workload "+k)
		case r < odds[0]+odds[1]+odds[2]+odds[3]+odds[4]+odds[5]:
			if len(nets) == 0 {
				continue
			}
			n := nets[pick(g, slices.Sorted(maps.Keys(nets)))]
			n.Labels = map[string]string{"v": strconv.Itoa(g.rng.IntN(3))}
			what = append(what, "relabel network "+n.Name)
		default:
			// A second admin network is refused.
			nets["infra2"] = &sdnv1.Network{Name: "infra2", Admin: true, Origin: hclOrigin}
			what = append(what, "second admin network")
		}
	}
	what = append(what, g.mutatePolicies(pols, nets)...)
	req := &sdnv1.ApplyRequest{Prune: true}
	for _, k := range slices.Sorted(maps.Keys(nets)) {
		req.Networks = append(req.Networks, nets[k])
	}
	for _, k := range slices.Sorted(maps.Keys(pols)) {
		req.Policies = append(req.Policies, pols[k])
	}
	for _, k := range slices.Sorted(maps.Keys(wls)) {
		req.Workloads = append(req.Workloads, wls[k])
	}
	if g.pct(10) {
		req.Cluster = &sdnv1.ClusterSettings{Cidr: s.settings.Cidr, HostPrefix: s.settings.HostPrefix}
	}
	return genCmd{command.ApplyConfig, req, "apply: " + strings.Join(what, ", ")}
}

var genApps = []string{"a", "b", "c"}

// mutatePolicies adds a policy (of a network of the request, or
// cluster-wide) or drops one, sometimes. A policy of a network the
// request drops makes the apply refused, as it should.
func (g *fsmGen) mutatePolicies(pols map[string]*sdnv1.Policy, nets map[string]*sdnv1.Network) []string {
	var what []string
	if g.pct(25) {
		g.seq++
		p := &sdnv1.Policy{Name: fmt.Sprintf("pol%d", g.seq), Priority: int32(g.rng.IntN(3)) * 100, Origin: hclOrigin, Isolate: []string{"ingress"},
			Workloads: &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": pick(g, genApps)}}}
		peer := &sdnv1.PolicyPeer{Workloads: &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": pick(g, genApps)}}}
		if g.pct(30) {
			peer.Networks = &sdnv1.LabelSelector{MatchLabels: map[string]string{"v": strconv.Itoa(g.rng.IntN(3))}}
		}
		p.Ingress = []*sdnv1.PolicyRule{{Peers: []*sdnv1.PolicyPeer{peer}, Ports: []*sdnv1.PolicyPort{{Name: "http"}}}}
		if len(nets) > 0 && g.pct(70) {
			p.Network = pick(g, slices.Sorted(maps.Keys(nets)))
		}
		pols[model.PolicyKey(p)] = p
		what = append(what, "add policy "+model.PolicyKey(p))
	}
	if len(pols) > 0 && g.pct(15) {
		k := pick(g, slices.Sorted(maps.Keys(pols)))
		delete(pols, k)
		what = append(what, "drop policy "+k)
	}
	return what
}

// label relabels a workload (sometimes one that does not exist).
func (g *fsmGen) label(s *genState) genCmd {
	req := &sdnv1.LabelWorkloadRequest{Network: "p00", Name: "nosuch", Set: map[string]string{"app": pick(g, genApps)}}
	if len(s.wls) > 0 && g.pct(95) {
		w := pick(g, s.wls)
		req.Network, req.Name = w.Network, w.Name
	}
	if g.pct(20) {
		req.Set, req.Remove = nil, []string{"app"}
	}
	return genCmd{command.LabelWorkload, req, "label"}
}

func (g *fsmGen) attach(s *genState) genCmd {
	if g.pct(5) {
		// A runtime retrying ADD: the same owner gets the same workload.
		var cni []*sdnv1.Workload
		for _, w := range s.wls {
			if w.GetOrigin().GetKind() == sdnv1.OriginKind_ORIGIN_KIND_CNI {
				cni = append(cni, w)
			}
		}
		if len(cni) > 0 {
			w := pick(g, cni)
			return genCmd{command.AttachWorkload, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{
				Name: w.Name, Network: w.Network, Node: w.Node, Origin: proto.Clone(w.Origin).(*sdnv1.Origin)}}, "retried CNI ADD"}
		}
	}
	g.seq++
	w := &sdnv1.Workload{Name: fmt.Sprintf("a%d", g.seq), Node: g.pickNode(s)}
	if len(s.nets) > 0 && g.pct(92) {
		w.Network = pick(g, s.nets).Name
	} else {
		w.Network = networkName(g.rng.IntN(genNetworks))
	}
	if g.pct(3) && len(s.wls) > 0 {
		w.Name = pick(g, s.wls).Name // may clash with an existing name
	}
	if g.pct(60) {
		w.Origin = &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_CNI, ContainerId: fmt.Sprintf("c%d", g.seq), Ifname: "eth0"}
	}
	if g.pct(10) {
		w.Ip = g.requestIP(s, w.Node)
	}
	return genCmd{command.AttachWorkload, &sdnv1.AttachWorkloadRequest{Workload: w}, "attach"}
}

func (g *fsmGen) detach(s *genState) genCmd {
	if len(s.wls) == 0 || g.pct(5) {
		return genCmd{command.DetachWorkload, &sdnv1.DetachWorkloadRequest{Network: networkName(0), Name: "nobody"}, "detach a workload that is not there"}
	}
	w := pick(g, s.wls)
	key := model.WorkloadKey(w.Network, w.Name)
	switch r := g.rng.IntN(100); {
	case r < 40:
		return genCmd{command.DetachWorkload, &sdnv1.DetachWorkloadRequest{Network: w.Network, Name: w.Name}, "detach " + key}
	case r < 70 && w.GetOrigin().GetContainerId() != "":
		return genCmd{command.DetachWorkload, &sdnv1.DetachWorkloadRequest{ContainerId: w.Origin.ContainerId, Ifname: w.Origin.Ifname}, "CNI DEL " + key}
	default:
		return genCmd{command.Delete, &sdnv1.DeleteRequest{Kind: "workload", Name: key}, "delete " + key}
	}
}

func (g *fsmGen) register(s *genState) genCmd {
	i := g.rng.IntN(genNodes)
	if g.pct(25) {
		i = g.rng.IntN(genHot)
	}
	req := &sdnv1.RegisterNodeRequest{Name: nodeName(i), UnderlayIp: underlay(i), UnderlayMtu: 1500}
	switch r := g.rng.IntN(100); {
	case r < 2:
		req.UnderlayMtu = 1400 // too small once the cluster MTU is 1450
	case r < 4:
		req.UnderlayIp = underlay((i + 1) % genNodes) // another host's
	case r < 8:
		req.Labels = map[string]string{"rack": strconv.Itoa(g.rng.IntN(4))}
	}
	return genCmd{command.RegisterNode, req, "register " + req.Name}
}

func (g *fsmGen) removeNode(s *genState) genCmd {
	name := nodeName(g.rng.IntN(genNodes))
	if len(s.nodes) > 0 && g.pct(95) {
		name = pick(g, s.nodes).Name
		if nodeIndex(name) < genHot && g.mood != moodDrain && g.pct(80) {
			name = pick(g, s.nodes).Name // hot hosts mostly stay
		}
	}
	if g.pct(50) {
		return genCmd{command.RemoveNode, &sdnv1.RemoveNodeRequest{Name: name}, "remove node " + name}
	}
	return genCmd{command.Delete, &sdnv1.DeleteRequest{Kind: "node", Name: name}, "delete node " + name}
}

// liveness drains and undrains hosts, marks them down and up (at times
// derived from the step, as the leader's clock would be), and releases down
// ones, sometimes with a stale down-since time (refused).
func (g *fsmGen) liveness(s *genState) genCmd {
	name := g.pickNode(s)
	n := s.nodeByNm[name]
	at := int64(1772366400000) + int64(g.step)*1000
	switch r := g.rng.IntN(100); {
	case r < 30:
		// Hot hosts are only undrained, so their blocks still fill.
		drain := nodeIndex(name) >= genHot && g.pct(50)
		return genCmd{command.DrainNode, &sdnv1.DrainNodeRequest{Name: name, Drain: drain}, fmt.Sprintf("drain %s: %t", name, drain)}
	case r < 60:
		return genCmd{command.SetNodeLiveness, &sdnv1.SetNodeLivenessRequest{Name: name, Down: true, AtUnixMs: at}, "mark down " + name}
	case r < 85:
		return genCmd{command.SetNodeLiveness, &sdnv1.SetNodeLivenessRequest{Name: name, Down: false, AtUnixMs: at}, "mark up " + name}
	default:
		since := n.GetDownSinceUnixMs()
		if g.pct(20) {
			since = at // stale: refused
		}
		return genCmd{command.ReleaseNode, &sdnv1.ReleaseNodeRequest{Name: name, DownSinceUnixMs: since}, "release " + name}
	}
}

func (g *fsmGen) deleteNetwork(s *genState) genCmd {
	name := networkName(g.rng.IntN(genNetworks))
	if len(s.nets) > 0 && g.pct(80) {
		name = pick(g, s.nets).Name
	}
	return genCmd{command.Delete, &sdnv1.DeleteRequest{Kind: "network", Name: name}, "delete network " + name}
}

// changeSettings asks for one of two cluster CIDRs: refused while hosts hold
// subnets, accepted (replacing the subnet pool) when none do.
func (g *fsmGen) changeSettings(s *genState) genCmd {
	c := genSettings
	if s.settings.Cidr == genSettings.Cidr {
		c = genSettingsAlt
	}
	return genCmd{command.ApplyConfig, &sdnv1.ApplyRequest{Cluster: proto.Clone(c).(*sdnv1.ClusterSettings)}, "change cluster CIDR to " + c.Cidr}
}

func (g *fsmGen) compact(s *genState) genCmd {
	return genCmd{command.Compact, &sdnv1.CompactRequest{Revision: s.revision / 2}, "compact"}
}

// randomRun drives one FSM with one generator and checks after every step.
type randomRun struct {
	t       *testing.T
	tf      *testFSM
	gen     *fsmGen
	vnidCap uint64
	stats   map[string]int
}

func (rr *randomRun) step() {
	t, tf := rr.t, rr.tf
	t.Helper()
	var cmd genCmd
	var before []string
	var beforeRev uint64
	tf.view(func(tx *state.Tx) { cmd = rr.gen.next(tx); before = tx.Dump(); beforeRev = tx.Meta().Revision })
	r := tf.apply(cmd.typ, cmd.msg)
	step := rr.gen.step
	after := tf.dump()
	if got := tf.f.AppliedIndex(); got != tf.index {
		t.Fatalf("step %d: applied index %d after entry %d", step, got, tf.index)
	}
	switch {
	case r.Err != nil:
		rr.stats["refused"]++
		if !slices.Equal(before, after) {
			t.Fatalf("step %d: refused %v\nchanged the state (%v):\n%s", step, cmd, r.Err, diffLines(before, after))
		}
		if r.Revision != beforeRev {
			t.Fatalf("step %d: refused %v reports revision %d, want %d", step, cmd, r.Revision, beforeRev)
		}
		var kinds []string
		var err error
		tf.view(func(tx *state.Tx) { kinds, err = checkExhausted(tx, r.Err, rr.vnidCap) })
		if err != nil {
			t.Fatalf("step %d: %v: %v", step, cmd, err)
		}
		for _, k := range kinds {
			rr.stats["full "+k]++
		}
	case len(r.Changes) == 0:
		rr.stats["no-op"]++
		if !slices.Equal(before, after) {
			t.Fatalf("step %d: %v reported no change but changed the state:\n%s", step, cmd, diffLines(before, after))
		}
	default:
		rr.stats["changed"]++
		if r.Revision != beforeRev+1 {
			t.Fatalf("step %d: %v changed the state at revision %d, want %d", step, cmd, r.Revision, beforeRev+1)
		}
		for _, c := range r.Changes {
			switch c.Op {
			case sdnv1.ChangeOp_CHANGE_OP_CREATE:
				rr.stats["created "+c.Kind]++
			case sdnv1.ChangeOp_CHANGE_OP_DELETE:
				rr.stats["deleted "+c.Kind]++
			}
			if c.Kind == "cluster" && slices.ContainsFunc(c.Details, func(d string) bool { return strings.HasPrefix(d, "cidr:") }) {
				rr.stats["cidr changed"]++
			}
		}
	}
	// What a command returns is what it stored.
	tf.view(func(tx *state.Tx) {
		if r.Workload != nil {
			if w, _ := tx.Workload(r.Workload.Network, r.Workload.Name); !proto.Equal(w, r.Workload) {
				t.Fatalf("step %d: %v returned workload %v, stored %v", step, cmd, r.Workload, w)
			}
		}
		if r.Node != nil {
			if n, _ := tx.Node(r.Node.Name); !proto.Equal(n, r.Node) {
				t.Fatalf("step %d: %v returned node %v, stored %v", step, cmd, r.Node, n)
			}
		}
		if err := checkAllocations(tx); err != nil {
			t.Fatalf("step %d (%s mood): after %v (result %v): %v", step, rr.gen.mood, cmd, r.Err, err)
		}
		c := tx.Counts()
		rr.stats["max workloads"] = max(rr.stats["max workloads"], c["workloads"])
		rr.stats["max nodes"] = max(rr.stats["max nodes"], c["nodes"])
		rr.stats["max networks"] = max(rr.stats["max networks"], c["networks"])
	})
	// Rebuilding the allocators costs a 2 MiB VNID bitset, so not every
	// step: a leaked allocation stays leaked until the next check.
	if step%20 == 0 || (r.Err != nil && r.Err.Code == CodeExhausted) {
		if err := checkPoolsMatchStore(tf.f); err != nil {
			t.Fatalf("step %d: after %v (result %v): %v", step, cmd, r.Err, err)
		}
	}
}

// diffLines shows the lines only in a or only in b.
func diffLines(a, b []string) string {
	var out []string
	for _, l := range a {
		if !slices.Contains(b, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range b {
		if !slices.Contains(a, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRandomAllocationNeverDuplicates is the acceptance test: thousands of
// networks, hosts and workloads allocated and freed in random order through
// the FSM never produce a duplicate, every refusal changes nothing, and every
// pool that runs dry says which it is, its size and what to do.
func TestRandomAllocationNeverDuplicates(t *testing.T) {
	seeds := []uint64{1, 2, 3, 42, 2026}
	steps := 1200
	if testing.Short() {
		seeds = []uint64{3} // fills every pool within its steps
	}
	const vnidCap = 16
	total := map[string]int{}
	start := time.Now()
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			tf := newTestFSM(t)
			shrinkVNIDs(t, tf.f, vnidCap)
			tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Cluster: proto.Clone(genSettings).(*sdnv1.ClusterSettings)})
			rr := &randomRun{t: t, tf: tf, gen: newFSMGen(seed), vnidCap: vnidCap, stats: map[string]int{}}
			for range steps {
				rr.step()
			}
			if err := checkPoolsMatchStore(tf.f); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d commands: %v", steps, rr.stats)
			for k, v := range rr.stats {
				if strings.HasPrefix(k, "max ") {
					total[k] = max(total[k], v)
				} else {
					total[k] += v
				}
			}
		})
	}
	t.Logf("%d commands over %d seeds in %v: %v", steps*len(seeds), len(seeds), time.Since(start).Round(time.Millisecond), total)
	// The run is only worth something if every pool filled up and the
	// refusal paths ran.
	for _, k := range []string{"full vnid", "full subnet", "full ip", "cidr changed", "refused", "changed"} {
		if total[k] == 0 {
			t.Errorf("no %q in %d random commands; the generator no longer reaches it", k, steps*len(seeds))
		}
	}
}

// TestExhaustedSubnets: a /22 carved into /23s holds two hosts; the third is
// refused with the pool, its size and the fix, changing nothing, and gets the
// first host's block once that host is removed.
func TestExhaustedSubnets(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{
		Cluster:   &sdnv1.ClusterSettings{Cidr: "10.128.0.0/22", HostPrefix: 23},
		Networks:  []*sdnv1.Network{{Name: "proj1"}},
		Workloads: []*sdnv1.Workload{{Name: "db", Network: "proj1", Node: "n3"}},
	})
	if r := tf.mustApply(command.RegisterNode, register("n1", "198.18.0.1", 1500)); r.Node.Subnet != "10.128.0.0/23" {
		t.Fatalf("n1 got %s", r.Node.Subnet)
	}
	if r := tf.mustApply(command.RegisterNode, register("n2", "198.18.0.2", 1500)); r.Node.Subnet != "10.128.2.0/23" {
		t.Fatalf("n2 got %s", r.Node.Subnet)
	}
	before := tf.dump()
	r := tf.apply(command.RegisterNode, register("n3", "198.18.0.3", 1500))
	const want = "node n3: allocate a subnet: cluster CIDR 10.128.0.0/22 is full (2 of 2 /23s used); widen cluster.cidr or remove stale nodes"
	if r.Err == nil || r.Err.Code != CodeExhausted || r.Err.Error() != want {
		t.Fatalf("third host:\n got %v\nwant %s", r.Err, want)
	}
	if len(r.Err.Violations) != 1 || r.Err.Violations[0].Kind != "node" || r.Err.Violations[0].Name != "n3" {
		t.Fatalf("violations %v, want one on node n3", r.Err.Violations)
	}
	if after := tf.dump(); !slices.Equal(before, after) {
		t.Fatalf("refused registration changed the state:\n%s", diffLines(before, after))
	}
	if err := checkPoolsMatchStore(tf.f); err != nil {
		t.Fatal(err)
	}

	tf.mustApply(command.RemoveNode, &sdnv1.RemoveNodeRequest{Name: "n1"})
	r = tf.mustApply(command.RegisterNode, register("n3", "198.18.0.3", 1500))
	if r.Node.Subnet != "10.128.0.0/23" {
		t.Fatalf("n3 got %s after n1 left, want n1's 10.128.0.0/23", r.Node.Subnet)
	}
	tf.view(func(tx *state.Tx) {
		if w, _ := tx.Workload("proj1", "db"); w.Pending != "" || w.Ip != "10.128.0.2" {
			t.Fatalf("workload waiting for n3: %v", w)
		}
		if err := checkAllocations(tx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestExhaustedAddresses: a /29 host block has eight addresses, of which the
// network address, the gateway and the broadcast address are never handed
// out: five workloads fit, the sixth is refused (by attach and by apply),
// and a freed address is the next one handed out.
func TestExhaustedAddresses(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{
		Cluster:  &sdnv1.ClusterSettings{Cidr: "10.128.0.0/24", HostPrefix: 29},
		Networks: []*sdnv1.Network{{Name: "proj1"}},
	})
	if r := tf.mustApply(command.RegisterNode, register("n1", "198.18.0.1", 1500)); r.Node.Subnet != "10.128.0.0/29" || r.Node.GatewayIp != "10.128.0.1" {
		t.Fatalf("n1 = %v", r.Node)
	}
	attach := func(name string, ip string) *Result {
		return tf.apply(command.AttachWorkload, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{Name: name, Network: "proj1", Node: "n1", Ip: ip}})
	}
	for i, want := range []string{"10.128.0.2", "10.128.0.3", "10.128.0.4", "10.128.0.5", "10.128.0.6"} {
		r := attach(fmt.Sprintf("w%d", i+1), "")
		if r.Err != nil || r.Workload.Ip != want {
			t.Fatalf("w%d: %v %v, want %s", i+1, r.Workload, r.Err, want)
		}
	}
	before := tf.dump()
	const full = "node n1's subnet 10.128.0.0/29 is full (5 of 5 addresses used); delete unused workloads on this node or run new ones on another node"
	r := attach("w6", "")
	if want := "workload proj1/w6: allocate an address on node n1: " + full; r.Err == nil || r.Err.Code != CodeExhausted || r.Err.Error() != want {
		t.Fatalf("sixth workload:\n got %v\nwant %s", r.Err, want)
	}
	// The same through an apply, together with a new network: the whole
	// apply is refused, the new network's VNID included.
	r = tf.apply(command.ApplyConfig, &sdnv1.ApplyRequest{
		Networks:  []*sdnv1.Network{{Name: "proj1"}, {Name: "proj2"}},
		Workloads: []*sdnv1.Workload{{Name: "s1", Network: "proj2", Node: "n1"}, {Name: "s2", Network: "proj2", Node: "n1"}},
	})
	if r.Err == nil || r.Err.Code != CodeExhausted || len(r.Err.Violations) != 2 {
		t.Fatalf("apply onto a full host: %v", r.Err)
	}
	for i, v := range r.Err.Violations {
		if want := "allocate an address on node n1: " + full; v.Message != want || v.Name != fmt.Sprintf("proj2/s%d", i+1) || v.Field != "ip" {
			t.Fatalf("violation %d: %v\nwant message %s", i, v, want)
		}
	}
	// Reserved and taken addresses are refused by name, not as "full".
	for ip, want := range map[string]string{
		"10.128.0.0": "is the network address of node n1's subnet 10.128.0.0/29 and is never assigned",
		"10.128.0.1": "is the gateway of node n1's subnet 10.128.0.0/29 and is never assigned",
		"10.128.0.7": "is the broadcast address of node n1's subnet 10.128.0.0/29 and is never assigned",
		"10.128.0.4": "10.128.0.4 is already in use in node n1's subnet 10.128.0.0/29",
		"10.128.0.9": "is outside subnet 10.128.0.0/29",
	} {
		r := attach("x", ip)
		if r.Err == nil || !strings.Contains(r.Err.Error(), want) {
			t.Fatalf("requesting %s: %v, want %q", ip, r.Err, want)
		}
	}
	if after := tf.dump(); !slices.Equal(before, after) {
		t.Fatalf("refusals changed the state:\n%s", diffLines(before, after))
	}
	if err := checkPoolsMatchStore(tf.f); err != nil {
		t.Fatal(err)
	}
	// Freeing one makes room for exactly one.
	tf.mustApply(command.DetachWorkload, &sdnv1.DetachWorkloadRequest{Network: "proj1", Name: "w3"})
	if r := attach("w7", ""); r.Err != nil || r.Workload.Ip != "10.128.0.4" {
		t.Fatalf("after freeing 10.128.0.4: %v %v", r.Workload, r.Err)
	}
	if r := attach("w8", ""); r.Err == nil || r.Err.Code != CodeExhausted {
		t.Fatalf("full again: %v", r.Err)
	}
	// A VNID was not leaked by the refused apply: proj2 gets the next one.
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}, {Name: "proj2"}}})
	tf.view(func(tx *state.Tx) {
		p1, _ := tx.Network("proj1")
		p2, _ := tx.Network("proj2")
		if p2.Vnid != p1.Vnid+1 {
			t.Fatalf("VNIDs proj1=%d proj2=%d: a refused apply leaked one", p1.Vnid, p2.Vnid)
		}
	})

	// Seven workloads declared for a host that has not registered: when it
	// registers, five get addresses and two wait, saying why.
	req := &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}, {Name: "proj2"}}}
	for i := 1; i <= 7; i++ {
		req.Workloads = append(req.Workloads, &sdnv1.Workload{Name: fmt.Sprintf("s%d", i), Network: "proj2", Node: "n2"})
	}
	tf.mustApply(command.ApplyConfig, req)
	if r := tf.mustApply(command.RegisterNode, register("n2", "198.18.0.2", 1500)); r.Node.Subnet != "10.128.0.8/29" {
		t.Fatalf("n2 = %v", r.Node)
	}
	tf.view(func(tx *state.Tx) {
		for i := 1; i <= 7; i++ {
			w, _ := tx.Workload("proj2", fmt.Sprintf("s%d", i))
			switch {
			case i <= 5 && (w.Pending != "" || w.Ip != fmt.Sprintf("10.128.0.%d", 8+i+1)):
				t.Fatalf("s%d: %v", i, w)
			case i > 5 && w.Pending != "allocate an address on node n2: node n2's subnet 10.128.0.8/29 is full (5 of 5 addresses used); delete unused workloads on this node or run new ones on another node":
				t.Fatalf("s%d waits with %q", i, w.Pending)
			}
		}
		if err := checkAllocations(tx); err != nil {
			t.Fatal(err)
		}
	})
	if err := checkPoolsMatchStore(tf.f); err != nil {
		t.Fatal(err)
	}
}

// TestExhaustedVNIDs runs the FSM on a VNID pool of three (see shrinkVNIDs):
// the fourth network is refused with the pool, its size and the fix, the
// whole apply with it, and a network deleted in the same apply frees its
// VNID only if the apply goes through.
func TestExhaustedVNIDs(t *testing.T) {
	tf := newTestFSM(t)
	shrinkVNIDs(t, tf.f, 3)
	nets := func(names ...string) []*sdnv1.Network {
		var out []*sdnv1.Network
		for _, n := range names {
			out = append(out, &sdnv1.Network{Name: n, Admin: n == "infra"})
		}
		return out
	}
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: nets("a", "b", "c", "infra"), Prune: true})
	vnids := func() map[string]uint32 {
		m := map[string]uint32{}
		tf.view(func(tx *state.Tx) {
			for _, n := range tx.Networks() {
				m[n.Name] = n.Vnid
			}
		})
		return m
	}
	if got, want := vnids(), map[string]uint32{"a": 1, "b": 2, "c": 3, "infra": 0}; !maps.Equal(got, want) {
		t.Fatalf("VNIDs %v, want %v", got, want)
	}
	before := tf.dump()
	r := tf.apply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: nets("a", "b", "c", "d", "infra"), Prune: true})
	const want = "network d: allocate a VNID: VNID space 1-3 is full (3 of 3 VNIDs used); delete unused networks"
	if r.Err == nil || r.Err.Code != CodeExhausted || r.Err.Error() != want {
		t.Fatalf("fourth network:\n got %v\nwant %s", r.Err, want)
	}
	// Pruning a frees VNID 1 for x, but y finds none: nothing happens, a
	// keeps its VNID.
	r = tf.apply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: nets("b", "c", "infra", "x", "y"), Prune: true})
	if r.Err == nil || r.Err.Code != CodeExhausted || !strings.Contains(r.Err.Error(), "network y: allocate a VNID: VNID space 1-3 is full (3 of 3 VNIDs used)") {
		t.Fatalf("two new networks for one free VNID: %v", r.Err)
	}
	if after := tf.dump(); !slices.Equal(before, after) {
		t.Fatalf("refusals changed the state:\n%s", diffLines(before, after))
	}
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: nets("b", "c", "infra", "x"), Prune: true})
	tf.mustApply(command.Delete, &sdnv1.DeleteRequest{Kind: "network", Name: "b"})
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: nets("c", "infra", "x", "z")})
	if got, want := vnids(), map[string]uint32{"c": 3, "infra": 0, "x": 1, "z": 2}; !maps.Equal(got, want) {
		t.Fatalf("VNIDs %v, want %v", got, want)
	}
	tf.view(func(tx *state.Tx) {
		if err := checkAllocations(tx); err != nil {
			t.Fatal(err)
		}
	})
}
