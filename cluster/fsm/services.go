package fsm

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/cluster/alloc"
	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Services are declared in HCL only (ApplyRequest.services) and stored by
// model.ServiceKey. A service's virtual IP is the one it asks for or, when
// it asks for none, the one it holds, else the next free address of the
// cluster's service CIDR after the last one given (next fit, so a freed
// address is not handed out again at once). Node ports are checked against
// every other service's. Endpoints are derived (endpoints.go).

// servicePut is one service an apply writes.
type servicePut struct {
	op      sdnv1.ChangeOp
	v       *sdnv1.Service
	details []string
}

// cursorVIPs is the allocation cursor of virtual IPs (alloc.Pool's).
const cursorVIPs = "vips"

// serviceSettings is what services are checked against: the requested
// settings when the apply carries some, else the stored ones.
func (a *configApply) serviceSettings() (netip.Prefix, uint32, uint32) {
	s := a.newSettings
	if s == nil {
		s = effectiveSettings(a.e.tx)
	}
	cidr, _ := netip.ParsePrefix(s.ServiceCidr)
	lo, hi := model.NodePortRange(s)
	return cidr.Masked(), lo, hi
}

// checkServices checks the request's services each on its own and against
// the networks that remain; VIPs and node ports against other services are
// checked when they are claimed (allocateServices).
func (a *configApply) checkServices() {
	e := a.e
	a.storedS = map[string]*sdnv1.Service{}
	for _, v := range e.tx.Services("") {
		a.storedS[model.ServiceKey(v)] = v
	}
	cidr, lo, hi := a.serviceSettings()
	a.wantedS = map[string]*sdnv1.Service{}
	for _, v := range a.req.Services {
		key := model.ServiceKey(v)
		if msg := checkName(model.KindService, v.Name); msg != "" {
			e.vs.add(CodeInvalid, model.KindService, key, "", msg)
			continue
		}
		if _, dup := a.wantedS[key]; dup {
			e.vs.add(CodeInvalid, model.KindService, key, "", "declared twice; service names are unique in their network")
			continue
		}
		if !a.remaining[v.Network] {
			e.vs.add(CodeNotFound, model.KindService, key, "network", fmt.Sprintf("unknown network %q; declare it in a network block or check `sdnctl get networks`", v.Network))
		}
		if err := policy.CheckSelector("selector", v.Selector); err != nil {
			e.vs.add(CodeInvalid, model.KindService, key, "selector", err.Error())
		}
		// As stored: a port without a protocol is tcp.
		for _, err := range model.ValidateServicePorts(storedService(v).Ports, lo, hi) {
			e.vs.add(CodeInvalid, model.KindService, key, portField(v, err), err.Error())
		}
		for i, p := range v.Ports {
			for _, n := range [][2]string{{"name", p.Name}, {"target_port", p.TargetPortName}} {
				if err := policy.CheckPortName(n[1]); n[1] != "" && err != nil {
					e.vs.add(CodeInvalid, model.KindService, key, fmt.Sprintf("port[%d].%s", i, n[0]), err.Error())
				}
			}
		}
		if err := model.ValidateVIP(v.Vip, cidr); err != nil {
			e.vs.add(CodeInvalid, model.KindService, key, "vip", err.Error())
		}
		if v.GetSessionAffinity() != nil && v.SessionAffinity.TimeoutSeconds == 0 {
			e.vs.add(CodeInvalid, model.KindService, key, "session_affinity", "session affinity needs a timeout of at least one second")
		}
		if old, ok := a.storedS[key]; ok && old.GetOrigin().GetKind() != sdnv1.OriginKind_ORIGIN_KIND_HCL {
			e.vs.add(CodeConflict, model.KindService, key, "", fmt.Sprintf("exists and was created by %s, not HCL; choose another name", originName(old.Origin)))
		}
		a.wantedS[key] = v
	}
	a.checkKeptServices(cidr, lo, hi)
}

