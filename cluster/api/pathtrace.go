package api

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Trace (PolicyService.Trace) asks the real datapath what the model's
// Verdict answers from the state: the packet is traced on the source
// workload's host (ofproto/trace, told in the pipeline's words by the
// agent's datapath service, node/dpsvc) and, when that host sends it over
// the tunnel, on the destination's host. The answer holds the model's
// verdict, every host's steps, and, when the two differ, the disagreement
// in words. A host that cannot be asked makes the datapath's outcome
// unknown; it is never guessed.

// hostCallTimeout bounds each call to a host's datapath service.
const hostCallTimeout = 5 * time.Second

// tracePlan is what a trace needs from the state, read in one transaction.
type tracePlan struct {
	revision uint64
	packet   policy.Packet
	verdict  *sdnv1.VerdictResponse
	// The source workload's host and the destination's (nil when the
	// destination is no workload: the packet leaves through src's gateway).
	src, dst *sdnv1.Node
	fromKey  string
	vnid     uint32 // the source's VNID, which the tunnel carries
	// When the destination is a service: the model's verdict over its
	// endpoints, and the hosts its endpoints run on, by name.
	service *sdnv1.ServiceVerdict
	nodes   map[string]*sdnv1.Node
}

// Trace traces one packet through the datapaths it crosses.
func (s *Server) Trace(ctx context.Context, req *sdnv1.VerdictRequest) (*sdnv1.TraceResponse, error) {
	if err := s.read(ctx, false); err != nil {
		return nil, err
	}
	var plan *tracePlan
	err := s.cluster.FSM().View(func(tx *state.Tx) error {
		var err error
		plan, err = planTrace(tx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := &sdnv1.TraceResponse{Revision: plan.revision, Model: plan.verdict}
	first := s.traceOn(ctx, plan.src, &sdnv1.DatapathTraceRequest{InWorkload: plan.fromKey}, plan.packet)
	out.Hosts = append(out.Hosts, first)
	if plan.service != nil {
		s.followService(ctx, plan, out)
		judgeService(out, plan.service)
		return out, nil
	}
	if plan.dst != nil && plan.dst.Name != plan.src.Name && (first.Outcome == "forwarded" || first.Error != "") {
		// After an unknown first hop the destination is still asked:
		// its answer helps, though the outcome stays unknown.
		out.Hosts = append(out.Hosts, s.traceOn(ctx, plan.dst, &sdnv1.DatapathTraceRequest{TunnelVnid: plan.vnid}, plan.packet))
	}
	judge(out)
	return out, nil
}

// planTrace resolves the request against the state and computes the
// model's verdict (as Verdict does); the source must be a running
// workload, where the trace starts.
func planTrace(tx *state.Tx, req *sdnv1.VerdictRequest) (*tracePlan, error) {
	if err := checkVerdictPort(req); err != nil {
		return nil, err
	}
	if req.GetFrom().GetWorkload() == "" {
		return nil, status.Error(codes.InvalidArgument, "a trace starts at a workload: give from as NETWORK/NAME (an address alone has no port on any host to start from)")
	}
	vs := readVerdictState(tx)
	pkt, verdict, err := vs.verdict(req)
	if err != nil {
		return nil, err
	}
	from := pkt.From.Workload
	p := &tracePlan{revision: vs.revision, packet: pkt, verdict: verdict, fromKey: model.WorkloadKey(from.Network, from.Name), vnid: from.Vnid}
	if n, ok := tx.Network(from.Network); ok {
		p.vnid = n.Vnid
	}
	if from.Pending != "" || from.Ip == "" || from.Node == "" {
		return nil, status.Errorf(codes.FailedPrecondition, "workload %s has no address yet (%s); trace it once it runs", p.fromKey, from.Pending)
	}
	if to := pkt.To.Workload; to != nil && (to.Pending != "" || to.Ip == "") {
		return nil, status.Errorf(codes.FailedPrecondition, "workload %s/%s has no address yet (%s)", to.Network, to.Name, to.Pending)
	}
	if p.src, _ = tx.Node(from.Node); p.src == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "workload %s runs on host %s, which is not registered; a trace starts at a running workload", p.fromKey, from.Node)
	}
	if to := pkt.To.Workload; to != nil {
		p.dst, _ = tx.Node(to.Node)
	}
	if sv := verdict.GetService(); sv != nil {
		p.service, p.nodes = sv, map[string]*sdnv1.Node{}
		for _, ev := range sv.Endpoints {
			if n, ok := tx.Node(ev.Node); ok {
				p.nodes[n.Name] = n
			}
		}
	}
	return p, nil
}

// followService goes on from the endpoint the source host chose for a
// packet to a service: the response names the service and the endpoint,
// the model becomes the verdict to that endpoint, and the translated
// packet (to the endpoint's address and port) is traced on the
// endpoint's host when the source sent it there, exactly as a packet sent
// to the endpoint itself.
func (s *Server) followService(ctx context.Context, plan *tracePlan, out *sdnv1.TraceResponse) {
	first := out.Hosts[0]
	out.Service = plan.service.Service
	if first.EndpointIp == "" {
		return
	}
	out.EndpointIp, out.EndpointPort = first.EndpointIp, first.EndpointPort
	ev := endpointAt(plan.service, first.EndpointIp, first.EndpointPort)
	if ev == nil {
		return // not an endpoint the model knows: judgeService says so
	}
	out.Endpoint = ev.Workload
	m := proto.Clone(ev.Verdict).(*sdnv1.VerdictResponse)
	m.Service = plan.service
	out.Model = m
	n := plan.nodes[ev.Node]
	if n == nil || n.Name == plan.src.Name || first.Outcome != "forwarded" {
		return
	}
	pkt := plan.packet
	pkt.To = policy.End{}
	pkt.To.IP, _ = netip.ParseAddr(ev.Ip)
	pkt.Port = ev.Port
	out.Hosts = append(out.Hosts, s.traceOn(ctx, n, &sdnv1.DatapathTraceRequest{TunnelVnid: plan.vnid}, pkt))
}

// endpointAt is the service's endpoint at ip:port, nil when none.
func endpointAt(sv *sdnv1.ServiceVerdict, ip string, port uint32) *sdnv1.EndpointVerdict {
	for _, ev := range sv.Endpoints {
		if ev.Ip == ip && ev.Port == port {
			return ev
		}
	}
	return nil
}

// traceOn asks one host's datapath service to trace the packet entering
// as req says (from a workload's port, or from the tunnel). A host that
// cannot be asked gets outcome "unknown" and the reason in error.
func (s *Server) traceOn(ctx context.Context, n *sdnv1.Node, req *sdnv1.DatapathTraceRequest, pkt policy.Packet) *sdnv1.HostTrace {
	req.SrcIp, req.DstIp = pkt.From.IP.String(), pkt.To.IP.String()
	req.Protocol, req.Port = pkt.Protocol, pkt.Port
	var ht *sdnv1.HostTrace
	err := s.callHost(ctx, n, func(ctx context.Context, c sdnv1.DatapathServiceClient) error {
		var err error
		ht, err = c.Trace(ctx, req)
		return err
	})
	if err != nil {
		return &sdnv1.HostTrace{Node: n.Name, Outcome: "unknown", Error: err.Error()}
	}
	ht.Node = n.Name
	return ht
}

// callHost calls host n's datapath service with a short deadline, over a
// connection made for the call (traces and counters are rare) with this
// server's credentials, checking the host's certificate names n.
func (s *Server) callHost(ctx context.Context, n *sdnv1.Node, call func(context.Context, sdnv1.DatapathServiceClient) error) error {
	if n.DatapathAddress == "" {
		return fmt.Errorf("host %s registered no datapath service address (its agent is older, or runs with --datapath-listen off), so its datapath cannot be asked: its outcome is unknown", n.Name)
	}
	conn, err := grpc.NewClient("passthrough:///"+n.DatapathAddress, append(append([]grpc.DialOption{}, s.hostDial...), grpc.WithAuthority(n.Name))...)
	if err != nil {
		return fmt.Errorf("host %s's datapath service at %s: %v", n.Name, n.DatapathAddress, err)
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, hostCallTimeout)
	defer cancel()
	if err := call(cctx, sdnv1.NewDatapathServiceClient(conn)); err != nil {
		msg := err.Error()
		if st, ok := status.FromError(err); ok {
			msg = st.Message()
		}
		return fmt.Errorf("could not ask host %s's datapath (%s): %s; its outcome is unknown (is its agent running, and --datapath-listen reachable from the servers?)", n.Name, n.DatapathAddress, msg)
	}
	return nil
}
