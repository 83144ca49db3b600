package fsm

import (
	"fmt"
	"net/netip"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// registerNode adds a host or refreshes one that registers again (an agent
// restart): a known host keeps its subnet. The first host fixes a derived
// cluster MTU; a host whose underlay cannot carry the cluster MTU is refused.
// Static workloads waiting for this host get their addresses now.
func registerNode(e *exec, req *sdnv1.RegisterNodeRequest) (*Result, *Error) {
	// Checks.
	ip, settings, rerr := checkRegistration(e, req)
	if rerr != nil {
		return nil, rerr
	}
	// Allocations: the host's subnet, then the addresses of the workloads
	// waiting for it.
	old, exists := e.tx.Node(req.Name)
	n, rerr := registeredNode(e, req, ip, old, exists)
	if rerr != nil {
		return nil, rerr
	}
	var ready []placed
	if !exists || old.Subnet == "" {
		ready = placeWaiting(e, req.Name, n.Subnet)
	}
	// Writes.
	return writeRegistration(e, req, settings, n, old, exists, ready)
}

// checkRegistration checks a registration against the request itself and
// the stored state. It returns the host's underlay address and a copy of
// the cluster settings in effect.
func checkRegistration(e *exec, req *sdnv1.RegisterNodeRequest) (netip.Addr, *sdnv1.ClusterSettings, *Error) {
	if msg := checkName(model.KindNode, req.Name); msg != "" {
		return netip.Addr{}, nil, refuse(CodeInvalid, model.KindNode, req.Name, "name", msg)
	}
	// A host holding another cluster's state is refused, unless this
	// cluster declares nothing yet: a new cluster waiting for a snapshot
	// restore (which brings the old cluster's id) takes its hosts in.
	if id := e.tx.ClusterID(); req.ClusterId != "" && id != "" && req.ClusterId != id && !e.tx.Empty() {
		return netip.Addr{}, nil, refuse(CodeConflict, model.KindNode, req.Name, "cluster_id", fmt.Sprintf(
			"host %s holds the state of cluster %s, but these servers are cluster %s: point its agent at its own cluster's servers, or, to move the host to this cluster, stop its agent and delete its saved desired state (DATA-DIR/agent/desired.pb) first",
			req.Name, req.ClusterId, id))
	}
	ip, err := model.ParseIPv4("underlay address", req.UnderlayIp)
	if err != nil {
		return netip.Addr{}, nil, refuse(CodeInvalid, model.KindNode, req.Name, "underlay_ip", err.Error())
	}
	settings := proto.Clone(effectiveSettings(e.tx)).(*sdnv1.ClusterSettings)
	if msg := checkUnderlay(ip, settings); msg != "" && e.strict {
		return netip.Addr{}, nil, refuse(CodeInvalid, model.KindNode, req.Name, "underlay_ip", msg)
	}
	if req.UnderlayMtu < 576+VXLANOverhead || req.UnderlayMtu > 65535 {
		return netip.Addr{}, nil, refuse(CodeInvalid, model.KindNode, req.Name, "underlay_mtu", fmt.Sprintf("underlay MTU %d is outside %d-65535", req.UnderlayMtu, 576+VXLANOverhead))
	}
	if msg := checkLabels(req.Labels); msg != "" {
		return netip.Addr{}, nil, refuse(CodeInvalid, model.KindNode, req.Name, "labels", msg)
	}
	// A new check, so behind the format gate (CONTRIBUTING.md, "Shape"):
	// releases before it stored no datapath address at all.
	if _, err := netip.ParseAddrPort(req.DatapathAddress); req.DatapathAddress != "" && err != nil && e.strict {
		return netip.Addr{}, nil, refuse(CodeInvalid, model.KindNode, req.Name, "datapath_address", fmt.Sprintf(
			"datapath address %q: want ip:port, e.g. %s:7475 (sdnd --datapath-listen)", req.DatapathAddress, ip))
	}
	for _, n := range e.tx.Nodes() {
		if n.Name != req.Name && n.UnderlayIp == ip.String() {
			return netip.Addr{}, nil, refuse(CodeConflict, model.KindNode, req.Name, "underlay_ip", fmt.Sprintf("underlay address %s is already host %s's; each host needs its own", ip, n.Name))
		}
	}
	room := req.UnderlayMtu - VXLANOverhead
	if settings.EffectiveMtu != 0 && room < settings.EffectiveMtu {
		return netip.Addr{}, nil, refuse(CodeConflict, model.KindNode, req.Name, "underlay_mtu", fmt.Sprintf(
			"underlay MTU %d leaves %d bytes for workloads after VXLAN's %d, less than the cluster MTU %d; raise this host's underlay MTU to %d or more, or lower cluster.mtu",
			req.UnderlayMtu, room, VXLANOverhead, settings.EffectiveMtu, settings.EffectiveMtu+VXLANOverhead))
	}
	return ip, settings, nil
}

// registeredNode is the host as it registers: a known host keeps its subnet,
// drain and liveness; a new one (or one released) gets a subnet.
func registeredNode(e *exec, req *sdnv1.RegisterNodeRequest, ip netip.Addr, old *sdnv1.Node, exists bool) (*sdnv1.Node, *Error) {
	n := &sdnv1.Node{Name: req.Name, UnderlayIp: ip.String(), UnderlayMtu: req.UnderlayMtu, Labels: req.Labels,
		DatapathAddress: req.DatapathAddress, Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_AGENT}}
	if exists {
		// Drain is the operator's, liveness the leader's (SetNodeLiveness
		// brings a down host back, once its heartbeats resume).
		n.Drained, n.DownSinceUnixMs = old.Drained, old.DownSinceUnixMs
	}
	if exists && old.Subnet != "" {
		n.Subnet, n.GatewayIp, n.CreateRevision = old.Subnet, old.GatewayIp, old.CreateRevision
	} else {
		sub, ipp, err := e.at.subnet(req.Name)
		if err != nil {
			e.vs.add(CodeExhausted, model.KindNode, req.Name, "", fmt.Sprintf("allocate a subnet: %v", err))
			return nil, e.fail()
		}
		n.Subnet, n.GatewayIp = sub.String(), ipp.Gateway().String()
	}
	return n, nil
}