// portField is the range key of the port a ValidateServicePorts error
// names ("port N: ..."), "ports" when it names none.
func portField(v *sdnv1.Service, err error) string {
	var n int
	if _, scanErr := fmt.Sscanf(err.Error(), "port %d:", &n); scanErr != nil || n < 1 || n > len(v.Ports) {
		return "ports"
	}
	return fmt.Sprintf("port[%d]", n-1)
}

// checkKeptServices refuses new settings that would leave a stored service
// (one this apply keeps as it is) with a VIP outside the service CIDR or a
// node port outside the node-port range.
func (a *configApply) checkKeptServices(cidr netip.Prefix, lo, hi uint32) {
	if a.newSettings == nil {
		return
	}
	for _, key := range slices.Sorted(maps.Keys(a.storedS)) {
		v := a.storedS[key]
		if _, redeclared := a.wantedS[key]; redeclared || !a.remaining[v.Network] {
			continue
		}
		if ip, err := netip.ParseAddr(v.Vip); err == nil && !cidr.Contains(ip) {
			a.e.vs.add(CodeConflict, model.KindCluster, "", "service_cidr", fmt.Sprintf("service %s holds vip %s, outside service_cidr %s; delete the service or keep the range", key, v.Vip, cidr))
		}
		for _, p := range v.Ports {
			if p.NodePort != 0 && (p.NodePort < lo || p.NodePort > hi) {
				a.e.vs.add(CodeConflict, model.KindCluster, "", "node_port_range", fmt.Sprintf("service %s holds node port %d, outside %d-%d", key, p.NodePort, lo, hi))
			}
		}
	}
}

// planServicePrunes lists the HCL services a prune removes, and refuses to
// remove a network (pruned) that keeps services.
func (a *configApply) planServicePrunes() {
	if a.req.Prune {
		for _, key := range slices.Sorted(maps.Keys(a.storedS)) {
			v := a.storedS[key]
			if _, keep := a.wantedS[key]; !keep && v.GetOrigin().GetKind() == sdnv1.OriginKind_ORIGIN_KIND_HCL {
				a.pruneS = append(a.pruneS, v)
			}
		}
	}
	for _, n := range a.pruneN {
		var left []string
		for _, key := range slices.Sorted(maps.Keys(a.storedS)) {
			v := a.storedS[key]
			if _, wanted := a.wantedS[key]; v.Network == n.Name && !wanted && !slices.Contains(a.pruneS, v) {
				left = append(left, key)
			}
		}
		if len(left) > 0 {
			a.e.vs.add(CodeConflict, model.KindNetwork, n.Name, "", fmt.Sprintf("cannot prune: it still has %d services (%s); remove them in the same apply or delete them first", len(left), summarize(left, 3)))
		}
	}
}

// claims are the VIPs and node ports held after an apply, by the service
// key holding each.
type claims struct {
	vips      map[netip.Addr]string
	nodePorts map[uint32]string
}

// allocateServices gives every requested service its VIP, checks VIPs and
// node ports against every other service's, and lists the services to
// write. Claims go in order: services keeping the VIP they hold, then
// those asking for another, then allocations; so the refusal names the
// service that asks for a taken address, and an allocation never takes an
// address asked for.
func (a *configApply) allocateServices() {
	e := a.e
	cidr, _, _ := a.serviceSettings()
	c := a.keptClaims()
	wanted := slices.Sorted(maps.Keys(a.wantedS))
	out := map[string]*sdnv1.Service{}
	keeps := func(key string) bool { old, ok := a.storedS[key]; return ok && out[key].Vip == old.Vip }
	for _, key := range wanted {
		v := storedService(a.wantedS[key])
		if old, ok := a.storedS[key]; ok && v.Vip == "" {
			v.Vip = old.Vip
		}
		out[key] = v
	}
	for _, pass := range []bool{true, false} {
		for _, key := range wanted {
			if out[key].Vip != "" && keeps(key) == pass {
				a.claimVIP(c, key, out[key].Vip)
				a.claimNodePorts(c, key, out[key])
			}
		}
	}
	var pool *alloc.IPPool
	for _, key := range wanted {
		if out[key].Vip != "" {
			continue
		}
		a.claimNodePorts(c, key, out[key])
		var err error
		if pool == nil {
			pool, err = vipPool(cidr, c.vips, e.tx.Cursor(cursorVIPs))
		}
		if err != nil {
			e.vs.add(CodeInvalid, model.KindService, key, "vip", fmt.Sprintf("no virtual IP can be allocated: %v", err))
			continue
		}
		vip, err := pool.Allocate()
		if err != nil {
			e.vs.add(CodeExhausted, model.KindService, key, "vip", err.Error())
			continue
		}
		out[key].Vip = vip.String()
		c.vips[vip] = key
	}
	if pool != nil && e.write {
		if err := e.tx.SetCursor(cursorVIPs, pool.Pool().Cursor()); err != nil {
			ioError(err)
		}
	}
	for _, key := range wanted {
		a.planService(key, out[key])
	}
}

