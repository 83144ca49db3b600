package fsm

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/sdn-dev/sdn/model"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// applyConfig executes an ApplyConfig command (or, with e.write unset, plans
// it). It checks everything first, then allocates, then writes: a refused
// command writes nothing and leaves the allocators as they were.
func applyConfig(e *exec, req *sdnv1.ApplyRequest) (*Result, *Error) {
	a := &configApply{e: e, req: req}

	// Phase 1: checks, against the stored state and the request itself.
	a.checkSettings()
	a.checkNetworks()
	a.checkAdmins()
	a.checkWorkloads()
	a.checkPolicies()
	a.checkServices()
	a.planPrunes()
	a.planPolicyPrunes()
	a.planServicePrunes()
	if a.e.strict {
		a.checkRequestedIPs()
	}
	if len(e.vs.list) > 0 {
		return nil, e.fail()
	}

	// Phase 2: allocations. Releases first, so a pruned workload's address
	// is free for a new one in the same apply.
	a.releasePruned()
	if rerr := a.allocateNetworks(); rerr != nil {
		return nil, rerr
	}
	a.allocateWorkloads()
	a.allocateServices()
	if len(e.vs.list) > 0 {
		return nil, e.fail()
	}
	a.planPolicies()

	// Phase 3: writes.
	if rerr := a.writeSettings(); rerr != nil {
		return nil, rerr
	}
	if rerr := a.writeObjects(); rerr != nil {
		return nil, rerr
	}
	return e.finish()
}

// configApply is one ApplyConfig command on its way through applyConfig's
// phases; each phase fills in what the next one reads.
type configApply struct {
	e   *exec
	req *sdnv1.ApplyRequest

	// checkSettings: the requested settings with defaults filled in, and
	// the stored ones (nil when none).
	newSettings, oldSettings *sdnv1.ClusterSettings
	// checkNetworks: stored and requested networks by name, and the names
	// of those that exist after this command.
	stored, wanted map[string]*sdnv1.Network
	remaining      map[string]bool
	// checkWorkloads: stored and requested workloads by key, and the
	// requested keys, sorted.
	storedW, wantedW map[string]*sdnv1.Workload
	wantedKeys       []string
	// planPrunes: what a prune removes.
	pruneW []*sdnv1.Workload
	pruneN []*sdnv1.Network
	pruneP []*sdnv1.Policy
	// checkPolicies, planPolicies: stored and requested policies by key,
	// and the policies to write.
	storedP, wantedP map[string]*sdnv1.Policy
	polPuts          []policyPut
	// checkServices, planServicePrunes, allocateServices: stored and
	// requested services by key, the pruned ones, and those to write.
	storedS, wantedS map[string]*sdnv1.Service
	pruneS           []*sdnv1.Service
	svcPuts          []servicePut
	// allocateNetworks, allocateWorkloads: the objects to write, and the
	// VNIDs of the request's networks by name.
	netPuts []netPut
	vnids   map[string]uint32
	wlPuts  []wlPut
}

type netPut struct {
	op      sdnv1.ChangeOp
	n       *sdnv1.Network
	details []string
}

type wlPut struct {
	op      sdnv1.ChangeOp
	w       *sdnv1.Workload
	details []string
}

// hclFrom is the origin of an object declared in an HCL file.
func hclFrom(file string) *sdnv1.Origin {
	return &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_HCL, File: file}
}

// checkSettings checks the requested cluster settings, if any.
func (a *configApply) checkSettings() {
	if a.req.Cluster != nil {
		a.newSettings = fillSettingDefaults(a.req.Cluster)
		checkSettings(&a.e.vs, a.e.tx, a.newSettings, a.e.strict)
		a.oldSettings = a.e.tx.Cluster()
	}
}

