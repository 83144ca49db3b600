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
	}
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
}

// verdict resolves the request's ends and decides the packet, which it
// returns too.
func (vs *verdictState) verdict(req *sdnv1.VerdictRequest) (policy.Packet, *sdnv1.VerdictResponse, error) {
	from, err := vs.resolve("from", req.GetFrom())
	if err != nil {
		return policy.Packet{}, nil, err
	}
	to, err := vs.resolve("to", req.GetTo())
	if err != nil {
		return policy.Packet{}, nil, err
	}
	cs := vs.cluster
	if cs == nil {
		cs = fsm.DefaultSettings()
	}
	w := policy.World{
		Isolation:           cs.Isolation,
		HostTrafficByPolicy: cs.HostTrafficByPolicy,
		Networks:            map[string]*sdnv1.Network{},
		Policies:            vs.policies,
	}
	for _, n := range vs.networks {
		w.Networks[n.Name] = n
	}
	pkt := policy.Packet{From: from, To: to, Protocol: req.Protocol, Port: req.Port}
	out := w.Verdict(pkt)
	out.Revision = vs.revision
	out.Summary = fmt.Sprintf("%s -> %s %s", endSummary(from), endSummary(to), packetWhat(pkt))
	return pkt, out, nil
}

// resolve finds what an endpoint names: a workload ("network/name"), or
// an address: a workload's, a host's gateway address, or an outside one.
func (vs *verdictState) resolve(side string, e *sdnv1.Endpoint) (policy.End, error) {
	switch {
	case e.GetWorkload() != "" && e.GetIp() != "":
		return policy.End{}, status.Errorf(codes.InvalidArgument, "%s names workload %q and ip %q; give one of them", side, e.GetWorkload(), e.GetIp())
	case e.GetWorkload() != "":
		return vs.byName(side, e.GetWorkload())
	case e.GetIp() != "":
		return vs.byIP(side, e.GetIp())
	}
	return policy.End{}, status.Errorf(codes.InvalidArgument, "%s is empty; give a workload as NETWORK/NAME or an IPv4 address", side)
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