// keptClaims are the VIPs and node ports of the stored services this apply
// neither redeclares nor removes.
func (a *configApply) keptClaims() claims {
	c := claims{vips: map[netip.Addr]string{}, nodePorts: map[uint32]string{}}
	for key, v := range a.storedS {
		if _, redeclared := a.wantedS[key]; redeclared || slices.Contains(a.pruneS, v) {
			continue
		}
		if ip, err := netip.ParseAddr(v.Vip); err == nil {
			c.vips[ip] = key
		}
		for _, p := range v.Ports {
			if p.NodePort != 0 {
				c.nodePorts[p.NodePort] = key
			}
		}
	}
	return c
}

func (a *configApply) claimVIP(c claims, key, vip string) {
	ip, err := netip.ParseAddr(vip)
	if err != nil {
		return // checkServices said why
	}
	if other, taken := c.vips[ip]; taken && other != key {
		a.e.vs.add(CodeConflict, model.KindService, key, "vip", fmt.Sprintf("vip %s is service %s's; a virtual IP is one service's", vip, other))
		return
	}
	c.vips[ip] = key
}

func (a *configApply) claimNodePorts(c claims, key string, v *sdnv1.Service) {
	for i, p := range v.Ports {
		if p.NodePort == 0 {
			continue
		}
		if other, taken := c.nodePorts[p.NodePort]; taken && other != key {
			a.e.vs.add(CodeConflict, model.KindService, key, fmt.Sprintf("port[%d].node_port", i), fmt.Sprintf("node port %d is service %s's; a node port is one service's on every host", p.NodePort, other))
			continue
		}
		c.nodePorts[p.NodePort] = key
	}
}

// vipPool is the service CIDR's allocator for one apply: the VIPs taken
// claimed, its next-fit cursor where the last apply left it (so an
// address a deleted service freed is not handed out again at once).
func vipPool(cidr netip.Prefix, taken map[netip.Addr]string, cursor uint64) (*alloc.IPPool, error) {
	pool, err := alloc.NewVIPPool(cidr, "service_cidr "+cidr.String())
	if err != nil {
		return nil, err
	}
	for ip := range taken {
		_ = pool.Claim(ip) // one outside the CIDR was refused already
	}
	pool.Pool().SetCursor(cursor)
	return pool, nil
}

// planService lists a service to write when it is new or changed.
func (a *configApply) planService(key string, v *sdnv1.Service) {
	old, exists := a.storedS[key]
	if !exists {
		a.svcPuts = append(a.svcPuts, servicePut{sdnv1.ChangeOp_CHANGE_OP_CREATE, v, nil})
		return
	}
	v.CreateRevision = old.CreateRevision
	if d := serviceDetails(old, v); len(d) > 0 {
		a.svcPuts = append(a.svcPuts, servicePut{sdnv1.ChangeOp_CHANGE_OP_UPDATE, v, d})
	}
}

// writeServices writes the planned services and removes the pruned ones
// (their endpoints go with them: endpoints.go).
func (a *configApply) writeServices() *Error {
	for _, p := range a.svcPuts {
		if err := a.e.putService(p.op, p.v, p.details); err != nil {
			return ioError(err)
		}
	}
	for _, v := range a.pruneS {
		if err := a.e.deleteService(v); err != nil {
			return ioError(err)
		}
	}
	return nil
}

