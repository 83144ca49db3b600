package feed

import (
	"maps"
	"slices"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// chunkCache holds the part of a snapshot every host receives (cluster,
// networks, nodes), cut into chunks, for one version of it.
type chunkCache struct {
	shared        uint64 // index.shared it was made at
	maxN, maxSize int
	chunks        [][][]byte
}

// Snapshot renders the whole state host needs, at the feed's revision, as
// SNAPSHOT messages of at most maxN changes and maxBytes each (one bigger
// change alone); the last has snapshot_done. The part every host receives
// is cut once per version and shared by every snapshot.
func (w *Watcher) Snapshot(reason string, maxN, maxBytes int) (msgs []*Message, rev uint64) {
	f := w.f
	f.mu.Lock()
	defer f.mu.Unlock()
	w.epoch = f.epoch
	shared := f.sharedChunks(maxN, maxBytes)
	own := chunk(f.x.hostWires(w.host), maxN, maxBytes)
	all := append(slices.Clip(shared), own...)
	if len(all) == 0 {
		all = [][][]byte{nil}
	}
	for i, c := range all {
		h := header{typ: sdnv1.WatchEventType_WATCH_EVENT_TYPE_SNAPSHOT, rev: f.rev, reason: reason, clusterID: f.clusterID, done: i == len(all)-1}
		m := newMessage(h)
		for _, wire := range c {
			m.add(wire)
		}
		m.Changes = len(c)
		msgs = append(msgs, m)
	}
	return msgs, f.rev
}

// sharedChunks returns the cached chunks of what every host receives,
// cutting them anew when that changed.
func (f *Feed) sharedChunks(maxN, maxBytes int) [][][]byte {
	c := f.chunks
	if c != nil && c.shared == f.x.shared && c.maxN == maxN && c.maxSize == maxBytes {
		return c.chunks
	}
	x := f.x
	var wires [][]byte
	if x.cluster != nil {
		wires = append(wires, x.cluster)
	}
	for _, m := range []map[string][]byte{x.networks, x.nodes, x.services, x.endpoints} {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			wires = append(wires, m[k])
		}
	}
	f.chunks = &chunkCache{shared: x.shared, maxN: maxN, maxSize: maxBytes, chunks: chunk(wires, maxN, maxBytes)}
	return f.chunks.chunks
}

// hostWires are the encoded objects only host receives: its workloads,
// the policies whose span includes it and the address groups whose nodes
// include it, in key order.
func (x *index) hostWires(host string) [][]byte {
	var out [][]byte
	ws := x.byNode[host]
	for _, k := range slices.Sorted(maps.Keys(ws)) {
		out = append(out, ws[k])
	}
	for _, k := range slices.Sorted(maps.Keys(x.polsByHost[host])) {
		out = append(out, x.pols[k].wire)
	}
	for _, k := range slices.Sorted(maps.Keys(x.groups)) {
		if g := x.groups[k]; slices.Contains(g.nodes, host) { // sorted, but short
			out = append(out, g.wire)
		}
	}
	return out
}

// chunk cuts wires into chunks of at most maxN and maxBytes.
func chunk(wires [][]byte, maxN, maxBytes int) [][][]byte {
	var out [][][]byte
	start, size := 0, 0
	for i, w := range wires {
		if i > start && (i-start == maxN || size+len(w) > maxBytes) {
			out = append(out, wires[start:i:i])
			start, size = i, 0
		}
		size += len(w)
	}
	if start < len(wires) {
		out = append(out, wires[start:len(wires):len(wires)])
	}
	return out
}
