package api

import (
	"context"
	"slices"
	"strings"

	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/pki"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Authorization, with mutual TLS (Options.Authorize): every call is
// admitted by the role of the caller's certificate (pki.Identity), per the
// table in roles.go, before anything else, forwarding included. An agent
// acts only for the node its certificate names.
//
// A follower authorizes a call before it forwards it to the leader, and
// names the caller it admitted in forwardedForHeader. The leader sees the
// follower's server certificate on the connection; it believes the header
// only from a server certificate, and authorizes the call again as the
// caller named (so the node checks run against the leader's state too).

// forwardedForHeader names, on a forwarded call, the identity of the
// caller the forwarding server admitted: ROLE/NAME.
const forwardedForHeader = "sdn-forwarded-for"

// callerKey is the context key of the identity a call was admitted as.
type callerKey struct{}

// callerOf returns the identity a call was admitted as; false when the
// API does not authorize (plaintext).
func callerOf(ctx context.Context) (pki.Identity, bool) {
	id, ok := ctx.Value(callerKey{}).(pki.Identity)
	return id, ok
}

// authorize admits a call by its caller's role, or returns the gRPC status
// to refuse it with.
func (s *Server) authorize(ctx context.Context, method string) (pki.Identity, error) {
	acc, ok := methodAccess[method]
	if !ok {
		return pki.Identity{}, status.Errorf(codes.PermissionDenied, "%s has no entry in the API's role table, so no certificate may call it (a bug in sdnd: add it to cluster/api/roles.go)", method)
	}
	id, err := callerIdentity(ctx)
	if err != nil {
		return pki.Identity{}, err
	}
	// The handshake refuses a revoked certificate; this catches the
	// connections opened before its revocation. (A forwarded call's
	// connection is its server's: the forwarding server checked the
	// caller's.)
	if s.cluster != nil {
		if err := pki.RevokedFromContext(ctx, s.Revoked); err != nil {
			return pki.Identity{}, status.Error(codes.Unauthenticated, err.Error())
		}
	}
	if !slices.Contains(accessRoles[acc], id.Role) {
		return id, status.Errorf(codes.PermissionDenied, "%s may not call %s: it is %s", id, shortMethod(method), accessWhat[acc])
	}
	return id, nil
}

// callerIdentity is who makes a call: the certificate on the connection,
// or, on a call a server forwarded, the caller that server names.
func callerIdentity(ctx context.Context) (pki.Identity, error) {
	conn, err := pki.IdentityFromContext(ctx)
	if err != nil {
		return pki.Identity{}, status.Errorf(codes.Unauthenticated, "this server admits mutual TLS calls only, with a certificate from the cluster CA (--tls-ca, --tls-cert, --tls-key): %v", err)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	by, forFor := md.Get(forwardedHeader), md.Get(forwardedForHeader)
	if len(by) == 0 && len(forFor) == 0 {
		return conn, nil
	}
	if conn.Role != pki.RoleServer {
		return pki.Identity{}, status.Errorf(codes.PermissionDenied, "%s sent a call marked as forwarded by a server (%s, %s headers); only servers forward calls", conn, forwardedHeader, forwardedForHeader)
	}
	if len(forFor) != 1 {
		return pki.Identity{}, status.Errorf(codes.PermissionDenied, "server %s forwarded a call without naming its caller (%s); is it an older sdnd?", conn.Name, forwardedForHeader)
	}
	role, name, _ := strings.Cut(forFor[0], "/")
	id := pki.Identity{Role: pki.Role(role), Name: name}
	if err := id.Validate(); err != nil {
		return pki.Identity{}, status.Errorf(codes.PermissionDenied, "server %s forwarded a call for %q: %v", conn.Name, forFor[0], err)
	}
	return id, nil
}

// bindNode refuses a request in which an agent acts for another node than
// its certificate's. Servers and clients are not bound.
func (s *Server) bindNode(id pki.Identity, req any) error {
	if id.Role != pki.RoleAgent {
		return nil
	}
	var node, what string
	switch r := req.(type) {
	case *sdnv1.RegisterNodeRequest:
		node, what = r.GetName(), "register as"
	case *sdnv1.WatchRequest:
		node, what = r.GetNode(), "watch as"
	case *sdnv1.ReportRealizedRequest:
		node, what = r.GetNode(), "report for"
	case *sdnv1.HeartbeatRequest:
		node, what = r.GetNode(), "send heartbeats for"
	case *sdnv1.AttachWorkloadRequest:
		node, what = r.GetWorkload().GetNode(), "attach workloads on"
	case *sdnv1.DetachWorkloadRequest:
		// The workload's host, found as the FSM finds the workload: by
		// CNI owner (container id and interface) first, else by network
		// and name. A workload that is not there binds nothing (the
		// detach is a no-op).
		if s.cluster == nil {
			return nil
		}
		network, name := r.GetNetwork(), r.GetName()
		if r.GetContainerId() != "" {
			network, name, _ = s.cluster.FSM().Owner(r.GetContainerId(), r.GetIfname())
		}
		if network == "" || name == "" {
			return nil
		}
		found := false
		_ = s.cluster.FSM().View(func(tx *state.Tx) error {
			if w, ok := tx.Workload(network, name); ok {
				node, found = w.GetNode(), true
			}
			return nil
		})
		if !found {
			return nil
		}
		what = "detach workloads on"
	default:
		return nil
	}
	if node != id.Name {
		return status.Errorf(codes.PermissionDenied, "%s acts for node %s only; it may not %s node %q (an agent's certificate names its host: run it with --node-name %s, or give it agent-%s.crt)",
			id, id.Name, what, node, id.Name, node)
	}
	return nil
}

// refused logs a refused call (the caller sees only the status).
func (s *Server) refused(ctx context.Context, method string, err error) error {
	addr := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	s.log.Info("call refused", "method", method, "peer", addr, "err", status.Convert(err).Message())
	return err
}

func (s *Server) authorizeUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	id, err := s.authorize(ctx, info.FullMethod)
	if err == nil {
		err = s.bindNode(id, req)
	}
	if err != nil {
		return nil, s.refused(ctx, info.FullMethod, err)
	}
	return handler(context.WithValue(ctx, callerKey{}, id), req)
}

func (s *Server) authorizeStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	id, err := s.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return s.refused(ss.Context(), info.FullMethod, err)
	}
	return handler(srv, &authorizedStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), callerKey{}, id), id: id, method: info.FullMethod, s: s})
}

// authorizedStream carries the admitted caller in its context and checks
// every request message it receives (Watch: the node watched).
type authorizedStream struct {
	grpc.ServerStream
	ctx    context.Context
	id     pki.Identity
	method string
	s      *Server
}

func (a *authorizedStream) Context() context.Context { return a.ctx }

func (a *authorizedStream) RecvMsg(m any) error {
	if err := a.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if err := a.s.bindNode(a.id, m); err != nil {
		return a.s.refused(a.ctx, a.method, err)
	}
	return nil
}

// forwardedFor is the header naming the caller of a call this server
// forwards, when it authorizes calls.
func forwardedFor(ctx context.Context) []string {
	if id, ok := callerOf(ctx); ok {
		return []string{forwardedForHeader, id.String()}
	}
	return nil
}
