package api

import (
	"context"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/pki"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestResolveName: a workload's address by network and name, from any
// host; an unknown name or network is not found; a request without a
// network or name is refused.
func TestResolveName(t *testing.T) {
	ts := startServer(t)
	ctx := context.Background()
	cfg := sdnv1.NewConfigServiceClient(ts.conn)
	if _, err := cfg.Apply(ctx, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}, {Name: "proj2"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sdnv1.NewNodeServiceClient(ts.conn).Register(ctx, &sdnv1.RegisterNodeRequest{Name: "host2", UnderlayIp: "198.18.0.2", UnderlayMtu: 1500}); err != nil {
		t.Fatal(err)
	}
	att, err := sdnv1.NewWorkloadServiceClient(ts.conn).Attach(ctx, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{Name: "db", Network: "proj1", Node: "host2"}})
	if err != nil {
		t.Fatal(err)
	}
	ns := sdnv1.NewNameServiceClient(ts.conn)
	got, err := ns.ResolveName(ctx, &sdnv1.ResolveNameRequest{Network: "proj1", Name: "db"})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Found || got.Ip == "" || got.Ip != att.Workload.Ip || got.Node != "host2" || got.Revision < att.Revision {
		t.Fatalf("resolve proj1/db: %v, attached as %v at revision %d", got, att.Workload, att.Revision)
	}
	for _, miss := range []*sdnv1.ResolveNameRequest{{Network: "proj2", Name: "db"}, {Network: "proj1", Name: "web"}, {Network: "nonet", Name: "db"}} {
		got, err := ns.ResolveName(ctx, miss)
		if err != nil || got.Found || got.Ip != "" {
			t.Errorf("resolve %s/%s: %v, %v; want not found", miss.Network, miss.Name, got, err)
		}
	}
	for _, bad := range []*sdnv1.ResolveNameRequest{{Network: "proj1"}, {Name: "db"}} {
		if _, err := ns.ResolveName(ctx, bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("resolve %v: %v; want InvalidArgument", bad, err)
		}
	}
}

// TestResolveNameOpenToHosts: the hosts' DNS servers call it with their
// agent certificates.
func TestResolveNameOpenToHosts(t *testing.T) {
	acc, ok := methodAccess[sdnv1.NameService_ResolveName_FullMethodName]
	if !ok || !slices.Contains(accessRoles[acc], pki.RoleAgent) {
		t.Fatalf("ResolveName: access %v (%v); agents must be admitted", acc, accessRoles[acc])
	}
	if routes[sdnv1.NameService_ResolveName_FullMethodName] != local {
		t.Fatal("ResolveName is not answered locally: a host's names would depend on a leader")
	}
}
