package dpsvc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/pki"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// DefaultPort is the datapath service's port on the host's underlay address.
const DefaultPort = 7475

// Packet is the packet to trace at this host: where it enters (a local
// workload's port, by its "network/name"; or, when InWorkload is empty,
// the tunnel, carrying the source's VNID, which is 0 for the admin
// network) and its addresses, protocol and destination port.
type Packet struct {
	InWorkload string
	TunnelVNID uint32
	Src, Dst   netip.Addr
	Protocol   string // "tcp", "udp", "icmp"
	Port       uint16
}

// Tracer is what the service needs of the host's datapath (defined by its
// user, CONTRIBUTING.md, "Shape").
type Tracer interface {
	Trace(ctx context.Context, p Packet) (*sdnv1.HostTrace, error)
	RuleCounters(ctx context.Context) ([]*sdnv1.HostRuleCounters, error)
}

// Service serves DatapathService for one host.
type Service struct {
	sdnv1.UnimplementedDatapathServiceServer
	node string
	t    Tracer
}

// New returns the service of host node over t.
func New(node string, t Tracer) *Service { return &Service{node: node, t: t} }

// Trace runs one packet through this host's datapath.
func (s *Service) Trace(ctx context.Context, req *sdnv1.DatapathTraceRequest) (*sdnv1.HostTrace, error) {
	p, err := packetOf(req)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "trace on host %s: %v", s.node, err)
	}
	out, err := s.t.Trace(ctx, p)
	if err != nil {
		return nil, s.errorStatus("trace the packet", err)
	}
	if out.Node == "" {
		out.Node = s.node
	}
	return out, nil
}

// RuleCounters reads the per-rule counters of the policies this host
// enforces.
func (s *Service) RuleCounters(ctx context.Context, _ *sdnv1.RuleCountersRequest) (*sdnv1.RuleCountersResponse, error) {
	pc, err := s.t.RuleCounters(ctx)
	if err != nil {
		return nil, s.errorStatus("read the rule counters", err)
	}
	return &sdnv1.RuleCountersResponse{Policies: pc}, nil
}

// errorStatus keeps a datapath's gRPC status, and names the host on others.
func (s *Service) errorStatus(what string, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	return status.Errorf(code, "host %s could not %s: %v", s.node, what, err)
}

// packetOf checks a request: exactly one way in, two IPv4 addresses, a
// protocol we trace, and a port for tcp and udp.
func packetOf(req *sdnv1.DatapathTraceRequest) (Packet, error) {
	p := Packet{InWorkload: req.InWorkload, TunnelVNID: req.TunnelVnid, Protocol: req.Protocol}
	if p.InWorkload != "" && p.TunnelVNID != 0 {
		return p, errors.New("give in_workload (a local workload's network/name) or tunnel_vnid (the packet came over the tunnel; empty in_workload), not both")
	}
	var err error
	if p.Src, err = netip.ParseAddr(req.SrcIp); err != nil || !p.Src.Is4() {
		return p, fmt.Errorf("src_ip %q: want an IPv4 address", req.SrcIp)
	}
	if p.Dst, err = netip.ParseAddr(req.DstIp); err != nil || !p.Dst.Is4() {
		return p, fmt.Errorf("dst_ip %q: want an IPv4 address", req.DstIp)
	}
	switch req.Protocol {
	case "icmp":
		if req.Port != 0 {
			return p, errors.New("icmp has no port; leave port 0")
		}
	case "tcp", "udp":
		if req.Port == 0 || req.Port > 65535 {
			return p, fmt.Errorf("port %d: want 1-65535 for %s", req.Port, req.Protocol)
		}
		p.Port = uint16(req.Port)
	default:
		return p, fmt.Errorf("protocol %q: want tcp, udp or icmp", req.Protocol)
	}
	return p, nil
}

// Also is another service served on the datapath service's listener (the
// agent's IPAMService, node/leaks), with the certificate roles it admits
// besides the servers'.
type Also struct {
	Desc  *grpc.ServiceDesc
	Impl  any
	Roles []pki.Role
}

// ServerOptions are the options of the service's grpc.Server: with cfg
// (pki.HostServiceTLS) mutual TLS and only server certificates admitted
// (and, for the services in also, their roles too); nil means plaintext,
// every call admitted (sdnd --dev).
func ServerOptions(node string, cfg *tls.Config, also ...Also) []grpc.ServerOption {
	if cfg == nil {
		return nil
	}
	return []grpc.ServerOption{
		grpc.Creds(credentials.NewTLS(cfg)),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := admit(ctx, node, info.FullMethod, also); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := admit(ss.Context(), node, info.FullMethod, also); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
}

// admit lets servers in: the servers ask hosts, nobody else does, except
// the roles a service in also admits for its own methods.
func admit(ctx context.Context, node, method string, also []Also) error {
	id, err := pki.IdentityFromContext(ctx)
	if err != nil {
		return status.Errorf(codes.Unauthenticated, "host %s's datapath service admits mutual TLS calls from the servers only: %v", node, err)
	}
	for _, a := range also {
		if strings.HasPrefix(method, "/"+a.Desc.ServiceName+"/") && slices.Contains(a.Roles, id.Role) {
			return nil
		}
	}
	if id.Role != pki.RoleServer {
		return status.Errorf(codes.PermissionDenied, "%s may not call host %s's datapath service: only the servers ask hosts for traces and counters (a server certificate); use `sdnctl trace` or `sdnctl get policies -o wide`, which ask a server", id, node)
	}
	return nil
}

// Serve serves the service (and those in also) on lis until ctx ends; with
// cfg, over mutual TLS for server certificates only (and also's roles).
func Serve(ctx context.Context, lis net.Listener, svc *Service, cfg *tls.Config, log *slog.Logger, also ...Also) error {
	g := grpc.NewServer(ServerOptions(svc.node, cfg, also...)...)
	sdnv1.RegisterDatapathServiceServer(g, svc)
	for _, a := range also {
		g.RegisterService(a.Desc, a.Impl)
	}
	go func() {
		<-ctx.Done()
		g.GracefulStop()
	}()
	log.Info("datapath service listening", "addr", lis.Addr().String(), "tls", cfg != nil)
	if err := g.Serve(lis); err != nil && ctx.Err() == nil {
		return fmt.Errorf("datapath service on %s: %w", lis.Addr(), err)
	}
	return nil
}
