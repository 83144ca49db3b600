package api

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/cluster/fsm"
	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Verdict decides a packet from the model alone: the servers' state at one
// revision, read in one transaction, judged by policy.World.Verdict
// (docs/policy.md, "The verdict on a packet").
func (s *Server) Verdict(ctx context.Context, req *sdnv1.VerdictRequest) (*sdnv1.VerdictResponse, error) {
	if err := checkVerdictPort(req); err != nil {
		return nil, err
	}
	if err := s.read(ctx, false); err != nil {
		return nil, err
	}
	var vs *verdictState
	err := s.cluster.FSM().View(func(tx *state.Tx) error {
		vs = readVerdictState(tx)
		return nil
	})
	if err != nil {
		return nil, toStatus(err)
	}
	_, out, err := vs.verdict(req)
	return out, err
}

// readVerdictState reads what a verdict depends on.
func readVerdictState(tx *state.Tx) *verdictState {
	return &verdictState{
		revision:  tx.Meta().Revision,
		cluster:   tx.Cluster(),
		networks:  tx.Networks(),
		workloads: tx.Workloads(""),
		nodes:     tx.Nodes(),
		policies:  readPolicies(tx),
		services:  tx.Services(""),
		endpoints: readEndpoints(tx),
	}
}

// readEndpoints reads every service's endpoints, by service key.
func readEndpoints(tx *state.Tx) map[string]*sdnv1.ServiceEndpoints {
	out := map[string]*sdnv1.ServiceEndpoints{}
	for _, ep := range tx.AllServiceEndpoints("") {
		out[ep.Service] = ep
	}
	return out
}

// readPolicies reads every stored policy.
func readPolicies(tx *state.Tx) []*sdnv1.Policy { return tx.Policies() }

// verdictState is what a verdict depends on, read at one revision.
type verdictState struct {
	revision  uint64
	cluster   *sdnv1.ClusterSettings
	networks  []*sdnv1.Network
	workloads []*sdnv1.Workload
	nodes     []*sdnv1.Node
	policies  []*sdnv1.Policy
	services  []*sdnv1.Service
	endpoints map[string]*sdnv1.ServiceEndpoints // by service key
}

// verdict resolves the request's ends and decides the packet, which it
// returns too. A destination that is a service (by name, or its VIP) is
// decided per endpoint (serviceVerdict); the packet returned is then the
// one to the VIP.
func (vs *verdictState) verdict(req *sdnv1.VerdictRequest) (policy.Packet, *sdnv1.VerdictResponse, error) {
	from, err := vs.resolve("from", req.GetFrom())
	if err != nil {
		return policy.Packet{}, nil, err
	}
	if dest, ok, err := vs.serviceDest(req.GetTo()); err != nil {
		return policy.Packet{}, nil, err
	} else if ok {
		pkt := policy.Packet{From: from, To: policy.End{IP: dest.vip}, Protocol: req.Protocol, Port: req.Port}
		return pkt, vs.serviceVerdict(pkt, dest), nil
	}
	to, err := vs.resolve("to", req.GetTo())
	if err != nil {
		return policy.Packet{}, nil, err
	}
	pkt := policy.Packet{From: from, To: to, Protocol: req.Protocol, Port: req.Port}
	return pkt, vs.decide(pkt), nil
}

// world is the policy world of the state.
func (vs *verdictState) world() *policy.World {
	cs := vs.cluster
	if cs == nil {
		cs = fsm.DefaultSettings()
	}
	w := &policy.World{
		Isolation:           cs.Isolation,
		HostTrafficByPolicy: cs.HostTrafficByPolicy,
		Networks:            map[string]*sdnv1.Network{},
		Policies:            vs.policies,
	}
	for _, n := range vs.networks {
		w.Networks[n.Name] = n
	}
	return w
}

// decide is the verdict on one packet between resolved ends.
func (vs *verdictState) decide(pkt policy.Packet) *sdnv1.VerdictResponse {
	out := vs.world().Verdict(pkt)
	out.Revision = vs.revision
	out.Summary = fmt.Sprintf("%s -> %s %s", endSummary(pkt.From), endSummary(pkt.To), packetWhat(pkt))
	return out
}

