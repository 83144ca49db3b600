package scalesim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Expected is what every host should hold at one revision, read from the
// leader with linearizable lists: every network and node, and per host its
// own workloads.
type Expected struct {
	Revision  uint64
	Networks  map[string]*sdnv1.Network
	Nodes     map[string]*sdnv1.Node
	Workloads map[string]map[string]*sdnv1.Workload // by node, then model.WorkloadKey
	// base is the last revision that changed a network or node still
	// there (their highest mod_revision).
	base uint64
}

// NewExpected builds an Expected from lists.
func NewExpected(rev uint64, networks []*sdnv1.Network, nodes []*sdnv1.Node, workloads []*sdnv1.Workload) *Expected {
	e := &Expected{Revision: rev, Networks: map[string]*sdnv1.Network{}, Nodes: map[string]*sdnv1.Node{}, Workloads: map[string]map[string]*sdnv1.Workload{}}
	for _, n := range networks {
		e.Networks[n.Name] = n
		e.base = max(e.base, n.ModRevision)
	}
	for _, n := range nodes {
		e.Nodes[n.Name] = n
		e.base = max(e.base, n.ModRevision)
	}
	for _, w := range workloads {
		if e.Workloads[w.Node] == nil {
			e.Workloads[w.Node] = map[string]*sdnv1.Workload{}
		}
		e.Workloads[w.Node][model.WorkloadKey(w.Network, w.Name)] = w
	}
	return e
}

// FetchExpected reads networks, nodes and workloads with linearizable
// lists (the leader answers, wherever conn leads), again until the three
// reflect one revision.
func FetchExpected(ctx context.Context, conn grpc.ClientConnInterface) (*Expected, error) {
	cfg := sdnv1.NewConfigServiceClient(conn)
	var revs [3]uint64
	for try := 0; try < 20; try++ {
		var lists [3]*sdnv1.ListResponse
		for i, kind := range []string{"networks", "nodes", "workloads"} {
			l, err := listAll(ctx, cfg, kind)
			if err != nil {
				return nil, err
			}
			lists[i], revs[i] = l, l.Revision
		}
		if revs[0] == revs[1] && revs[1] == revs[2] {
			return NewExpected(revs[0], lists[0].Networks, lists[1].Nodes, lists[2].Workloads), nil
		}
		sleep(ctx, 200*time.Millisecond)
	}
	return nil, fmt.Errorf("lists of networks, nodes and workloads never reflected one revision (last at %v): the state keeps changing", revs)
}

// listAll reads one kind through ListStream, its pages joined.
func listAll(ctx context.Context, cfg sdnv1.ConfigServiceClient, kind string) (*sdnv1.ListResponse, error) {
	st, err := cfg.ListStream(ctx, &sdnv1.ListRequest{Kind: kind})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", kind, err)
	}
	all := &sdnv1.ListResponse{}
	for {
		p, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return all, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", kind, err)
		}
		all.Revision = p.Revision
		all.Networks = append(all.Networks, p.Networks...)
		all.Nodes = append(all.Nodes, p.Nodes...)
		all.Workloads = append(all.Workloads, p.Workloads...)
	}
}

// Mismatch is a host whose state differs from the expected one.
type Mismatch struct {
	Host string
	Diff string // the first difference found
}

// Diff returns the first difference between what host holds (d) and what
// it should hold, or "" when there is none. Nodes are compared on name,
// underlay_ip, underlay_mtu, subnet and gateway_ip (what the filtered
// watch keeps of them), networks on name, vnid, admin and labels,
// workloads on name, network, node, ip, mac, vnid, labels and named ports.
// d's revision must be at least the last revision that changed any of
// those.
func (e *Expected) Diff(host string, d *model.Desired) string {
	if s := diffMaps("network", e.Networks, d.Networks, networkEqual); s != "" {
		return s
	}
	if s := diffMaps("node", e.Nodes, d.Nodes, nodeEqual); s != "" {
		return s
	}
	own := e.Workloads[host]
	if s := diffMaps("workload", own, d.Workloads, workloadEqual); s != "" {
		return s
	}
	need := e.base
	for _, w := range own {
		need = max(need, w.ModRevision)
	}
	if d.Revision < need {
		return fmt.Sprintf("revision %d, but revision %d changed what it holds", d.Revision, need)
	}
	return ""
}

// diffMaps returns the first key (in order) missing, extra or different in
// have, described, or "".
func diffMaps[T any](kind string, want, have map[string]*T, eq func(a, b *T) bool) string {
	for _, k := range slices.Sorted(maps.Keys(want)) {
		h, ok := have[k]
		switch {
		case !ok:
			return fmt.Sprintf("%s %s missing", kind, k)
		case !eq(want[k], h):
			return fmt.Sprintf("%s %s differs: has %v, want %v", kind, k, h, want[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(have)) {
		if _, ok := want[k]; !ok {
			return fmt.Sprintf("%s %s held but not in the state", kind, k)
		}
	}
	return ""
}

func nodeEqual(a, b *sdnv1.Node) bool {
	return a.Name == b.Name && a.UnderlayIp == b.UnderlayIp && a.UnderlayMtu == b.UnderlayMtu &&
		a.Subnet == b.Subnet && a.GatewayIp == b.GatewayIp
}

func networkEqual(a, b *sdnv1.Network) bool {
	return a.Name == b.Name && a.Vnid == b.Vnid && a.Admin == b.Admin && maps.Equal(a.Labels, b.Labels)
}

func workloadEqual(a, b *sdnv1.Workload) bool {
	return a.Name == b.Name && a.Network == b.Network && a.Node == b.Node && a.Ip == b.Ip && a.Mac == b.Mac &&
		a.Vnid == b.Vnid && maps.Equal(a.Labels, b.Labels) &&
		slices.EqualFunc(a.NamedPorts, b.NamedPorts, func(x, y *sdnv1.NamedPort) bool { return proto.Equal(x, y) })
}

// Verify compares every host's state with the expected one from conn
// (FetchExpected), again every second while some differ (hosts may still
// be catching up) until wait has passed, and returns the hosts that still
// differ.
func (s *Sim) Verify(ctx context.Context, conn grpc.ClientConnInterface, wait time.Duration) ([]Mismatch, *Expected, error) {
	deadline := time.Now().Add(wait)
	for {
		exp, err := FetchExpected(ctx, conn)
		if err != nil {
			return nil, nil, err
		}
		var bad []Mismatch
		for _, h := range s.hosts {
			var diff string
			h.View(func(d *model.Desired) { diff = exp.Diff(h.Name, d) })
			if diff != "" {
				bad = append(bad, Mismatch{Host: h.Name, Diff: diff})
			}
		}
		if len(bad) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return bad, exp, nil
		}
		sleep(ctx, time.Second)
	}
}