// checkNetworks checks the requested networks against each other and the
// stored ones, and works out which networks exist after the command.
func (a *configApply) checkNetworks() {
	e := a.e
	a.stored = map[string]*sdnv1.Network{}
	for _, n := range e.tx.Networks() {
		a.stored[n.Name] = n
	}
	a.wanted = map[string]*sdnv1.Network{}
	for _, n := range a.req.Networks {
		if msg := checkName(model.KindNetwork, n.Name); msg != "" {
			e.vs.add(CodeInvalid, model.KindNetwork, n.Name, "", msg)
			continue
		}
		if _, dup := a.wanted[n.Name]; dup {
			e.vs.add(CodeInvalid, model.KindNetwork, n.Name, "", "declared twice")
			continue
		}
		if msg := checkLabels(n.Labels); msg != "" {
			e.vs.add(CodeInvalid, model.KindNetwork, n.Name, "labels", msg)
		}
		if old, ok := a.stored[n.Name]; ok && old.Admin != n.Admin {
			e.vs.add(CodeConflict, model.KindNetwork, n.Name, "admin", fmt.Sprintf("admin cannot change after creation (the network holds VNID %d for its lifetime); delete and recreate the network", old.Vnid))
		}
		if old, ok := a.stored[n.Name]; ok && old.GetOrigin().GetKind() != sdnv1.OriginKind_ORIGIN_KIND_HCL {
			e.vs.add(CodeConflict, model.KindNetwork, n.Name, "", fmt.Sprintf("exists and was created by %s, not HCL; choose another name", originName(old.Origin)))
		}
		a.wanted[n.Name] = n
	}
	// Networks that exist after this command.
	a.remaining = map[string]bool{}
	for name, n := range a.stored {
		if _, keep := a.wanted[name]; keep || !a.req.Prune || n.GetOrigin().GetKind() != sdnv1.OriginKind_ORIGIN_KIND_HCL {
			a.remaining[name] = true
		}
	}
	for name := range a.wanted {
		a.remaining[name] = true
	}
}

// checkAdmins refuses a command after which more than one network would be
// the admin network.
func (a *configApply) checkAdmins() {
	var admins []string
	for name := range a.remaining {
		n := a.wanted[name]
		if n == nil {
			n = a.stored[name]
		}
		if n.Admin {
			admins = append(admins, name)
		}
	}
	sort.Strings(admins)
	if len(admins) > 1 {
		for _, name := range admins {
			if _, inReq := a.wanted[name]; inReq {
				a.e.vs.add(CodeConflict, model.KindNetwork, name, "admin", fmt.Sprintf("only one network can be the admin network (VNID 0); admin networks would be %s", strings.Join(admins, ", ")))
			}
		}
	}
}

// checkWorkloads checks the requested workloads against each other, the
// networks that remain, the hosts and the stored workloads.
func (a *configApply) checkWorkloads() {
	e := a.e
	a.storedW = map[string]*sdnv1.Workload{}
	for _, w := range e.tx.Workloads("") {
		a.storedW[model.WorkloadKey(w.Network, w.Name)] = w
	}
	a.wantedW = map[string]*sdnv1.Workload{}
	for _, w := range a.req.Workloads {
		key := model.WorkloadKey(w.Network, w.Name)
		if msg := checkName(model.KindWorkload, w.Name); msg != "" {
			e.vs.add(CodeInvalid, model.KindWorkload, key, "", msg)
			continue
		}
		if _, dup := a.wantedW[key]; dup {
			e.vs.add(CodeInvalid, model.KindWorkload, key, "", "declared twice")
			continue
		}
		if msg := checkLabels(w.Labels); msg != "" {
			e.vs.add(CodeInvalid, model.KindWorkload, key, "labels", msg)
		}
		if msg := checkNamedPorts(w.NamedPorts); msg != "" {
			e.vs.add(CodeInvalid, model.KindWorkload, key, "named_ports", msg)
		}
		if !a.remaining[w.Network] {
			e.vs.add(CodeNotFound, model.KindWorkload, key, "network", fmt.Sprintf("unknown network %q; declare it in a network block or check `sdnctl get networks`", w.Network))
		}
		if msg := checkName(model.KindNode, w.Node); msg != "" {
			e.vs.add(CodeInvalid, model.KindWorkload, key, "node", msg)
		}
		if field, msg := checkAddrs(w); msg != "" {
			e.vs.add(CodeInvalid, model.KindWorkload, key, field, msg)
		}
		if old, ok := a.storedW[key]; ok && old.GetOrigin().GetKind() != sdnv1.OriginKind_ORIGIN_KIND_HCL {
			e.vs.add(CodeConflict, model.KindWorkload, key, "", fmt.Sprintf("exists and was attached by %s, not HCL; choose another name", originName(old.Origin)))
		}
		if n, ok := e.tx.Node(w.Node); ok && n.Drained {
			// New workloads (or ones moving here) only; those already on
			// the host stay.
			if old, ok := a.storedW[key]; !ok || old.Node != w.Node {
				e.vs.add(CodeConflict, model.KindWorkload, key, "node", drainedRefusal(w.Node))
			}
		}
		a.wantedW[key] = w
		a.wantedKeys = append(a.wantedKeys, key)
	}
	sort.Strings(a.wantedKeys)
}