// storedService is a requested service as it is stored: input-only fields
// cleared, protocols spelled out, its origin HCL.
func storedService(in *sdnv1.Service) *sdnv1.Service {
	v := proto.Clone(in).(*sdnv1.Service)
	v.Ranges, v.CreateRevision, v.ModRevision = nil, 0, 0
	for _, p := range v.Ports {
		if p.Protocol == "" {
			p.Protocol = "tcp"
		}
	}
	v.Origin = hclFrom(in.GetOrigin().GetFile())
	return v
}

// serviceDetails lists what changed between two versions of a service.
func serviceDetails(old, cur *sdnv1.Service) []string {
	var d []string
	if old.Vip != cur.Vip {
		d = append(d, fmt.Sprintf("vip: %s -> %s", old.Vip, cur.Vip))
	}
	if !proto.Equal(old.Selector, cur.Selector) {
		d = append(d, fmt.Sprintf("selector: %s -> %s", selectorText(old.Selector), selectorText(cur.Selector)))
	}
	if a, b := portsText(old.Ports), portsText(cur.Ports); a != b {
		d = append(d, fmt.Sprintf("ports: %s -> %s", a, b))
	}
	if a, b := old.GetSessionAffinity().GetTimeoutSeconds(), cur.GetSessionAffinity().GetTimeoutSeconds(); a != b {
		d = append(d, fmt.Sprintf("session affinity: %s -> %s", affinityText(a), affinityText(b)))
	}
	if old.GetOrigin().GetFile() != cur.GetOrigin().GetFile() {
		d = append(d, fmt.Sprintf("file: %s -> %s", old.GetOrigin().GetFile(), cur.GetOrigin().GetFile()))
	}
	return d
}

// portsText renders a service's ports as `sdnctl get services` shows them:
// "80/tcp->8080", "53/udp->dns", "80/tcp->8080 (node 30080)".
func portsText(ports []*sdnv1.ServicePort) string {
	s := ""
	for i, p := range ports {
		if i > 0 {
			s += ","
		}
		s += model.ServicePortText(p)
	}
	return s
}

func affinityText(seconds uint32) string {
	if seconds == 0 {
		return "none"
	}
	return fmt.Sprintf("client IP for %ds", seconds)
}

func (e *exec) putService(op sdnv1.ChangeOp, v *sdnv1.Service, details []string) error {
	v.ModRevision = e.rev
	if op == sdnv1.ChangeOp_CHANGE_OP_CREATE {
		v.CreateRevision = e.rev
	}
	e.record(op, model.KindService, model.ServiceKey(v), details, &sdnv1.ObjectChange{Service: v})
	if !e.write {
		return nil
	}
	return e.tx.PutService(v)
}

func (e *exec) deleteService(v *sdnv1.Service) error {
	key := model.ServiceKey(v)
	e.record(sdnv1.ChangeOp_CHANGE_OP_DELETE, model.KindService, key, nil, &sdnv1.ObjectChange{Service: v})
	if !e.write {
		return nil
	}
	return e.tx.DeleteService(key)
}

// deleteServiceObject handles `sdnctl delete service NETWORK/NAME`.
func deleteServiceObject(e *exec, name string) (*Result, *Error) {
	v, ok := e.tx.Service(name)
	if !ok {
		return nil, refuse(CodeNotFound, model.KindService, name, "", fmt.Sprintf("no service %q; name it NETWORK/NAME (`sdnctl get services` lists them)", name))
	}
	if err := e.deleteService(v); err != nil {
		return nil, ioError(err)
	}
	return e.finish()
}

// networkServices lists the keys of the services of a network, sorted.
func networkServices(e *exec, network string) []string {
	var keys []string
	for _, v := range e.tx.Services(network) {
		keys = append(keys, model.ServiceKey(v))
	}
	return keys
}
