package pki

import (
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// grpcServer serves the health service with mutual TLS on l; every call
// must come from a server or a client (not an agent), as admin RPCs will.
// It returns the identities it saw.
func grpcServer(t *testing.T, l net.Listener, cfg *tls.Config) <-chan Identity {
	t.Helper()
	seen := make(chan Identity, 16)
	auth := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		id, err := Authorize(ctx, RoleServer, RoleClient)
		if err != nil {
			return nil, err
		}
		seen <- id
		return handler(ctx, req)
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)), grpc.UnaryInterceptor(auth))
	healthpb.RegisterHealthServer(g, health.NewServer())
	go g.Serve(l)
	t.Cleanup(g.Stop)
	return seen
}

func healthCheck(t *testing.T, target string, cfg *tls.Config) (healthpb.HealthCheckResponse_ServingStatus, error) {
	t.Helper()
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return 0, err
	}
	return resp.Status, nil
}

func TestGRPCOverMutualTLS(t *testing.T) {
	dir := testCluster(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seen := grpcServer(t, l, serverTLS(t, dir, RoleServer, "s1"))

	st, err := healthCheck(t, l.Addr().String(), clientTLS(t, dir, RoleClient, "admin"))
	if err != nil || st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health check as admin: %v, %v", st, err)
	}
	if id := <-seen; id != (Identity{RoleClient, "admin"}) {
		t.Errorf("the server saw %v, want client/admin", id)
	}

	// An agent passes TLS but not this call's authorization.
	_, err = healthCheck(t, l.Addr().String(), clientTLS(t, dir, RoleAgent, "h1"))
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "agent/h1 may not make this call") {
		t.Errorf("health check as an agent: %v, want PermissionDenied", err)
	}

	// A client of another CA does not get a connection.
	other := filepath.Join(t.TempDir(), "other")
	if err := InitCA(other); err != nil {
		t.Fatal(err)
	}
	stranger := mustIssue(t, other, RoleClient, "admin")
	_, err = healthCheck(t, l.Addr().String(), rawClient(t, stranger.Cert, stranger.Key, CAPaths(dir).CA))
	if status.Code(err) != codes.Unavailable {
		t.Errorf("health check with another CA's certificate: %v, want Unavailable", err)
	}
}

// gRPC over a unix socket uses the authority "localhost", which every
// server certificate names.
func TestGRPCOverUnixSocket(t *testing.T) {
	dir := testCluster(t)
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	seen := grpcServer(t, l, serverTLS(t, dir, RoleServer, "s1"))
	st, err := healthCheck(t, "unix:"+sock, clientTLS(t, dir, RoleServer, "s1"))
	if err != nil || st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health check over unix socket: %v, %v", st, err)
	}
	if id := <-seen; id != (Identity{RoleServer, "s1"}) {
		t.Errorf("the server saw %v", id)
	}
}

func TestAuthorizeWithoutTLS(t *testing.T) {
	if _, err := Authorize(context.Background(), RoleClient); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no peer: %v", err)
	}
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{}})
	_, err := Authorize(ctx, RoleClient)
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "not arrive over TLS") {
		t.Errorf("plaintext peer: %v", err)
	}
	if _, err := IdentityFromContext(ctx); err != ErrNotTLS {
		t.Errorf("IdentityFromContext on plaintext: %v, want ErrNotTLS", err)
	}
}