// planPrunes lists the HCL workloads and networks a prune removes, and
// refuses to prune a network that would keep workloads.
func (a *configApply) planPrunes() {
	if a.req.Prune {
		for _, key := range slices.Sorted(maps.Keys(a.storedW)) {
			w := a.storedW[key]
			if _, keep := a.wantedW[key]; !keep && w.GetOrigin().GetKind() == sdnv1.OriginKind_ORIGIN_KIND_HCL {
				a.pruneW = append(a.pruneW, w)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(a.stored)) {
		if a.remaining[name] {
			continue
		}
		a.pruneN = append(a.pruneN, a.stored[name])
		var left []string
		for key, w := range a.storedW {
			if w.Network == name && !slices.Contains(a.pruneW, w) {
				left = append(left, key)
			}
		}
		for key, w := range a.wantedW {
			if w.Network == name {
				left = append(left, key)
			}
		}
		if len(left) > 0 {
			sort.Strings(left)
			a.e.vs.add(CodeConflict, model.KindNetwork, name, "", fmt.Sprintf("cannot prune: it still has %d workloads (%s); detach them first", len(left), summarize(left, 3)))
		}
	}
}

// checkRequestedIPs checks the addresses the request's workloads ask for
// against each other and against those waiting workloads ask for: an
// address is one workload's, asked for or held. A workload whose host is
// registered is checked when its address is claimed (allocateWorkloads);
// one whose host is not waits for it with the address it asks for, which
// must lie in the cluster CIDR and in no registered host's subnet (its host
// gets a block of its own when it registers).
func (a *configApply) checkRequestedIPs() {
	e := a.e
	asked := map[netip.Addr]string{}
	for _, key := range slices.Sorted(maps.Keys(a.storedW)) {
		w := a.storedW[key]
		ip, err := netip.ParseAddr(w.Ip)
		if err != nil || w.Pending == "" {
			continue // placed ones hold theirs in their host's pool
		}
		if want, ok := a.wantedW[key]; (ok && want.Ip != w.Ip) || slices.Contains(a.pruneW, w) {
			continue // this apply lets the address go
		}
		asked[ip] = key
	}
	settings := a.newSettings
	if settings == nil {
		settings = effectiveSettings(e.tx)
	}
	cidr, _ := netip.ParsePrefix(settings.Cidr)
	for _, key := range a.wantedKeys {
		w := a.wantedW[key]
		ip, err := netip.ParseAddr(w.Ip)
		if err != nil {
			continue // none asked for, or checkWorkloads said why
		}
		if other, dup := asked[ip]; dup && other != key {
			e.vs.add(CodeConflict, model.KindWorkload, key, "ip", fmt.Sprintf("ip %s is requested by workload %s too; an address is one workload's", ip, other))
			continue
		}
		asked[ip] = key
		if _, registered := e.at.p.ips[w.Node]; registered {
			continue
		}
		if !cidr.Contains(ip) {
			e.vs.add(CodeInvalid, model.KindWorkload, key, "ip", fmt.Sprintf("ip %s is outside the cluster CIDR %s: a workload gets an address of its host's subnet, a block of it; leave ip out, or ask for one of host %s's subnet once it registers (`sdnctl get nodes`)", ip, cidr, w.Node))
			continue
		}
		if holder, sub := a.subnetHolding(ip); holder != "" {
			e.vs.add(CodeConflict, model.KindWorkload, key, "ip", fmt.Sprintf("ip %s is in host %s's subnet %s, so host %s can never give it: a workload gets an address of its own host's subnet; leave ip out, or ask for one of host %s's subnet once it registers (`sdnctl get nodes`)", ip, holder, sub, w.Node, w.Node))
		}
	}
}

// subnetHolding names the registered host whose subnet holds ip, if any.
func (a *configApply) subnetHolding(ip netip.Addr) (string, netip.Prefix) {
	sp := a.e.at.p.subnets
	block, err := ip.Prefix(sp.HostPrefix())
	if err != nil || !sp.CIDR().Contains(ip) || !sp.InUse(block) {
		return "", netip.Prefix{}
	}
	for _, n := range a.e.tx.Nodes() {
		if n.Subnet == block.String() {
			return n.Name, block
		}
	}
	return "", netip.Prefix{}
}

// releasePruned frees the addresses and VNIDs of what a prune removes.
func (a *configApply) releasePruned() {
	for _, w := range a.pruneW {
		a.e.unplace(w)
	}
	for _, n := range a.pruneN {
		if !n.Admin {
			a.e.at.releaseVNID(n.Vnid)
		}
	}
}

// allocateNetworks gives each new network of the request a VNID and lists
// the networks to write. A VNID pool that runs dry refuses the command.
func (a *configApply) allocateNetworks() *Error {
	e := a.e
	a.vnids = map[string]uint32{}
	for _, name := range slices.Sorted(maps.Keys(a.wanted)) {
		want := a.wanted[name]
		n := &sdnv1.Network{Name: name, Labels: want.Labels, Admin: want.Admin, Origin: hclFrom(want.GetOrigin().GetFile())}
		if old, ok := a.stored[name]; ok {
			n.Vnid, n.CreateRevision = old.Vnid, old.CreateRevision
			a.vnids[name] = n.Vnid
			if d := networkDetails(old, n); len(d) > 0 {
				a.netPuts = append(a.netPuts, netPut{sdnv1.ChangeOp_CHANGE_OP_UPDATE, n, d})
			}
			continue
		}
		if !n.Admin {
			v, err := e.at.vnid()
			if err != nil {
				e.vs.add(CodeExhausted, model.KindNetwork, name, "", fmt.Sprintf("allocate a VNID: %v", err))
				return e.fail()
			}
			n.Vnid = v
		}
		a.vnids[name] = n.Vnid
		a.netPuts = append(a.netPuts, netPut{sdnv1.ChangeOp_CHANGE_OP_CREATE, n, nil})
	}
	return nil
}

// vnidOf is a network's VNID: the request's, else the stored one.
func (a *configApply) vnidOf(network string) uint32 {
	if v, ok := a.vnids[network]; ok {
		return v
	}
	return a.stored[network].GetVnid()
}

// allocateWorkloads places the requested workloads (new ones, ones that
// move, ones waiting for a full block) and lists those to write. A
// workload that cannot be placed is a violation.
func (a *configApply) allocateWorkloads() {
	e := a.e
	// Moves and address changes release before anything claims.
	for _, key := range a.wantedKeys {
		if old, ok := a.storedW[key]; ok && workloadMoves(old, a.wantedW[key]) {
			e.unplace(old)
		}
	}
	for _, key := range a.wantedKeys {
		want := a.wantedW[key]
		w := &sdnv1.Workload{Name: want.Name, Network: want.Network, Node: want.Node, Labels: want.Labels, Origin: hclFrom(want.GetOrigin().GetFile()), Vnid: a.vnidOf(want.Network),
			NamedPorts: normalNamedPorts(want.NamedPorts)}
		old, exists := a.storedW[key]
		_, hostReady := e.at.p.ips[want.Node]
		switch {
		case exists && old.Pending != "" && hostReady && !workloadMoves(old, want):
			// Waiting on a registered host (its block was full): try
			// again, and keep waiting rather than refuse the whole apply
			// if the block is still full.
			w.CreateRevision = old.CreateRevision
			if code, err := e.place(w, want.Ip, want.Mac); err != nil {
				if code != CodeExhausted {
					e.vs.add(code, model.KindWorkload, key, placeField(err), err.Error())
					continue
				}
				w.Ip, w.Mac, w.Pending = want.Ip, want.Mac, err.Error()
			}
		case exists && !workloadMoves(old, want):
			w.Ip, w.Mac, w.Pending, w.CreateRevision = old.Ip, old.Mac, old.Pending, old.CreateRevision
			if want.Mac != "" && want.Mac != old.Mac {
				if code, err := e.remac(old, want.Mac); err != nil {
					e.vs.add(code, model.KindWorkload, key, "mac", err.Error())
					continue
				}
				w.Mac = want.Mac
			}
		default:
			if code, err := e.place(w, want.Ip, want.Mac); err != nil {
				e.vs.add(code, model.KindWorkload, key, placeField(err), err.Error())
				continue
			}
			if exists {
				w.CreateRevision = old.CreateRevision
			}
		}
		switch {
		case !exists:
			a.wlPuts = append(a.wlPuts, wlPut{sdnv1.ChangeOp_CHANGE_OP_CREATE, w, nil})
		default:
			if d := workloadDetails(old, w); len(d) > 0 {
				a.wlPuts = append(a.wlPuts, wlPut{sdnv1.ChangeOp_CHANGE_OP_UPDATE, w, d})
			}
		}
	}
}

// writeSettings writes the requested cluster settings when they change
// anything (or none were stored), with a new subnet pool when the CIDR or
// host prefix changes.
func (a *configApply) writeSettings() *Error {
	e, newSettings, oldSettings := a.e, a.newSettings, a.oldSettings
	if newSettings == nil {
		return nil
	}
	newSettings.Origin = hclFrom(a.req.Cluster.GetOrigin().GetFile())
	base := oldSettings
	if base == nil {
		base = DefaultSettings()
	}
	newSettings.EffectiveMtu = base.EffectiveMtu
	if newSettings.Mtu != 0 {
		newSettings.EffectiveMtu = newSettings.Mtu
	}
	d := settingsDetails(base, newSettings)
	op := sdnv1.ChangeOp_CHANGE_OP_UPDATE
	if oldSettings == nil {
		op = sdnv1.ChangeOp_CHANGE_OP_CREATE
	}
	if oldSettings == nil || len(d) > 0 || newSettings.EffectiveMtu != base.EffectiveMtu {
		if newSettings.Cidr != base.Cidr || newSettings.HostPrefix != base.HostPrefix {
			sp, err := newSubnetPool(newSettings)
			if err != nil {
				e.vs.add(CodeInvalid, model.KindCluster, "", "cidr", err.Error())
				return e.fail()
			}
			e.at.replaceSubnets(sp) // no host holds a subnet (checked)
		}
		if err := e.putCluster(op, newSettings, d); err != nil {
			return ioError(err)
		}
	}
	return nil
}

// writeObjects writes the networks, workloads and policies, then removes
// what a prune removes (policies before the networks they belong to).
func (a *configApply) writeObjects() *Error {
	e := a.e
	for _, p := range a.netPuts {
		if err := e.putNetwork(p.op, p.n, p.details); err != nil {
			return ioError(err)
		}
	}
	for _, p := range a.wlPuts {
		if err := e.putWorkload(p.op, p.w, p.details); err != nil {
			return ioError(err)
		}
	}
	if rerr := a.writePolicies(); rerr != nil {
		return rerr
	}
	if rerr := a.writeServices(); rerr != nil {
		return rerr
	}
	for _, w := range a.pruneW {
		if err := e.deleteWorkload(w); err != nil {
			return ioError(err)
		}
	}
	for _, n := range a.pruneN {
		if err := e.deleteNetwork(n); err != nil {
			return ioError(err)
		}
	}
	return nil
}

// workloadMoves reports whether a requested workload needs a new address:
// another node, or another requested address or MAC than it has.
func workloadMoves(old, req *sdnv1.Workload) bool {
	if old.Node != req.Node {
		return true
	}
	if req.Ip != "" && req.Ip != old.Ip {
		return true
	}
	return false
}

// ioError reports a write that failed inside an FSM transaction. The
// transaction is abandoned; the FSM treats it as fatal.
func ioError(err error) *Error {
	panic(fmt.Sprintf("cluster: write to state failed: %v", err))
}

// finish commits (or, for a dry run, undoes) and builds the result.
func (e *exec) finish() (*Result, *Error) {
	rev, err := e.commit()
	if err != nil {
		return nil, ioError(err)
	}
	return &Result{Revision: rev, Changes: e.human}, nil
}
