package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/cluster/feed"
)

// forwardedHeader marks a call a follower forwarded to the leader, with the
// follower's id. A server never forwards such a call again: when it is not
// the leader either (leadership moved meanwhile), the caller gets
// Unavailable and retries, so forwarding cannot loop.
const forwardedHeader = "sdn-forwarded-by"

// defaultLeaderWait is how long a call that needs the leader waits for one
// to be elected before it fails with Unavailable.
const defaultLeaderWait = 5 * time.Second

// ctors are the request and response constructors of the routed methods.
var ctors = func() map[string][2]func() proto.Message {
	m := map[string][2]func() proto.Message{}
	for method := range routes {
		in, out, err := methodTypes(method)
		if err != nil {
			panic(err)
		}
		m[method] = [2]func() proto.Message{in, out}
	}
	return m
}()

// ServerOptions are the options the grpc.Server serving this API needs:
// the request size limit (limits.go), and the interceptors that authorize
// calls (with Options.Authorize), refuse requests that are too large, then
// forward them to the leader.
func (s *Server) ServerOptions() []grpc.ServerOption {
	unary := []grpc.UnaryServerInterceptor{s.limitUnary, s.forwardUnary}
	stream := []grpc.StreamServerInterceptor{s.limitStream, s.forwardStream}
	if s.authz {
		unary = append([]grpc.UnaryServerInterceptor{s.authorizeUnary}, unary...)
		stream = append([]grpc.StreamServerInterceptor{s.authorizeStream}, stream...)
	}
	return []grpc.ServerOption{
		// Filtered watches send events encoded once for every watcher.
		grpc.ForceServerCodecV2(feed.Codec{}),
		// Thousands of agents' connections, mostly idle: gRPC's 32 KiB read
		// buffer each was 40% of a server's memory at rest (2,000 hosts on
		// one server: 283 MiB, 170 MiB with 4 KiB; registration as fast).
		grpc.ReadBufferSize(4 << 10),
		grpc.MaxRecvMsgSize(recvLimit),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}
}

// leaderAddr returns where a call for the leader goes: "" when this server
// leads. With no leader known it waits (until until, and the call's
// deadline) for an election to end.
func (s *Server) leaderAddr(ctx context.Context, until time.Time) (id, addr string, err error) {
	for {
		if s.cluster.IsLeader() {
			return "", "", nil
		}
		id, addr := s.cluster.Leader()
		if addr != "" && id != s.cluster.ID() {
			return id, addr, nil
		}
		if err := s.cluster.NoLeaderError(); err != nil {
			// This server's disk is full: say so rather than wait
			// for a leader it cannot help elect.
			return "", "", toStatus(err)
		}
		select {
		case <-ctx.Done():
			return "", "", status.Errorf(status.Code(toStatus(ctx.Err())), "no raft leader is known: %v", ctx.Err())
		case <-time.After(min(25*time.Millisecond, time.Until(until))):
		}
		if time.Now().After(until) {
			return "", "", status.Errorf(codes.Unavailable, "no raft leader is known after %s (an election is in progress, or fewer than a quorum of servers are up); retry, and check `sdnctl cluster members --stale`", s.leaderWait)
		}
	}
}

// forwardTarget decides whether this server answers a call that needs the
// leader (""), or which address to forward it to.
func (s *Server) forwardTarget(ctx context.Context, until time.Time) (id, addr string, err error) {
	id, addr, err = s.leaderAddr(ctx, until)
	if err != nil || addr == "" {
		return id, addr, err
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if by := md.Get(forwardedHeader); len(by) > 0 {
			return "", "", status.Errorf(codes.Unavailable, "%s forwarded this call here as to the leader, but this server (%s) does not lead; the leader is now %s at %s; retry", by[0], s.cluster.ID(), id, addr)
		}
	}
	return id, addr, nil
}

// unsent reports whether a failed call never reached the server: gRPC
// could not connect, so it did not send it. Such a call is safe to send to
// another leader.
func unsent(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.Unavailable && strings.Contains(st.Message(), "while dialing")
}