// placed is a workload given its address (w) and as it was stored (old).
type placed struct {
	w   *sdnv1.Workload
	old *sdnv1.Workload
}

// placeWaiting places the workloads declared for a host before it
// registered, now that it has its subnet. A workload waiting for another
// host with an address of this subnet can never have it there (and this
// host's allocator may hand it out): it waits on without it.
func placeWaiting(e *exec, node, subnet string) []placed {
	sub, _ := netip.ParsePrefix(subnet)
	var ready []placed
	for _, w := range e.tx.Workloads("") {
		if w.Pending == "" {
			continue
		}
		if w.Node != node && !e.strict {
			continue
		}
		nw := proto.Clone(w).(*sdnv1.Workload)
		if w.Node != node {
			ip, err := netip.ParseAddr(w.Ip)
			if err != nil || !sub.Contains(ip) {
				continue
			}
			nw.Ip = ""
			nw.Pending = fmt.Sprintf("ip %s went to host %s's subnet %s when it registered; a workload gets an address of its own host's subnet: leave ip out, or ask for one of host %s's subnet once it registers", ip, node, sub, w.Node)
			ready = append(ready, placed{nw, w})
			continue
		}
		if _, err := e.place(nw, w.Ip, w.Mac); err != nil {
			// The workload stays pending with the reason (which
			// names the address it asked for) and holds no
			// address; the host itself is welcome.
			nw.Pending = err.Error()
			nw.Ip = ""
			if !e.strict {
				nw.Ip = w.Ip // as format 1 entries were applied
			}
		}
		ready = append(ready, placed{nw, w})
	}
	return ready
}