// resolve finds what an endpoint names: a workload ("network/name"), or
// an address: a workload's, a host's gateway address, or an outside one.
func (vs *verdictState) resolve(side string, e *sdnv1.Endpoint) (policy.End, error) {
	switch {
	case e.GetService() != "":
		return policy.End{}, status.Errorf(codes.InvalidArgument, "%s names service %s: a service is a destination only (a connection comes from one of its workloads, not from its VIP)", side, model.Quote(e.GetService()))
	case e.GetWorkload() != "" && e.GetIp() != "":
		return policy.End{}, status.Errorf(codes.InvalidArgument, "%s names workload %q and ip %q; give one of them", side, e.GetWorkload(), e.GetIp())
	case e.GetWorkload() != "":
		return vs.byName(side, e.GetWorkload())
	case e.GetIp() != "":
		return vs.byIP(side, e.GetIp())
	}
	return policy.End{}, status.Errorf(codes.InvalidArgument, "%s is empty; give a workload as NETWORK/NAME, an IPv4 address or (as the destination) a service", side)
}

func (vs *verdictState) byName(side, key string) (policy.End, error) {
	network, name, ok := strings.Cut(key, "/")
	if !ok || model.ValidateName(network) != nil || model.ValidateName(name) != nil {
		return policy.End{}, status.Errorf(codes.InvalidArgument, "%s workload %s is not NETWORK/NAME, e.g. proj1/web1", side, model.Quote(key))
	}
	for _, w := range vs.workloads {
		if w.Network == network && w.Name == name {
			return workloadEnd(w), nil
		}
	}
	return policy.End{}, status.Errorf(codes.NotFound, "%s: no workload %s; `sdnctl get workloads --network %s` lists that network's workloads", side, model.Quote(key), network)
}

func (vs *verdictState) byIP(side, s string) (policy.End, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return policy.End{}, status.Errorf(codes.InvalidArgument, "%s ip %s is not an IPv4 address, e.g. 10.128.0.10", side, model.Quote(s))
	}
	for _, w := range vs.workloads {
		if w.Ip == a.String() {
			return workloadEnd(w), nil
		}
	}
	for _, n := range vs.nodes {
		if n.GatewayIp == a.String() {
			return policy.End{IP: a, Host: true, Node: n.Name}, nil
		}
	}
	return policy.End{IP: a}, nil
}

func workloadEnd(w *sdnv1.Workload) policy.End {
	a, _ := netip.ParseAddr(w.Ip) // invalid (no address yet) matches no cidr
	return policy.End{Workload: w, IP: a}
}

// checkVerdictPort refuses a packet no network carries: icmp has no port;
// tcp and udp need one.
func checkVerdictPort(req *sdnv1.VerdictRequest) error {
	switch req.Protocol {
	case "icmp":
		if req.Port != 0 {
			return status.Errorf(codes.InvalidArgument, "icmp has no port (got %d); ask for icmp alone", req.Port)
		}
	case "tcp", "udp":
		if req.Port == 0 || req.Port > 65535 {
			return status.Errorf(codes.InvalidArgument, "%s port %d is out of range; give 1 to 65535, e.g. %s/80", req.Protocol, req.Port, req.Protocol)
		}
	default:
		return status.Errorf(codes.InvalidArgument, "protocol %s is not tcp, udp or icmp", model.Quote(req.Protocol))
	}
	return nil
}

// endSummary renders an end with what the model knows of it: a workload's
// address and host, or what kind of address it is.
func endSummary(e policy.End) string {
	switch {
	case e.Workload != nil:
		ip := e.Workload.Ip
		if ip == "" {
			ip = "no address yet"
		}
		return fmt.Sprintf("%s (%s on %s)", e.Name(), ip, e.Workload.Node)
	case e.Host:
		return e.Name()
	}
	return e.IP.String() + " (not a workload)"
}

