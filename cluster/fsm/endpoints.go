package fsm

import (
	"cmp"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// A service's endpoints are derived in the FSM, as address groups are, so
// every replica holds the same ones at the same revision. Unlike groups
// they are derived incrementally: a new or changed service is matched
// against the workloads of its network; a changed workload against the
// services of its network only, each service's stored endpoints updated
// by that one workload. Only endpoint sets that changed are written and
// sent to the hosts.

// deriveEndpoints updates the endpoints the command's writes change.
func (e *exec) deriveEndpoints() error {
	if !e.write {
		return nil
	}
	full := map[string]bool{}    // services recomputed from their network's workloads
	gone := map[string]bool{}    // services deleted
	changed := map[string]bool{} // workload keys put or deleted
	for _, c := range e.events {
		switch model.Kind(c.Kind) {
		case model.KindService:
			key := model.ServiceKey(c.Service)
			if c.Op == sdnv1.ChangeOp_CHANGE_OP_DELETE {
				gone[key], full[key] = true, false
			} else {
				full[key], gone[key] = true, false
			}
		case model.KindWorkload:
			changed[c.Name] = true
		}
	}
	// A host marked down (or up again): its workloads leave (or rejoin)
	// the services they are endpoints of.
	for _, node := range e.liveness {
		if !e.tx.HasServices() {
			break
		}
		for _, w := range e.tx.Workloads("") {
			if w.Node == node && w.Pending == "" {
				changed[model.WorkloadKey(w.Network, w.Name)] = true
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(gone)) {
		if gone[key] {
			if err := e.dropEndpoints(key); err != nil {
				return err
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(full)) {
		if full[key] {
			if err := e.recomputeEndpoints(key); err != nil {
				return err
			}
		}
	}
	if len(changed) == 0 || !e.tx.HasServices() {
		return nil
	}
	return e.updateEndpoints(slices.Sorted(maps.Keys(changed)), full)
}

// recomputeEndpoints derives one service's endpoints from every workload
// of its network.
func (e *exec) recomputeEndpoints(key string) error {
	v, ok := e.tx.Service(key)
	if !ok {
		return nil
	}
	eps := &sdnv1.ServiceEndpoints{Service: key}
	down := e.downHosts()
	for _, w := range e.tx.Workloads(v.Network) {
		if ep := EndpointOf(v, w, down[w.Node]); ep != nil {
			eps.Endpoints = append(eps.Endpoints, ep)
		}
	}
	return e.putEndpoints(eps)
}

// updateEndpoints updates the endpoints of the services of the changed
// workloads' networks (but those recomputed already) by those workloads.
func (e *exec) updateEndpoints(workloads []string, skip map[string]bool) error {
	down := e.downHosts()
	byNet := map[string][]string{}
	for _, key := range workloads {
		network, _, _ := splitKey(key)
		byNet[network] = append(byNet[network], key)
	}
	for _, network := range slices.Sorted(maps.Keys(byNet)) {
		// Each changed workload read once (nil: deleted), for every
		// service of its network.
		keys := byNet[network]
		ws := make([]*sdnv1.Workload, len(keys))
		for i, wk := range keys {
			_, name, _ := splitKey(wk)
			ws[i], _ = e.tx.Workload(network, name)
		}
		for _, v := range e.tx.Services(network) {
			if key := model.ServiceKey(v); !skip[key] {
				if err := e.updateServiceEndpoints(v, keys, ws, down); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// updateServiceEndpoints replaces the entries of the workloads keys (ws,
// nil for a deleted one) in v's endpoints. A service none of them is or
// becomes an endpoint of is left alone, unread but for its endpoints.
func (e *exec) updateServiceEndpoints(v *sdnv1.Service, keys []string, ws []*sdnv1.Workload, down map[string]bool) error {
	key := model.ServiceKey(v)
	var add []*sdnv1.ServiceEndpoint
	for _, w := range ws {
		if w == nil {
			continue
		}
		if ep := EndpointOf(v, w, down[w.Node]); ep != nil {
			add = append(add, ep)
		}
	}
	old, _ := e.tx.ServiceEndpoints(key)
	isChanged := func(ep *sdnv1.ServiceEndpoint) bool { return slices.Contains(keys, ep.Workload) }
	if len(add) == 0 && old != nil && !slices.ContainsFunc(old.Endpoints, isChanged) {
		return nil
	}
	eps := &sdnv1.ServiceEndpoints{Service: key}
	if old != nil {
		eps = proto.Clone(old).(*sdnv1.ServiceEndpoints)
	}
	eps.Endpoints = append(slices.DeleteFunc(eps.Endpoints, isChanged), add...)
	slices.SortFunc(eps.Endpoints, func(a, b *sdnv1.ServiceEndpoint) int { return cmp.Compare(a.Workload, b.Workload) })
	return e.putEndpoints(eps)
}

// putEndpoints writes a service's endpoints when they differ from the
// stored ones (or none are stored), for watchers too.
func (e *exec) putEndpoints(eps *sdnv1.ServiceEndpoints) error {
	old, exists := e.tx.ServiceEndpoints(eps.Service)
	op := sdnv1.ChangeOp_CHANGE_OP_CREATE
	if exists {
		if sameEndpoints(old, eps) {
			return nil
		}
		op = sdnv1.ChangeOp_CHANGE_OP_UPDATE
	}
	eps.ModRevision = e.rev
	e.recordEvent(op, model.KindServiceEndpoints, eps.Service, &sdnv1.ObjectChange{ServiceEndpoints: eps})
	return e.tx.PutServiceEndpoints(eps)
}

// dropEndpoints removes a deleted service's endpoints.
func (e *exec) dropEndpoints(key string) error {
	old, ok := e.tx.ServiceEndpoints(key)
	if !ok {
		return nil
	}
	e.recordEvent(sdnv1.ChangeOp_CHANGE_OP_DELETE, model.KindServiceEndpoints, key, &sdnv1.ObjectChange{ServiceEndpoints: old})
	return e.tx.DeleteServiceEndpoints(key)
}

// sameEndpoints compares two endpoint sets but for their revision.
func sameEndpoints(a, b *sdnv1.ServiceEndpoints) bool {
	return a.Service == b.Service && slices.EqualFunc(a.Endpoints, b.Endpoints, func(x, y *sdnv1.ServiceEndpoint) bool { return proto.Equal(x, y) })
}

// downHosts are the hosts the leader marked down.
func (e *exec) downHosts() map[string]bool {
	return downOf(e.tx.Nodes())
}

func downOf(nodes []*sdnv1.Node) map[string]bool {
	down := map[string]bool{}
	for _, n := range nodes {
		if n.DownSinceUnixMs != 0 {
			down[n.Name] = true
		}
	}
	return down
}

// EndpointOf is the endpoint a workload is of a service, nil when it is
// none: another network, not selected, not placed (no address or host
// yet, or waiting), or on a host marked down (hostDown: its connections
// would go nowhere). Ports are resolved per service port: the target port
// number, the workload's named port of that name and protocol, or 0 when
// the workload has no such named port (it serves the service's other
// ports only).
func EndpointOf(v *sdnv1.Service, w *sdnv1.Workload, hostDown bool) *sdnv1.ServiceEndpoint {
	if hostDown || w.Network != v.Network || w.Ip == "" || w.Node == "" || w.Pending != "" || !policy.Matches(v.Selector, w.Labels) {
		return nil
	}
	ep := &sdnv1.ServiceEndpoint{Workload: model.WorkloadKey(w.Network, w.Name), Ip: w.Ip, Node: w.Node, Ports: make([]uint32, len(v.Ports))}
	for i, p := range v.Ports {
		ep.Ports[i] = targetPort(p, w)
	}
	return ep
}

// targetPort resolves a service port's target port for one workload.
func targetPort(p *sdnv1.ServicePort, w *sdnv1.Workload) uint32 {
	if p.TargetPortName == "" {
		return cmp.Or(p.TargetPort, p.Port)
	}
	proto := cmp.Or(p.Protocol, "tcp")
	for _, np := range w.NamedPorts {
		if np.Name == p.TargetPortName && cmp.Or(np.Protocol, "tcp") == proto {
			return np.Port
		}
	}
	return 0
}

// DeriveEndpoints computes every service's endpoints from scratch, sorted
// by service key (CheckState compares the stored ones with it).
func DeriveEndpoints(services []*sdnv1.Service, workloads []*sdnv1.Workload, nodes []*sdnv1.Node) []*sdnv1.ServiceEndpoints {
	down := downOf(nodes)
	byNet := map[string][]*sdnv1.Workload{}
	for _, w := range workloads {
		byNet[w.Network] = append(byNet[w.Network], w)
	}
	out := make([]*sdnv1.ServiceEndpoints, 0, len(services))
	for _, v := range services {
		eps := &sdnv1.ServiceEndpoints{Service: model.ServiceKey(v)}
		for _, w := range byNet[v.Network] {
			if ep := EndpointOf(v, w, down[w.Node]); ep != nil {
				eps.Endpoints = append(eps.Endpoints, ep)
			}
		}
		slices.SortFunc(eps.Endpoints, func(a, b *sdnv1.ServiceEndpoint) int { return cmp.Compare(a.Workload, b.Workload) })
		out = append(out, eps)
	}
	slices.SortFunc(out, func(a, b *sdnv1.ServiceEndpoints) int { return cmp.Compare(a.Service, b.Service) })
	return out
}
