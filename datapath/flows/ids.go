package flows

import (
	"hash/fnv"
	"slices"
)

// minID keeps rule ids clear of the low cookie categories the host
// datapath uses for its other flows (0: br-int, 1: br-phy).
const minID = 0x100

// idSet derives 32-bit ids from keys: a hash of the key, moved on to the
// next free value on a collision, in key order. An id depends on its key
// (and, rarely, on a colliding key), not on what else the host holds, so
// one policy's change leaves other policies' flows, and their counters,
// alone.
type idSet struct {
	keys map[string]bool
	ids  map[string]uint32
}

func newIDs() *idSet { return &idSet{keys: map[string]bool{}} }

func (s *idSet) want(k string) { s.keys[k] = true }

func (s *idSet) assign() {
	s.ids = make(map[string]uint32, len(s.keys))
	taken := make(map[uint32]bool, len(s.keys))
	keys := make([]string, 0, len(s.keys))
	for k := range s.keys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		h := fnv.New32a()
		h.Write([]byte(k))
		id := h.Sum32()
		for id < minID || taken[id] {
			id++
		}
		taken[id] = true
		s.ids[k] = id
	}
}

// of returns the id of a key passed to want before assign.
func (s *idSet) of(k string) uint32 {
	id, ok := s.ids[k]
	if !ok {
		panic("flows: no id for " + k)
	}
	return id
}
