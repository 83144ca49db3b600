package api

import (
	"context"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/cluster/fsm"
	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Lists (docs/design.md, "Message sizes and paging"). List answers a whole
// list in one message, as it always has, for older clients; a list over
// the client's message limit (gRPC's default is 4 MiB: 65,003 labelled
// networks were 7.5 MB) fails there. ListStream answers the same list in
// pages small enough for any client.
//
// Both read the list in one bbolt read transaction, so the pages of one
// ListStream are one snapshot at one revision. The transaction is closed
// before the pages go out: a slow client must not hold it open, because
// an open read transaction blocks a write that grows the file's memory map
// (bbolt), and with it every apply. The list waits in memory meanwhile, as
// List's answer always did.

// The bounds of one ListStream page: at most listPageBytes on the wire
// (one bigger object goes on a page of its own) and listPageObjects
// objects.
const (
	listPageBytes   = 1 << 20
	listPageObjects = 1000
)

// List reads objects of one kind, whole.
func (s *Server) List(ctx context.Context, req *sdnv1.ListRequest) (*sdnv1.ListResponse, error) {
	return s.list(ctx, req)
}

// ListStream reads objects of one kind, in pages of one snapshot.
func (s *Server) ListStream(req *sdnv1.ListRequest, stream grpc.ServerStreamingServer[sdnv1.ListResponse]) error {
	all, err := s.list(stream.Context(), req)
	if err != nil {
		return err
	}
	for _, p := range pages(all, listPageBytes, listPageObjects) {
		if err := stream.Send(p); err != nil {
			return err
		}
	}
	return nil
}

// list reads the objects a ListRequest asks for, in one read transaction.
func (s *Server) list(ctx context.Context, req *sdnv1.ListRequest) (*sdnv1.ListResponse, error) {
	kind, ok := model.ParseKind(req.Kind)
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "unknown kind %q; use cluster, networks, nodes, workloads, policies, addressgroups or services", req.Kind)
	}
	if err := s.read(ctx, req.Stale); err != nil {
		return nil, err
	}
	out := &sdnv1.ListResponse{}
	err := s.cluster.FSM().View(func(tx *state.Tx) error {
		out.Revision = tx.Meta().Revision
		switch kind {
		case model.KindCluster:
			out.Cluster = tx.Cluster()
			if out.Cluster == nil {
				out.Cluster = fsm.DefaultSettings()
			}
		case model.KindNetwork:
			out.Networks = tx.Networks()
		case model.KindNode:
			out.Nodes = tx.Nodes()
		case model.KindWorkload:
			for _, w := range tx.Workloads(req.Network) {
				if req.Node == "" || w.Node == req.Node {
					out.Workloads = append(out.Workloads, w)
				}
			}
		case model.KindPolicy:
			for _, p := range tx.Policies() {
				if req.Network == "" || p.Network == req.Network || req.Network == "-" && p.Network == "" {
					out.Policies = append(out.Policies, p)
				}
			}
		case model.KindAddressGroup:
			for _, g := range tx.AddressGroups() {
				if req.Node == "" || slices.Contains(g.Nodes, req.Node) {
					out.AddressGroups = append(out.AddressGroups, g)
				}
			}
		case model.KindService, model.KindServiceEndpoints:
			out.Services = tx.Services(req.Network)
			out.ServiceEndpoints = tx.AllServiceEndpoints(req.Network)
		}
		return nil
	})
	if err != nil {
		return nil, toStatus(err)
	}
	if kind == model.KindNode && !req.Stale {
		// Answered by the leader: add what its memory holds.
		for i, n := range out.Nodes {
			if t, ok := s.live.LastHeartbeat(n.Name); ok {
				n = proto.Clone(n).(*sdnv1.Node)
				n.LastHeartbeatUnixMs = t.UnixMilli()
				out.Nodes[i] = n
			}
		}
	}
	return out, nil
}

// pages splits a whole list into pages of at most maxBytes on the wire
// (an object bigger than that alone) and maxObjects objects. Every page
// carries the list's revision; every page but the last has more set; the
// cluster settings go on the first. An empty list is one page.
func pages(all *sdnv1.ListResponse, maxBytes, maxObjects int) []*sdnv1.ListResponse {
	p := &pager{rev: all.Revision, maxBytes: maxBytes, maxObjects: maxObjects}
	p.start()
	p.cur.Cluster = all.Cluster
	p.bytes += fieldSize(all.Cluster)
	for _, n := range all.Networks {
		pg := p.room(fieldSize(n))
		pg.Networks = append(pg.Networks, n)
	}
	for _, n := range all.Nodes {
		pg := p.room(fieldSize(n))
		pg.Nodes = append(pg.Nodes, n)
	}
	for _, w := range all.Workloads {
		pg := p.room(fieldSize(w))
		pg.Workloads = append(pg.Workloads, w)
	}
	for _, x := range all.Policies {
		pg := p.room(fieldSize(x))
		pg.Policies = append(pg.Policies, x)
	}
	for _, g := range all.AddressGroups {
		pg := p.room(fieldSize(g))
		pg.AddressGroups = append(pg.AddressGroups, g)
	}
	for _, v := range all.Services {
		pg := p.room(fieldSize(v))
		pg.Services = append(pg.Services, v)
	}
	for _, ep := range all.ServiceEndpoints {
		pg := p.room(fieldSize(ep))
		pg.ServiceEndpoints = append(pg.ServiceEndpoints, ep)
	}
	for _, pg := range p.out[:len(p.out)-1] {
		pg.More = true
	}
	return p.out
}

// pager fills pages one object at a time.
type pager struct {
	rev                  uint64
	maxBytes, maxObjects int
	out                  []*sdnv1.ListResponse
	cur                  *sdnv1.ListResponse
	bytes, objects       int
}

// pageOverhead is a page's size besides its objects: the revision and the
// more flag at their largest.
var pageOverhead = proto.Size(&sdnv1.ListResponse{Revision: ^uint64(0), More: true})

func (p *pager) start() {
	p.cur = &sdnv1.ListResponse{Revision: p.rev}
	p.out = append(p.out, p.cur)
	p.bytes, p.objects = pageOverhead, 0
}

// room returns the page the next object, of size bytes on the wire, goes
// on: the current one, or a new one when it is full.
func (p *pager) room(size int) *sdnv1.ListResponse {
	if p.objects > 0 && (p.objects == p.maxObjects || p.bytes+size > p.maxBytes) {
		p.start()
	}
	p.bytes += size
	p.objects++
	return p.cur
}

// fieldSize is the size of a message as a repeated field of ListResponse
// on the wire (their numbers are below 16: a one-byte tag); 0 for nil.
func fieldSize(m proto.Message) int {
	if m == nil || !m.ProtoReflect().IsValid() {
		return 0
	}
	return 1 + protowire.SizeBytes(proto.Size(m))
}