// waitLeaderChange waits until this server's view of the leader is no
// longer id (it changed, or none is known), until until.
func (s *Server) waitLeaderChange(ctx context.Context, id string, until time.Time) {
	for time.Now().Before(until) && ctx.Err() == nil {
		if now, _ := s.cluster.Leader(); now != id {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// outgoing is the context of a forwarded call: the caller's deadline and
// cancellation, the forwarded mark and, with authorization, the caller
// admitted (authz.go).
func (s *Server) outgoing(ctx context.Context) context.Context {
	return metadata.NewOutgoingContext(ctx, metadata.Pairs(append([]string{forwardedHeader, s.cluster.ID()}, forwardedFor(ctx)...)...))
}

// forwardError explains a failed forward; answers from the leader itself
// (refusals with their details) pass unchanged.
func forwardError(err error, id, addr string) error {
	st, ok := status.FromError(err)
	if !ok {
		return status.Errorf(codes.Unavailable, "forward to the leader %s at %s: %v", id, addr, err)
	}
	if st.Code() == codes.Unavailable {
		return status.Errorf(codes.Unavailable, "forward to the leader %s at %s: %s (if it is down, a new leader takes over within seconds; retry)", id, addr, st.Message())
	}
	return err
}

func (s *Server) forwardUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if routeOf(info.FullMethod, req) != toLeader {
		return handler(ctx, req)
	}
	until := time.Now().Add(s.leaderWait)
	for {
		id, addr, err := s.forwardTarget(ctx, until)
		if err != nil {
			return nil, err
		}
		if addr == "" {
			return handler(ctx, req)
		}
		conn, err := s.peers.Conn(addr)
		if err != nil {
			return nil, status.Error(codes.Unavailable, err.Error())
		}
		reply := ctors[info.FullMethod][1]()
		fctx, done := s.forwardContext(ctx, id)
		sent := time.Now()
		err = conn.Invoke(s.outgoing(fctx), info.FullMethod, req, reply)
		cause := context.Cause(fctx)
		done()
		switch {
		case err == nil:
			return reply, nil
		case errors.Is(cause, errLeaderMoved):
			continue // to the new leader
		case errors.Is(cause, errForwardTimeout) && ctx.Err() == nil:
			return nil, status.Errorf(codes.DeadlineExceeded, "forward to the leader %s at %s: no answer within %s (it may be frozen or overloaded, and no other leader took over); whether the call took effect is unknown: check (`sdnctl cluster members`, `sdnctl get`), then retry",
				id, addr, time.Since(sent).Round(100*time.Millisecond))
		case !unsent(err) || time.Now().After(until):
			return nil, forwardError(err, id, addr)
		}
		// The leader this server knows is unreachable (it just died):
		// wait for raft to notice, and send the call to the next one.
		s.waitLeaderChange(ctx, id, until)
	}
}

var (
	// errLeaderMoved ends a forwarded call when raft elects another
	// leader while the one it went to has been silent since it was sent.
	errLeaderMoved = errors.New("raft elected another leader while the one the call went to was silent")
	// errForwardTimeout ends a forwarded call shortly before the
	// caller's deadline.
	errForwardTimeout = errors.New("the leader did not answer before the caller's deadline")
)

// forwardContext bounds a call forwarded to the leader id. It ends a little
// before the caller's deadline (errForwardTimeout), so that the caller
// hears why rather than its own timeout. And it ends with errLeaderMoved
// when raft elects another leader after id fell silent (frozen, cut off):
// not heard from since the call was sent, and for half of raft's heartbeat
// timeout (a live leader sends a heartbeat every tenth of it; one that hands
// leadership over is not silent). Such a leader did nothing with the call
// while silent to this server, and once replaced it cannot commit any
// more, so the call is sent again, to the new leader. (Had it committed the
// call through the other servers alone while silent to this one, the call
// would be applied twice; sdn's commands are declarations or name what
// they act on, so the second changes nothing, but may answer "already
// exists" or "not found".) done releases it.
func (s *Server) forwardContext(ctx context.Context, id string) (fctx context.Context, done func()) {
	base, cancel := context.WithCancelCause(ctx)
	fctx, stop := base, context.CancelFunc(func() {})
	if d, ok := ctx.Deadline(); ok {
		margin := min(time.Until(d)/10, time.Second)
		fctx, stop = context.WithDeadlineCause(base, d.Add(-margin), errForwardTimeout)
	}
	go s.watchLeader(fctx, id, time.Now(), cancel)
	return fctx, func() { stop(); cancel(nil) }
}

// watchLeader cancels a call forwarded to the leader id at sent, with
// errLeaderMoved, when another leader is known and id had fallen silent
// (forwardContext).
func (s *Server) watchLeader(ctx context.Context, id string, sent time.Time, cancel context.CancelCauseFunc) {
	heard := s.cluster.LastContact()
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Contact before the leader: raft records a new leader before its
		// first contact, so what is read while id still leads is id's.
		contact := s.cluster.LastContact()
		now, _ := s.cluster.Leader()
		switch {
		case now == id:
			heard = contact
		case now == "":
			// An election: wait for its winner.
		case heard.Before(sent) && time.Since(heard) > s.cluster.HeartbeatTimeout()/2:
			cancel(errLeaderMoved)
			return
		default:
			return // id answered after the call was sent: wait for it
		}
	}
}

// forwardStream forwards streaming calls whole: the caller's message (for
// a client stream, Restore: every message until it closes its side) goes to
// the leader, and every message the leader answers comes back.
func (s *Server) forwardStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	switch routes[info.FullMethod] {
	case local:
		return handler(srv, ss)
	case toLeaderUnlessStale:
		// The request says whether a stale answer will do (ListStream):
		// read it first, and hand it on to whoever answers.
		req := ctors[info.FullMethod][0]()
		if err := ss.RecvMsg(req); err != nil {
			return err
		}
		ss = &replayStream{ServerStream: ss, first: req}
		if routeOf(info.FullMethod, req) == local {
			return handler(srv, ss)
		}
	}
	ctx := ss.Context()
	id, addr, err := s.forwardTarget(ctx, time.Now().Add(s.leaderWait))
	if err != nil {
		return err
	}
	if addr == "" {
		return handler(srv, ss)
	}
	conn, err := s.peers.Conn(addr)
	if err != nil {
		return status.Error(codes.Unavailable, err.Error())
	}
	c := ctors[info.FullMethod]
	req := c[0]()
	if err := ss.RecvMsg(req); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cs, err := conn.NewStream(s.outgoing(ctx), &grpc.StreamDesc{ServerStreams: info.IsServerStream, ClientStreams: info.IsClientStream}, info.FullMethod)
	if err != nil {
		return forwardError(err, id, addr)
	}
	for sending := true; sending; {
		err := cs.SendMsg(req)
		if errors.Is(err, io.EOF) {
			break // the leader ended the call; RecvMsg below says how
		}
		if err != nil {
			return forwardError(err, id, addr)
		}
		if !info.IsClientStream {
			break
		}
		req = c[0]()
		switch err := ss.RecvMsg(req); {
		case errors.Is(err, io.EOF):
			sending = false
		case err != nil:
			return err // the caller went away; cancel ends the forward
		}
	}
	if err := cs.CloseSend(); err != nil {
		return forwardError(err, id, addr)
	}
	for {
		m := c[1]()
		err := cs.RecvMsg(m)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return forwardError(err, id, addr)
		}
		if err := ss.SendMsg(m); err != nil {
			return fmt.Errorf("relay to the caller: %w", err)
		}
		if !info.IsServerStream {
			return nil
		}
	}
}

// replayStream gives a request message already received to the first
// RecvMsg, then receives as its stream does.
type replayStream struct {
	grpc.ServerStream
	first proto.Message
}

func (r *replayStream) RecvMsg(m any) error {
	if r.first == nil {
		return r.ServerStream.RecvMsg(m)
	}
	dst, ok := m.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "receive into %T, not a protobuf message", m)
	}
	proto.Merge(dst, r.first)
	r.first = nil
	return nil
}
