package pki

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// revokedSet is a Revoked backed by a set of serials.
type revokedSet struct {
	mu      sync.Mutex
	serials map[string]bool
}

func (r *revokedSet) add(serial string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.serials[serial] = true
}

func (r *revokedSet) check(serial string) (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.serials[serial], "revoked in the test: key leaked"
}

// TestRevocationRefusesHandshakesCallsAndOpenConnections: a server with
// WithRevocation refuses a revoked client at the handshake (with who and
// why), RevokedFromContext refuses the calls of a connection opened before
// the revocation, and the Tracker closes that connection.
func TestRevocationRefusesHandshakesCallsAndOpenConnections(t *testing.T) {
	dir := testCluster(t)
	admin := readCert(t, PathsFor(dir, RoleClient, "admin").Cert)
	revoked := &revokedSet{serials: map[string]bool{}}
	tracker := NewTracker()
	var calls sync.Map // error of each call's revocation check, by call
	check := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := RevokedFromContext(ctx, revoked.check); err != nil {
			calls.Store(time.Now(), err)
			return nil, err
		}
		return handler(ctx, req)
	}
	cfg := WithRevocation(serverTLS(t, dir, RoleServer, "s1"), revoked.check)
	g := grpc.NewServer(grpc.Creds(tracker.Credentials(credentials.NewTLS(cfg))), grpc.UnaryInterceptor(check))
	healthpb.RegisterHealthServer(g, health.NewServer())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(l)
	t.Cleanup(g.Stop)

	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(t, dir, RoleClient, "admin"))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hc := healthpb.NewHealthClient(conn)
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("before the revocation: %v", err)
	}
	if tracker.Len() != 1 {
		t.Fatalf("tracker holds %d connections, want 1", tracker.Len())
	}

	revoked.add(Serial(admin))
	// The open connection: its next call is refused, naming the
	// certificate and why.
	_, err = hc.Check(ctx, &healthpb.HealthCheckRequest{})
	var re *RevokedError
	found := false
	calls.Range(func(_, v any) bool { found = errors.As(v.(error), &re); return !found })
	if err == nil || !found || re.Identity.String() != "client/admin" || re.Serial != Serial(admin) || !strings.Contains(re.Error(), "key leaked") {
		t.Fatalf("a call on a connection opened before the revocation: %v (check: %v)", err, re)
	}
	// The sweep closes it.
	if errs := tracker.CloseRevoked(revoked.check); len(errs) != 1 || !strings.Contains(errs[0].Error(), "client/admin") {
		t.Fatalf("CloseRevoked: %v", errs)
	}
	if tracker.Len() != 0 {
		t.Fatalf("tracker holds %d connections after the sweep", tracker.Len())
	}
	// A new handshake is refused.
	srv := serveTLS(t, cfg)
	if _, err := dial(t, srv.addr, clientTLS(t, dir, RoleClient, "admin")); err == nil {
		t.Fatal("a revoked client completed a handshake")
	}
	if err := srv.serverErr(t); err == nil || !strings.Contains(err.Error(), "the certificate of client/admin (serial "+Serial(admin)+") is revoked: revoked in the test: key leaked") {
		t.Fatalf("the server's handshake error: %v", err)
	}
	// Others still get in.
	if _, err := dial(t, srv.addr, clientTLS(t, dir, RoleServer, "s1")); err != nil {
		t.Fatalf("a server certificate after admin's revocation: %v", err)
	}
}

func TestParseSerial(t *testing.T) {
	for in, want := range map[string]string{"0A:1b:FF": "a1bff", "00ff": "ff", "serialz": "", "0": "", "-5": ""} {
		got, err := ParseSerial(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("ParseSerial(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
