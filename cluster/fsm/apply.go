package fsm

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// applyConfig executes an ApplyConfig command (or, with e.write unset, plans
// it). It checks everything first, then allocates, then writes: a refused
// command writes nothing and leaves the allocators as they were.
func applyConfig(e *exec, req *sdnv1.ApplyRequest) (*Result, *Error) {
	hcl := func(file string) *sdnv1.Origin {
		return &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_HCL, File: file}
	}

	// Phase 1: checks, against the stored state and the request itself.
	var newSettings, oldSettings *sdnv1.ClusterSettings
	if req.Cluster != nil {
		newSettings = fillSettingDefaults(req.Cluster)
		checkSettings(&e.vs, e.tx, newSettings)
		oldSettings = e.tx.Cluster()
	}

	stored := map[string]*sdnv1.Network{}
	for _, n := range e.tx.Networks() {
		stored[n.Name] = n
	}
	wanted := map[string]*sdnv1.Network{}
	for _, n := range req.Networks {
		if msg := checkName("network", n.Name); msg != "" {
			e.vs.add(CodeInvalid, "network", n.Name, "", msg)
			continue
		}
		if _, dup := wanted[n.Name]; dup {
			e.vs.add(CodeInvalid, "network", n.Name, "", "declared twice")
			continue
		}
		if msg := checkLabels(n.Labels); msg != "" {
			e.vs.add(CodeInvalid, "network", n.Name, "labels", msg)
		}
		if old, ok := stored[n.Name]; ok && old.Admin != n.Admin {
			e.vs.add(CodeConflict, "network", n.Name, "admin", fmt.Sprintf("admin cannot change after creation (the network holds VNID %d for its lifetime); delete and recreate the network", old.Vnid))
		}
		if old, ok := stored[n.Name]; ok && old.GetOrigin().GetKind() != sdnv1.OriginKind_ORIGIN_KIND_HCL {
			e.vs.add(CodeConflict, "network", n.Name, "", fmt.Sprintf("exists and was created by %s, not HCL; choose another name", originName(old.Origin)))
		}
		wanted[n.Name] = n
	}
	// Networks that exist after this command.
	remaining := map[string]bool{}
	for name, n := range stored {
		if _, keep := wanted[name]; keep || !req.Prune || n.GetOrigin().GetKind() != sdnv1.OriginKind_ORIGIN_KIND_HCL {
			remaining[name] = true
		}
	}
	for name := range wanted {
		remaining[name] = true
	}
	var admins []string
	for name := range remaining {
		n := wanted[name]
		if n == nil {
			n = stored[name]
		}
		if n.Admin {
			admins = append(admins, name)
		}
	}
	sort.Strings(admins)
	if len(admins) > 1 {
		for _, name := range admins {
			if _, inReq := wanted[name]; inReq {
				e.vs.add(CodeConflict, "network", name, "admin", fmt.Sprintf("only one network can be the admin network (VNID 0); admin networks would be %s", strings.Join(admins, ", ")))
			}
		}
	}

	storedW := map[string]*sdnv1.Workload{}
	for _, w := range e.tx.Workloads("") {
		storedW[state.WorkloadKey(w.Network, w.Name)] = w
	}
	wantedW := map[string]*sdnv1.Workload{}
	var wantedKeys []string
	for _, w := range req.Workloads {
		key := state.WorkloadKey(w.Network, w.Name)
		if msg := checkName("workload", w.Name); msg != "" {
			e.vs.add(CodeInvalid, "workload", key, "", msg)
			continue
		}
		if _, dup := wantedW[key]; dup {
			e.vs.add(CodeInvalid, "workload", key, "", "declared twice")
			continue
		}
		if msg := checkLabels(w.Labels); msg != "" {
			e.vs.add(CodeInvalid, "workload", key, "labels", msg)
		}
		if !remaining[w.Network] {
			e.vs.add(CodeNotFound, "workload", key, "network", fmt.Sprintf("unknown network %q; declare it in a network block or check `sdnctl get networks`", w.Network))
		}
		if msg := checkName("node", w.Node); msg != "" {
			e.vs.add(CodeInvalid, "workload", key, "node", msg)
		}
		if field, msg := checkAddrs(w); msg != "" {
			e.vs.add(CodeInvalid, "workload", key, field, msg)
		}
		if old, ok := storedW[key]; ok && old.GetOrigin().GetKind() != sdnv1.OriginKind_ORIGIN_KIND_HCL {
			e.vs.add(CodeConflict, "workload", key, "", fmt.Sprintf("exists and was attached by %s, not HCL; choose another name", originName(old.Origin)))
		}
		if n, ok := e.tx.Node(w.Node); ok && n.Drained {
			// New workloads (or ones moving here) only; those already on
			// the host stay.
			if old, ok := storedW[key]; !ok || old.Node != w.Node {
				e.vs.add(CodeConflict, "workload", key, "node", drainedRefusal(w.Node))
			}
		}
		wantedW[key] = w
		wantedKeys = append(wantedKeys, key)
	}
	sort.Strings(wantedKeys)
	var pruneW []*sdnv1.Workload
	if req.Prune {
		for _, key := range slices.Sorted(maps.Keys(storedW)) {
			w := storedW[key]
			if _, keep := wantedW[key]; !keep && w.GetOrigin().GetKind() == sdnv1.OriginKind_ORIGIN_KIND_HCL {
				pruneW = append(pruneW, w)
			}
		}
	}
	var pruneN []*sdnv1.Network
	for _, name := range slices.Sorted(maps.Keys(stored)) {
		if remaining[name] {
			continue
		}
		pruneN = append(pruneN, stored[name])
		var left []string
		for key, w := range storedW {
			if w.Network == name && !slices.Contains(pruneW, w) {
				left = append(left, key)
			}
		}
		for key, w := range wantedW {
			if w.Network == name {
				left = append(left, key)
			}
		}
		if len(left) > 0 {
			sort.Strings(left)
			e.vs.add(CodeConflict, "network", name, "", fmt.Sprintf("cannot prune: it still has %d workloads (%s); detach them first", len(left), summarize(left, 3)))
		}
	}
	if len(e.vs.list) > 0 {
		return nil, e.fail()
	}

	// Phase 2: allocations. Releases first, so a pruned workload's address
	// is free for a new one in the same apply.
	for _, w := range pruneW {
		e.unplace(w)
	}
	for _, n := range pruneN {
		if !n.Admin {
			e.at.releaseVNID(n.Vnid)
		}
	}
	type netPut struct {
		op      sdnv1.ChangeOp
		n       *sdnv1.Network
		details []string
	}
	var netPuts []netPut
	vnids := map[string]uint32{} // networks of this request, by name
	for _, name := range slices.Sorted(maps.Keys(wanted)) {
		req := wanted[name]
		n := &sdnv1.Network{Name: name, Labels: req.Labels, Admin: req.Admin, Origin: hcl(req.GetOrigin().GetFile())}
		if old, ok := stored[name]; ok {
			n.Vnid, n.CreateRevision = old.Vnid, old.CreateRevision
			vnids[name] = n.Vnid
			if d := networkDetails(old, n); len(d) > 0 {
				netPuts = append(netPuts, netPut{sdnv1.ChangeOp_CHANGE_OP_UPDATE, n, d})
			}
			continue
		}
		if !n.Admin {
			v, err := e.at.vnid()
			if err != nil {
				e.vs.add(CodeExhausted, "network", name, "", fmt.Sprintf("allocate a VNID: %v", err))
				return nil, e.fail()
			}
			n.Vnid = v
		}
		vnids[name] = n.Vnid
		netPuts = append(netPuts, netPut{sdnv1.ChangeOp_CHANGE_OP_CREATE, n, nil})
	}
	vnidOf := func(network string) uint32 {
		if v, ok := vnids[network]; ok {
			return v
		}
		return stored[network].GetVnid()
	}
	type wlPut struct {
		op      sdnv1.ChangeOp
		w       *sdnv1.Workload
		details []string
	}
	var wlPuts []wlPut
	// Moves and address changes release before anything claims.
	for _, key := range wantedKeys {
		if old, ok := storedW[key]; ok && workloadMoves(old, wantedW[key]) {
			e.unplace(old)
		}
	}
	for _, key := range wantedKeys {
		req := wantedW[key]
		w := &sdnv1.Workload{Name: req.Name, Network: req.Network, Node: req.Node, Labels: req.Labels, Origin: hcl(req.GetOrigin().GetFile()), Vnid: vnidOf(req.Network)}
		old, exists := storedW[key]
		_, hostReady := e.at.p.ips[req.Node]
		switch {
		case exists && old.Pending != "" && hostReady && !workloadMoves(old, req):
			// Waiting on a registered host (its block was full): try
			// again, and keep waiting rather than refuse the whole apply
			// if the block is still full.
			w.CreateRevision = old.CreateRevision
			if code, err := e.place(w, req.Ip, req.Mac); err != nil {
				if code != CodeExhausted {
					e.vs.add(code, "workload", key, "ip", err.Error())
					continue
				}
				w.Ip, w.Mac, w.Pending = req.Ip, req.Mac, err.Error()
			}
		case exists && !workloadMoves(old, req):
			w.Ip, w.Mac, w.Pending, w.CreateRevision = old.Ip, old.Mac, old.Pending, old.CreateRevision
			if req.Mac != "" {
				w.Mac = req.Mac
			}
		default:
			if code, err := e.place(w, req.Ip, req.Mac); err != nil {
				e.vs.add(code, "workload", key, "ip", err.Error())
				continue
			}
			if exists {
				w.CreateRevision = old.CreateRevision
			}
		}
		switch {
		case !exists:
			wlPuts = append(wlPuts, wlPut{sdnv1.ChangeOp_CHANGE_OP_CREATE, w, nil})
		default:
			if d := workloadDetails(old, w); len(d) > 0 {
				wlPuts = append(wlPuts, wlPut{sdnv1.ChangeOp_CHANGE_OP_UPDATE, w, d})
			}
		}
	}
	if len(e.vs.list) > 0 {
		return nil, e.fail()
	}

	// Phase 3: writes.
	if newSettings != nil {
		newSettings.Origin = hcl(req.Cluster.GetOrigin().GetFile())
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
					e.vs.add(CodeInvalid, "cluster", "", "cidr", err.Error())
					return nil, e.fail()
				}
				e.at.replaceSubnets(sp) // no host holds a subnet (checked)
			}
			if err := e.putCluster(op, newSettings, d); err != nil {
				return nil, ioError(err)
			}
		}
	}
	for _, p := range netPuts {
		if err := e.putNetwork(p.op, p.n, p.details); err != nil {
			return nil, ioError(err)
		}
	}
	for _, p := range wlPuts {
		if err := e.putWorkload(p.op, p.w, p.details); err != nil {
			return nil, ioError(err)
		}
	}
	for _, w := range pruneW {
		if err := e.deleteWorkload(w); err != nil {
			return nil, ioError(err)
		}
	}
	for _, n := range pruneN {
		if err := e.deleteNetwork(n); err != nil {
			return nil, ioError(err)
		}
	}
	return e.finish()
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

