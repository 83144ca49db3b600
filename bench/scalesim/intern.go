package scalesim

import (
	"hash/maphash"
	"sync"

	"google.golang.org/protobuf/proto"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// interner shares equal node objects between hosts. Every host receives
// every node, so N hosts hold N² node objects unless equal ones are one:
// the interner keeps the latest version of each node seen, and a host that
// receives an equal one keeps the shared object instead (and its name as
// the map key). Shared objects are never modified.
type interner struct {
	seed   maphash.Seed
	shards [64]internShard
}

type internShard struct {
	mu    sync.Mutex
	nodes map[string]*sdnv1.Node
}

func newInterner() *interner {
	in := &interner{seed: maphash.MakeSeed()}
	for i := range in.shards {
		in.shards[i].nodes = map[string]*sdnv1.Node{}
	}
	return in
}

// node returns the shared node equal to n, which becomes the shared one
// when there is none (or the shared one differs: a newer version).
func (in *interner) node(n *sdnv1.Node) *sdnv1.Node {
	sh := &in.shards[maphash.String(in.seed, n.Name)%uint64(len(in.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if have := sh.nodes[n.Name]; have != nil && proto.Equal(have, n) {
		return have
	}
	sh.nodes[n.Name] = n
	return n
}

// changes replaces the nodes of cs by their shared objects, and their
// change names by the shared nodes' names (Desired keys its maps by them).
func (in *interner) changes(cs []*sdnv1.ObjectChange) {
	for _, c := range cs {
		if c.Node != nil && c.Node.Name == c.Name {
			c.Node = in.node(c.Node)
			c.Name = c.Node.Name
		}
	}
}
