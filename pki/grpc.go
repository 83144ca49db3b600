package pki

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// ErrNotTLS is returned for a gRPC call that did not arrive over TLS
// (plaintext, as with sdnd --dev, or a unix socket served without TLS).
var ErrNotTLS = errors.New("the call did not arrive over TLS; it carries no certificate")

// IdentityFromContext returns the identity of the caller of a gRPC call
// served with credentials.NewTLS(ServerTLS(...)).
func IdentityFromContext(ctx context.Context) (Identity, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return Identity{}, errors.New("no gRPC peer in the context")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return Identity{}, ErrNotTLS
	}
	return PeerIdentity(ti.State)
}

// Authorize returns the caller's identity if its role is one of roles. It
// returns a gRPC status error otherwise, ready to be returned from the
// handler or interceptor: Unauthenticated for a call without a verified
// certificate, PermissionDenied for a role that is not allowed. A server
// that runs plaintext on purpose (--dev) must not call it.
func Authorize(ctx context.Context, roles ...Role) (Identity, error) {
	id, err := IdentityFromContext(ctx)
	if err != nil {
		return Identity{}, status.Error(codes.Unauthenticated, err.Error())
	}
	for _, r := range roles {
		if id.Role == r {
			return id, nil
		}
	}
	return id, status.Error(codes.PermissionDenied, fmt.Sprintf("%s may not make this call; it needs a %s certificate", id, roleList(roles)))
}