func networkDetails(old, cur *sdnv1.Network) []string {
	var d []string
	d = append(d, labelDetails(old.Labels, cur.Labels)...)
	if old.GetOrigin().GetFile() != cur.GetOrigin().GetFile() {
		d = append(d, fmt.Sprintf("file: %q -> %q", old.GetOrigin().GetFile(), cur.GetOrigin().GetFile()))
	}
	return d
}

func workloadDetails(old, cur *sdnv1.Workload) []string {
	var d []string
	for _, f := range []struct{ name, a, b string }{
		{"node", old.Node, cur.Node}, {"ip", old.Ip, cur.Ip}, {"mac", old.Mac, cur.Mac}, {"pending", old.Pending, cur.Pending},
	} {
		if f.a != f.b {
			d = append(d, fmt.Sprintf("%s: %q -> %q", f.name, f.a, f.b))
		}
	}
	d = append(d, labelDetails(old.Labels, cur.Labels)...)
	if old.GetOrigin().GetFile() != cur.GetOrigin().GetFile() {
		d = append(d, fmt.Sprintf("file: %q -> %q", old.GetOrigin().GetFile(), cur.GetOrigin().GetFile()))
	}
	return d
}

func labelDetails(old, cur map[string]string) []string {
	var d []string
	keys := map[string]bool{}
	for k := range old {
		keys[k] = true
	}
	for k := range cur {
		keys[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		a, hadA := old[k]
		b, hasB := cur[k]
		switch {
		case !hadA:
			d = append(d, fmt.Sprintf("labels.%s: (none) -> %q", k, b))
		case !hasB:
			d = append(d, fmt.Sprintf("labels.%s: %q -> (none)", k, a))
		case a != b:
			d = append(d, fmt.Sprintf("labels.%s: %q -> %q", k, a, b))
		}
	}
	return d
}

func originName(o *sdnv1.Origin) string {
	switch o.GetKind() {
	case sdnv1.OriginKind_ORIGIN_KIND_HCL:
		return "HCL"
	case sdnv1.OriginKind_ORIGIN_KIND_CNI:
		return "CNI"
	case sdnv1.OriginKind_ORIGIN_KIND_AGENT:
		return "an agent"
	case sdnv1.OriginKind_ORIGIN_KIND_API:
		return "the API"
	}
	return "an unknown origin"
}

func summarize(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(", and %d more", len(items)-n)
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