// writeRegistration writes a registration: the cluster MTU the first host
// fixes, the host, and the workloads placed on it.
func writeRegistration(e *exec, req *sdnv1.RegisterNodeRequest, settings *sdnv1.ClusterSettings, n, old *sdnv1.Node, exists bool, ready []placed) (*Result, *Error) {
	if settings.EffectiveMtu == 0 {
		room := req.UnderlayMtu - VXLANOverhead
		settings.EffectiveMtu = room
		op := sdnv1.ChangeOp_CHANGE_OP_UPDATE
		if e.tx.Cluster() == nil {
			op = sdnv1.ChangeOp_CHANGE_OP_CREATE
			settings.Origin = &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_AGENT}
		}
		if err := e.putCluster(op, settings, []string{fmt.Sprintf("effective_mtu: 0 -> %d (host %s's underlay %d minus %d)", room, req.Name, req.UnderlayMtu, VXLANOverhead)}); err != nil {
			return nil, ioError(err)
		}
	}
	switch {
	case !exists:
		if err := e.putNode(sdnv1.ChangeOp_CHANGE_OP_CREATE, n, nil); err != nil {
			return nil, ioError(err)
		}
	default:
		if d := nodeDetails(old, n); len(d) > 0 {
			if err := e.putNode(sdnv1.ChangeOp_CHANGE_OP_UPDATE, n, d); err != nil {
				return nil, ioError(err)
			}
		}
	}
	for _, p := range ready {
		if d := workloadDetails(p.old, p.w); len(d) > 0 {
			if err := e.putWorkload(sdnv1.ChangeOp_CHANGE_OP_UPDATE, p.w, d); err != nil {
				return nil, ioError(err)
			}
		}
	}
	res, verr := e.finish()
	if verr != nil {
		return nil, verr
	}
	if !exists || len(nodeDetails(old, n)) > 0 {
		n.ModRevision = res.Revision
	} else {
		n.ModRevision = old.ModRevision
	}
	res.Node = n
	res.Cluster = settings
	return res, nil
}

func nodeDetails(old, cur *sdnv1.Node) []string {
	var d []string
	if old.UnderlayIp != cur.UnderlayIp {
		d = append(d, fmt.Sprintf("underlay_ip: %s -> %s", old.UnderlayIp, cur.UnderlayIp))
	}
	if old.UnderlayMtu != cur.UnderlayMtu {
		d = append(d, fmt.Sprintf("underlay_mtu: %d -> %d", old.UnderlayMtu, cur.UnderlayMtu))
	}
	if old.Subnet != cur.Subnet {
		d = append(d, fmt.Sprintf("subnet: %q -> %q", old.Subnet, cur.Subnet))
	}
	if old.DatapathAddress != cur.DatapathAddress {
		d = append(d, fmt.Sprintf("datapath_address: %q -> %q", old.DatapathAddress, cur.DatapathAddress))
	}
	return append(d, labelDetails(old.Labels, cur.Labels)...)
}

// removeNode decommissions a host: its subnet is released, workloads
// attached on it (by CNI or the API) are removed, and workloads declared in
// HCL for it go back to pending.
func removeNode(e *exec, name string) (*Result, *Error) {
	n, ok := e.tx.Node(name)
	if !ok {
		return nil, refuse(CodeNotFound, model.KindNode, name, "", fmt.Sprintf("no host named %q is registered; `sdnctl get nodes` lists them", name))
	}
	var keep, drop []*sdnv1.Workload
	for _, w := range e.tx.Workloads("") {
		if w.Node != name {
			continue
		}
		e.unplace(w)
		if w.GetOrigin().GetKind() == sdnv1.OriginKind_ORIGIN_KIND_HCL {
			keep = append(keep, w)
		} else {
			drop = append(drop, w)
		}
	}
	if n.Subnet != "" {
		if sub, err := netip.ParsePrefix(n.Subnet); err == nil {
			e.at.releaseSubnet(name, sub)
		}
	}
	for _, w := range drop {
		if err := e.deleteWorkload(w); err != nil {
			return nil, ioError(err)
		}
	}
	for _, w := range keep {
		nw := proto.Clone(w).(*sdnv1.Workload)
		nw.Pending = fmt.Sprintf("node %s is not registered", name)
		nw.Ip, nw.Mac = "", ""
		if err := e.putWorkload(sdnv1.ChangeOp_CHANGE_OP_UPDATE, nw, workloadDetails(w, nw)); err != nil {
			return nil, ioError(err)
		}
	}
	e.record(sdnv1.ChangeOp_CHANGE_OP_DELETE, model.KindNode, name, nil, &sdnv1.ObjectChange{Node: n})
	if e.write {
		if err := e.tx.DeleteNode(name); err != nil {
			return nil, ioError(err)
		}
		if err := e.tx.SetCursor(cursorIPsPfx+name, 0); err != nil {
			return nil, ioError(err)
		}
	}
	return e.finish()
}