func packetWhat(p policy.Packet) string {
	if p.Protocol == "icmp" {
		return "icmp"
	}
	return fmt.Sprintf("%s/%d", p.Protocol, p.Port)
}

// serviceDest is a destination that is a service's VIP (svc nil: an
// address of the service CIDR no service holds, which the hosts refuse
// as they refuse a VIP without endpoints).
type serviceDest struct {
	svc *sdnv1.Service
	vip netip.Addr
}

// serviceDest reads a destination that names a service, or a VIP; ok is
// false for any other destination.
func (vs *verdictState) serviceDest(e *sdnv1.Endpoint) (serviceDest, bool, error) {
	if key := e.GetService(); key != "" {
		if e.GetWorkload() != "" || e.GetIp() != "" {
			return serviceDest{}, false, status.Errorf(codes.InvalidArgument, "to names service %s and a workload or ip; give one of them", model.Quote(key))
		}
		network, name, ok := strings.Cut(key, "/")
		if !ok || model.ValidateName(network) != nil || model.ValidateName(name) != nil {
			return serviceDest{}, false, status.Errorf(codes.InvalidArgument, "to service %s is not NETWORK/NAME, e.g. proj1/web", model.Quote(key))
		}
		for _, s := range vs.services {
			if s.Network == network && s.Name == name {
				vip, _ := netip.ParseAddr(s.Vip)
				return serviceDest{svc: s, vip: vip}, true, nil
			}
		}
		return serviceDest{}, false, status.Errorf(codes.NotFound, "to: no service %s; `sdnctl get services --network %s` lists that network's services", model.Quote(key), network)
	}
	a, err := netip.ParseAddr(e.GetIp())
	if e.GetWorkload() != "" || err != nil {
		return serviceDest{}, false, nil // resolve says what is wrong
	}
	for _, s := range vs.services {
		if s.Vip == a.String() {
			return serviceDest{svc: s, vip: a}, true, nil
		}
	}
	if cidr, err := netip.ParsePrefix(vs.serviceCIDR()); err == nil && cidr.Contains(a) {
		return serviceDest{vip: a}, true, nil
	}
	return serviceDest{}, false, nil
}

func (vs *verdictState) serviceCIDR() string {
	if vs.cluster != nil && vs.cluster.ServiceCidr != "" {
		return vs.cluster.ServiceCidr
	}
	return fsm.DefaultSettings().ServiceCidr
}

// serviceVerdict decides a packet to a service's VIP: the client's host
// balances it over the endpoints serving the port, translating it to the
// endpoint's address and port, and policy decides that packet
// (docs/services.md, "The datapath"); so the verdict is each endpoint's,
// and the whole is allowed when every endpoint allows it. No endpoint (or
// no such port) and the host refuses the connection, if the client's
// egress lets it go to the VIP at all.
func (vs *verdictState) serviceVerdict(pkt policy.Packet, dest serviceDest) *sdnv1.VerdictResponse {
	sv := &sdnv1.ServiceVerdict{Vip: dest.vip.String()}
	out := &sdnv1.VerdictResponse{Revision: vs.revision, Service: sv}
	name := "no service"
	if dest.svc != nil {
		sv.Service = model.ServiceKey(dest.svc)
		name = "service " + sv.Service
	}
	out.Summary = fmt.Sprintf("%s -> %s (%s) %s", endSummary(pkt.From), name, dest.vip, packetWhat(pkt))
	k := servicePortIndex(dest.svc, pkt)
	if k >= 0 {
		sv.HasPort, sv.PortName = true, dest.svc.Ports[k].Name
		sv.Endpoints = vs.endpointVerdicts(pkt, sv.Service, k)
	}
	if len(sv.Endpoints) == 0 {
		vs.refused(out, pkt, dest)
		return out
	}
	allowed := 0
	var denied []string
	for _, ev := range sv.Endpoints {
		if ev.Verdict.Allowed {
			allowed++
		} else {
			denied = append(denied, ev.Workload)
		}
	}
	n := len(sv.Endpoints)
	switch {
	case allowed == n:
		sv.Outcome, out.Allowed = "all", true
		sv.Reason = fmt.Sprintf("every endpoint serving %s allows it (%d of %d)", packetWhat(pkt), allowed, n)
	case allowed == 0:
		sv.Outcome = "none"
		sv.Reason = fmt.Sprintf("no endpoint serving %s allows it (0 of %d): every connection fails", packetWhat(pkt), n)
	default:
		sv.Outcome = "some"
		sv.Reason = fmt.Sprintf("%d of %d endpoints serving %s allow it: a connection fails when the host picks %s", allowed, n, packetWhat(pkt), strings.Join(denied, " or "))
	}
	return out
}

