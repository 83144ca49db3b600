package fsm

import (
	"fmt"

	"github.com/sdn-dev/sdn/model"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// attachWorkload adds a workload for CNI or `sdnctl attach`. It is
// idempotent for its owner: a runtime that retries ADD for the same
// container and interface gets the same workload back.
func attachWorkload(e *exec, req *sdnv1.AttachWorkloadRequest) (*Result, *Error) {
	in := req.GetWorkload()
	if in == nil {
		return nil, refuse(CodeInvalid, model.KindWorkload, "", "", "request has no workload")
	}
	key := model.WorkloadKey(in.Network, in.Name)
	if owner := workloadOwnerKey(in); owner != "" {
		if existing, ok := e.at.p.owners[owner]; ok {
			w := lookupWorkload(e.tx, existing)
			if w != nil {
				return &Result{Revision: e.tx.Meta().Revision, Workload: w}, nil
			}
		}
	}
	if msg := checkName(model.KindWorkload, in.Name); msg != "" {
		return nil, refuse(CodeInvalid, model.KindWorkload, key, "name", msg)
	}
	if msg := checkLabels(in.Labels); msg != "" {
		return nil, refuse(CodeInvalid, model.KindWorkload, key, "labels", msg)
	}
	if msg := checkNamedPorts(in.NamedPorts); msg != "" {
		return nil, refuse(CodeInvalid, model.KindWorkload, key, "named_ports", msg)
	}
	if field, msg := checkRuntimeFields(in); msg != "" {
		return nil, refuse(CodeInvalid, model.KindWorkload, key, field, msg)
	}
	n, ok := e.tx.Network(in.Network)
	if !ok {
		return nil, refuse(CodeNotFound, model.KindWorkload, key, "network", fmt.Sprintf("unknown network %q; `sdnctl get networks` lists them", in.Network))
	}
	node, ok := e.tx.Node(in.Node)
	if !ok {
		return nil, refuse(CodeNotFound, model.KindWorkload, key, "node", fmt.Sprintf("host %q is not registered", in.Node))
	}
	if node.Drained {
		return nil, refuse(CodeConflict, model.KindWorkload, key, "node", drainedRefusal(in.Node))
	}
	if _, taken := e.tx.Workload(in.Network, in.Name); taken {
		return nil, refuse(CodeConflict, model.KindWorkload, key, "name", fmt.Sprintf("a workload named %s already exists in network %s", in.Name, in.Network))
	}
	if field, msg := checkAddrs(in); msg != "" {
		return nil, refuse(CodeInvalid, model.KindWorkload, key, field, msg)
	}
	if msg := hostPortHolder(e, in); msg != "" {
		return nil, refuse(CodeConflict, model.KindWorkload, key, "port_mappings", msg)
	}
	w := &sdnv1.Workload{Name: in.Name, Network: in.Network, Node: in.Node, Labels: in.Labels, Vnid: n.Vnid, Origin: &sdnv1.Origin{},
		NamedPorts: normalNamedPorts(in.NamedPorts), PortMappings: normalPortMappings(in.PortMappings), Bandwidth: normalBandwidth(in.Bandwidth)}
	if in.Origin != nil {
		w.Origin = proto.Clone(in.Origin).(*sdnv1.Origin)
	}
	if w.Origin.Kind == sdnv1.OriginKind_ORIGIN_KIND_UNSPECIFIED || w.Origin.Kind == sdnv1.OriginKind_ORIGIN_KIND_HCL {
		w.Origin.Kind = sdnv1.OriginKind_ORIGIN_KIND_API
	}
	if code, err := e.place(w, in.Ip, in.Mac); err != nil {
		e.vs.add(code, model.KindWorkload, key, placeField(err), err.Error())
		return nil, e.fail()
	}
	if err := e.putWorkload(sdnv1.ChangeOp_CHANGE_OP_CREATE, w, nil); err != nil {
		return nil, ioError(err)
	}
	res, verr := e.finish()
	if verr != nil {
		return nil, verr
	}
	res.Workload = w
	return res, nil
}

func lookupWorkload(tx *state.Tx, key string) *sdnv1.Workload {
	network, name, ok := splitKey(key)
	if !ok {
		return nil
	}
	w, _ := tx.Workload(network, name)
	return w
}

// detachWorkload removes a workload by name or by its CNI owner. Removing
// one that is not there succeeds with Removed unset (CNI DEL is idempotent).
func detachWorkload(e *exec, req *sdnv1.DetachWorkloadRequest) (*Result, *Error) {
	var w *sdnv1.Workload
	switch {
	case req.ContainerId != "":
		if key, ok := e.at.p.owners[ownerKey(req.ContainerId, req.Ifname)]; ok {
			w = lookupWorkload(e.tx, key)
		}
	case req.Network != "" && req.Name != "":
		w, _ = e.tx.Workload(req.Network, req.Name)
	default:
		return nil, refuse(CodeInvalid, model.KindWorkload, "", "", "say which workload: network and name, or container id and interface")
	}
	if w == nil {
		return &Result{Revision: e.tx.Meta().Revision}, nil
	}
	e.unplace(w)
	if err := e.deleteWorkload(w); err != nil {
		return nil, ioError(err)
	}
	res, verr := e.finish()
	if verr != nil {
		return nil, verr
	}
	res.Removed = true
	return res, nil
}

// deleteObject handles `sdnctl delete KIND NAME`.
func deleteObject(e *exec, req *sdnv1.DeleteRequest) (*Result, *Error) {
	kind, _ := model.ParseKind(req.Kind)
	switch kind {
	case model.KindNetwork:
		n, ok := e.tx.Network(req.Name)
		if !ok {
			return nil, refuse(CodeNotFound, model.KindNetwork, req.Name, "", fmt.Sprintf("no network named %q", req.Name))
		}
		ws := e.tx.Workloads(req.Name)
		if len(ws) > 0 {
			keys := make([]string, 0, len(ws))
			for _, w := range ws {
				keys = append(keys, model.WorkloadKey(w.Network, w.Name))
			}
			return nil, refuse(CodeConflict, model.KindNetwork, req.Name, "", fmt.Sprintf("still has %d workloads (%s); delete or detach them first", len(ws), summarize(keys, 3)))
		}
		if ps := networkPolicies(e, req.Name); len(ps) > 0 {
			return nil, refuse(CodeConflict, model.KindNetwork, req.Name, "", fmt.Sprintf("still has %d policies (%s); delete them first (sdnctl delete policy NETWORK/NAME)", len(ps), summarize(ps, 3)))
		}
		if vs := networkServices(e, req.Name); len(vs) > 0 {
			return nil, refuse(CodeConflict, model.KindNetwork, req.Name, "", fmt.Sprintf("still has %d services (%s); delete them first (sdnctl delete service NETWORK/NAME)", len(vs), summarize(vs, 3)))
		}
		if !n.Admin {
			e.at.releaseVNID(n.Vnid)
		}
		if err := e.deleteNetwork(n); err != nil {
			return nil, ioError(err)
		}
		return e.finish()
	case model.KindWorkload:
		network, name, ok := splitKey(req.Name)
		if !ok {
			return nil, refuse(CodeInvalid, model.KindWorkload, req.Name, "", "name a workload as NETWORK/NAME")
		}
		w, found := e.tx.Workload(network, name)
		if !found {
			return nil, refuse(CodeNotFound, model.KindWorkload, req.Name, "", fmt.Sprintf("no workload %s", req.Name))
		}
		e.unplace(w)
		if err := e.deleteWorkload(w); err != nil {
			return nil, ioError(err)
		}
		return e.finish()
	case model.KindNode:
		return removeNode(e, req.Name)
	case model.KindPolicy:
		return deletePolicyObject(e, req.Name)
	case model.KindService:
		return deleteServiceObject(e, req.Name)
	}
	return nil, refuse(CodeInvalid, model.Kind(req.Kind), req.Name, "", fmt.Sprintf("cannot delete kind %q; use network, workload, node, policy or service", req.Kind))
}

func splitKey(k string) (string, string, bool) {
	for i := 0; i < len(k); i++ {
		if k[i] == '/' {
			return k[:i], k[i+1:], i > 0 && i < len(k)-1
		}
	}
	return "", "", false
}