// formatUnixMs renders a time carried in a command (never the clock).
func formatUnixMs(ms int64) string {
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

// setNodeLiveness marks a host down, or up again. The leader proposes it
// when a host's heartbeats stop for the down-after time or resume; the
// time is the leader's, inside the command. Marking a down host down (or
// an up host up) changes nothing: a repeated proposal is harmless.
func setNodeLiveness(e *exec, req *sdnv1.SetNodeLivenessRequest) (*Result, *Error) {
	old, ok := e.tx.Node(req.Name)
	if !ok {
		return nil, refuse(CodeNotFound, model.KindNode, req.Name, "", fmt.Sprintf("no host named %q is registered", req.Name))
	}
	if req.Down && req.AtUnixMs <= 0 {
		return nil, refuse(CodeInvalid, model.KindNode, req.Name, "at_unix_ms", "marking a host down needs the time it happened")
	}
	if req.Down == (old.DownSinceUnixMs != 0) {
		return &Result{Revision: e.tx.Meta().Revision, Node: old}, nil
	}
	n := proto.Clone(old).(*sdnv1.Node)
	var detail string
	if req.Down {
		n.DownSinceUnixMs = req.AtUnixMs
		detail = fmt.Sprintf("status: ready -> down (since %s)", formatUnixMs(req.AtUnixMs))
	} else {
		n.DownSinceUnixMs = 0
		detail = fmt.Sprintf("status: down (since %s) -> ready", formatUnixMs(old.DownSinceUnixMs))
	}
	e.liveness = append(e.liveness, req.Name)
	if err := e.putNode(sdnv1.ChangeOp_CHANGE_OP_UPDATE, n, []string{detail}); err != nil {
		return nil, ioError(err)
	}
	res, verr := e.finish()
	if verr != nil {
		return nil, verr
	}
	res.Node = n
	return res, nil
}

// drainNode sets or clears a host's drained flag: a drained host accepts no
// new workloads (attachWorkload, applyConfig refuse them); those already
// there stay.
func drainNode(e *exec, req *sdnv1.DrainNodeRequest) (*Result, *Error) {
	old, ok := e.tx.Node(req.Name)
	if !ok {
		return nil, refuse(CodeNotFound, model.KindNode, req.Name, "", fmt.Sprintf("no host named %q is registered; `sdnctl get nodes` lists them", req.Name))
	}
	if old.Drained == req.Drain {
		return &Result{Revision: e.tx.Meta().Revision, Node: old}, nil
	}
	n := proto.Clone(old).(*sdnv1.Node)
	n.Drained = req.Drain
	if err := e.putNode(sdnv1.ChangeOp_CHANGE_OP_UPDATE, n, []string{fmt.Sprintf("drained: %t -> %t", old.Drained, n.Drained)}); err != nil {
		return nil, ioError(err)
	}
	res, verr := e.finish()
	if verr != nil {
		return nil, verr
	}
	res.Node = n
	return res, nil
}

// releaseNode removes a host the leader found down past the cluster's
// node_release_after, as removeNode does, but only if it is still down
// since the time the leader saw: a host that came back (or was marked
// down again, later) in between is kept.
func releaseNode(e *exec, req *sdnv1.ReleaseNodeRequest) (*Result, *Error) {
	n, ok := e.tx.Node(req.Name)
	if !ok {
		return nil, refuse(CodeNotFound, model.KindNode, req.Name, "", fmt.Sprintf("no host named %q is registered", req.Name))
	}
	if n.DownSinceUnixMs == 0 || n.DownSinceUnixMs != req.DownSinceUnixMs {
		return nil, refuse(CodeConflict, model.KindNode, req.Name, "", fmt.Sprintf("host %s is no longer down since %s (it came back); kept", req.Name, formatUnixMs(req.DownSinceUnixMs)))
	}
	return removeNode(e, req.Name)
}

// drainedRefusal is the message for a new workload on a drained host.
func drainedRefusal(node string) string {
	return fmt.Sprintf("host %s is drained (`sdnctl node drain`): it takes no new workloads; start the workload on another host, or run `sdnctl node undrain %s` when its maintenance is over", node, node)
}

// initCluster gives the cluster its id; the first one committed wins, a
// later one (a second leader that proposed before seeing the first) is
// ignored.
func initCluster(e *exec, req *sdnv1.InitClusterRequest) (*Result, *Error) {
	if req.ClusterId == "" {
		return nil, refuse(CodeInvalid, model.KindCluster, "", "cluster_id", "an empty cluster id")
	}
	if e.write && e.tx.ClusterID() == "" {
		if err := e.tx.SetClusterID(req.ClusterId); err != nil {
			return nil, ioError(err)
		}
	}
	return &Result{Revision: e.tx.Meta().Revision}, nil
}
