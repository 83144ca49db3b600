package api

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/model"
)

// Request sizes (docs/design.md, "Message sizes and paging"). A server
// takes requests of up to model.MaxRequestBytes; a bigger one is refused
// with a message that says what to do, not with gRPC's "received message
// larger than max". gRPC checks a message's size before any interceptor
// sees it, so its own limit is set above ours (recvLimit): what lies
// between is refused here, in words; only a request past recvLimit gets
// gRPC's text (sdnctl never sends one: it refuses before sending).
const recvLimit = 2 * model.MaxRequestBytes

// tooLarge refuses a request message of size bytes to method, or returns
// nil when a server takes it.
func tooLarge(method string, size int) error {
	if size <= model.MaxRequestBytes {
		return nil
	}
	got, limit := model.FormatOver(size, model.MaxRequestBytes)
	return status.Errorf(codes.ResourceExhausted,
		"this %s request is %s, more than the %s a server takes in one call (docs/design.md, \"Message sizes and paging\"); nothing was changed. Send it in parts: for an apply, split the objects over several files and apply them separately (without --prune, which would delete what the other parts declare)",
		shortMethod(method), got, limit)
}

func (s *Server) limitUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if m, ok := req.(proto.Message); ok {
		if err := tooLarge(info.FullMethod, proto.Size(m)); err != nil {
			return nil, s.refused(ctx, info.FullMethod, err)
		}
	}
	return handler(ctx, req)
}

func (s *Server) limitStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &limitedStream{ServerStream: ss, method: info.FullMethod, s: s})
}

// limitedStream refuses every request message of a stream that is too
// large (a Restore's chunks, a Watch's request).
type limitedStream struct {
	grpc.ServerStream
	method string
	s      *Server
}

func (l *limitedStream) RecvMsg(m any) error {
	if err := l.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if pm, ok := m.(proto.Message); ok {
		if err := tooLarge(l.method, proto.Size(pm)); err != nil {
			return l.s.refused(l.Context(), l.method, err)
		}
	}
	return nil
}
