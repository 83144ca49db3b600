package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/sdn-dev/sdn/pki"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// revokedList is a ClusterService that lists what the test revoked.
type revokedList struct {
	sdnv1.UnimplementedClusterServiceServer
	mu    sync.Mutex
	certs []*sdnv1.RevokedCertificate
}

func (r *revokedList) ListRevoked(context.Context, *sdnv1.ListRevokedRequest) (*sdnv1.ListRevokedResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &sdnv1.ListRevokedResponse{Certificates: r.certs}, nil
}

// TestAgentLearnsRevokedServers: an agent-only sdnd asks the servers for
// the revoked certificates; once a server's is on the list, the agent
// closes its open connection to that server and refuses a new handshake.
func TestAgentLearnsRevokedServers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	if err := pki.InitCA(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.Issue(dir, pki.RoleServer, "s1", []string{"127.0.0.1"}, pki.DefaultValidity); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.Issue(dir, pki.RoleAgent, "h1", nil, pki.DefaultValidity); err != nil {
		t.Fatal(err)
	}
	sp := pki.PathsFor(dir, pki.RoleServer, "s1")
	serverCfg, err := pki.ServerTLS(sp.Cert, sp.Key, sp.CA)
	if err != nil {
		t.Fatal(err)
	}
	list := &revokedList{}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(serverCfg)))
	sdnv1.RegisterClusterServiceServer(g, list)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(l)
	t.Cleanup(g.Stop)

	ap := pki.PathsFor(dir, pki.RoleAgent, "h1")
	o, err := parseFlags([]string{"--agent", "--node-name", "h1", "--servers", l.Addr().String(), "--underlay-iface", "eth0",
		"--tls-ca", ap.CA, "--tls-cert", ap.Cert, "--tls-key", ap.Key}, testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	sec, err := security(o)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(l.Addr().String(), sec.dialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cluster := sdnv1.NewClusterServiceClient(conn)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	have, err := refreshRevoked(ctx, cluster, sec, nil, log)
	if err != nil || len(have) != 0 || sec.tracker.Len() != 1 {
		t.Fatalf("nothing revoked: %v %v, %d connections tracked", have, err, sec.tracker.Len())
	}

	s1, err := pki.ReadCertificate(sp.Cert)
	if err != nil {
		t.Fatal(err)
	}
	list.mu.Lock()
	list.certs = []*sdnv1.RevokedCertificate{{Serial: pki.Serial(s1), Identity: "server/s1", RevokedBy: "client/admin", Reason: "host compromised"}}
	list.mu.Unlock()
	have, err = refreshRevoked(ctx, cluster, sec, have, log)
	if err != nil || len(have) != 1 {
		t.Fatalf("after the revocation: %v %v", have, err)
	}
	if n := sec.tracker.Len(); n != 0 {
		t.Fatalf("%d connections to the revoked server still open", n)
	}
	// The first call may still meet the connection just closed ("use of
	// closed network connection", Unavailable) before the client has seen
	// it close; the next one dials anew.
	for try := 0; try < 5; try++ {
		_, err = cluster.ListRevoked(ctx, &sdnv1.ListRevokedRequest{})
		if err == nil || !strings.Contains(err.Error(), "use of closed network connection") {
			break
		}
	}
	if err == nil || !strings.Contains(err.Error(), "the certificate of server/s1") || !strings.Contains(err.Error(), "host compromised") {
		t.Fatalf("a new connection to the revoked server: %v", err)
	}
}
