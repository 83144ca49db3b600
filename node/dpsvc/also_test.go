package dpsvc

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/pki"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

type fakeIPAM struct {
	sdnv1.UnimplementedIPAMServiceServer
}

func (fakeIPAM) HostLeaks(context.Context, *sdnv1.HostLeaksRequest) (*sdnv1.HostLeaksResponse, error) {
	return &sdnv1.HostLeaksResponse{Node: "h1"}, nil
}

// TestAlsoAdmitsItsRoles: a service served alongside (the IPAM service)
// admits the roles it names (clients, for sdnctl ipam) for its own methods
// only; the datapath service still admits servers alone.
func TestAlsoAdmitsItsRoles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	if err := pki.InitCA(dir); err != nil {
		t.Fatal(err)
	}
	for _, id := range []pki.Identity{{Role: pki.RoleAgent, Name: "h1"}, {Role: pki.RoleAgent, Name: "h2"}, {Role: pki.RoleClient, Name: "admin"}} {
		if _, err := pki.Issue(dir, id.Role, id.Name, nil, pki.DefaultValidity); err != nil {
			t.Fatal(err)
		}
	}
	host := pki.PathsFor(dir, pki.RoleAgent, "h1")
	scfg, err := pki.HostServiceTLS(host.Cert, host.Key, host.CA)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	also := Also{Desc: &sdnv1.IPAMService_ServiceDesc, Impl: fakeIPAM{}, Roles: []pki.Role{pki.RoleClient}}
	go func() {
		done <- Serve(sctx, lis, New("h1", &fakeTracer{}), scfg, slog.New(slog.NewTextHandler(io.Discard, nil)), also)
	}()
	defer func() { stop(); <-done }()
	conn := func(role pki.Role, name string) *grpc.ClientConn {
		p := pki.PathsFor(dir, role, name)
		cfg, err := pki.HostClientTLS(p.Cert, p.Key, p.CA, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)), grpc.WithAuthority("h1"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	admin := conn(pki.RoleClient, "admin")
	if rep, err := sdnv1.NewIPAMServiceClient(admin).HostLeaks(ctx, &sdnv1.HostLeaksRequest{}); err != nil || rep.Node != "h1" {
		t.Fatalf("client admin asking the IPAM service: %v, %v", rep, err)
	}
	if _, err := sdnv1.NewDatapathServiceClient(admin).RuleCounters(ctx, &sdnv1.RuleCountersRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("client admin reading rule counters: %v, want PermissionDenied", err)
	}
	if _, err := sdnv1.NewIPAMServiceClient(conn(pki.RoleAgent, "h2")).HostLeaks(ctx, &sdnv1.HostLeaksRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("agent h2 asking the IPAM service: %v, want PermissionDenied", err)
	}
}