// servicePortIndex is the index of the service's port the packet is to,
// -1 when it has none (or there is no service).
func servicePortIndex(svc *sdnv1.Service, pkt policy.Packet) int {
	for k, p := range svc.GetPorts() {
		if p.Protocol == pkt.Protocol && p.Port == pkt.Port {
			return k
		}
	}
	return -1
}

// endpointVerdicts decides, for each endpoint serving port k of the
// service, the packet translated to it: the endpoint's address and the
// port it serves.
func (vs *verdictState) endpointVerdicts(pkt policy.Packet, key string, k int) []*sdnv1.EndpointVerdict {
	var out []*sdnv1.EndpointVerdict
	for _, ep := range vs.endpoints[key].GetEndpoints() {
		if k >= len(ep.Ports) || ep.Ports[k] == 0 {
			continue
		}
		to := policy.End{}
		to.IP, _ = netip.ParseAddr(ep.Ip)
		for _, w := range vs.workloads {
			if model.WorkloadKey(w.Network, w.Name) == ep.Workload {
				to = workloadEnd(w)
			}
		}
		p := policy.Packet{From: pkt.From, To: to, Protocol: pkt.Protocol, Port: ep.Ports[k]}
		out = append(out, &sdnv1.EndpointVerdict{Workload: ep.Workload, Ip: ep.Ip, Node: ep.Node, Port: ep.Ports[k], Verdict: vs.decide(p)})
	}
	return out
}

// refused fills the verdict on a packet to a VIP:port no endpoint serves:
// the client's egress decides whether it leaves for the VIP, then the
// client's host refuses it.
func (vs *verdictState) refused(out *sdnv1.VerdictResponse, pkt policy.Packet, dest serviceDest) {
	sv := out.Service
	out.Egress = vs.world().Decide(policy.Egress, pkt)
	if !out.Egress.Allowed {
		sv.Outcome = "none"
		sv.Reason = "the client's egress denies the packet to the VIP before any host could refuse it: " + out.Egress.Reason
		return
	}
	sv.Outcome = "refused"
	answer := "a TCP reset"
	if pkt.Protocol != "tcp" {
		answer = "ICMP port unreachable"
	}
	host := "the client's host"
	if w := pkt.From.Workload; w != nil && w.Node != "" {
		host = "host " + w.Node
	}
	switch {
	case dest.svc == nil:
		sv.Reason = fmt.Sprintf("no service has address %s (in the service CIDR): %s refuses the connection (%s)", dest.vip, host, answer)
	case !sv.HasPort:
		sv.Reason = fmt.Sprintf("service %s has no port %s (it has %s): %s refuses the connection (%s)", sv.Service, packetWhat(pkt), portList(dest.svc), host, answer)
	default:
		sv.Reason = fmt.Sprintf("no endpoints: no workload serves %s of service %s, so %s refuses the connection (%s)", packetWhat(pkt), sv.Service, host, answer)
	}
}

// portList renders a service's ports, "tcp/80, udp/53".
func portList(s *sdnv1.Service) string {
	var parts []string
	for _, p := range s.Ports {
		parts = append(parts, fmt.Sprintf("%s/%d", p.Protocol, p.Port))
	}
	return strings.Join(parts, ", ")
}
