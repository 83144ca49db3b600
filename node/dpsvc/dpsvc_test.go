package dpsvc

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/pki"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// fakeTracer answers with what it was asked, so a test sees the request
// went through whole.
type fakeTracer struct {
	got Packet
	err error
}

func (f *fakeTracer) Trace(_ context.Context, p Packet) (*sdnv1.HostTrace, error) {
	f.got = p
	if f.err != nil {
		return nil, f.err
	}
	return &sdnv1.HostTrace{Outcome: "allowed", Steps: []*sdnv1.TraceStep{{Stage: "classify", Text: "from " + p.InWorkload}}}, nil
}

func (f *fakeTracer) RuleCounters(context.Context) ([]*sdnv1.HostRuleCounters, error) {
	return []*sdnv1.HostRuleCounters{{Policy: "proj1/web", Counters: []*sdnv1.RuleCounters{{Direction: "ingress", Rule: "clients", Packets: 7}}}}, nil
}

func serve(t *testing.T, tr Tracer, cfg *tls.Config) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, lis, New("h1", tr), cfg, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return lis.Addr().String()
}

func client(t *testing.T, addr string, opts ...grpc.DialOption) sdnv1.DatapathServiceClient {
	t.Helper()
	c, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return sdnv1.NewDatapathServiceClient(c)
}

var goodReq = &sdnv1.DatapathTraceRequest{InWorkload: "proj1/client1", SrcIp: "10.128.0.2", DstIp: "10.128.2.3", Protocol: "tcp", Port: 80}

func TestTraceAndCountersPlaintext(t *testing.T) {
	ft := &fakeTracer{}
	c := client(t, serve(t, ft, nil), grpc.WithTransportCredentials(insecure.NewCredentials()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ht, err := c.Trace(ctx, goodReq)
	if err != nil {
		t.Fatal(err)
	}
	if ht.Node != "h1" || ht.Outcome != "allowed" || ft.got.Port != 80 || ft.got.Dst.String() != "10.128.2.3" || ft.got.InWorkload != "proj1/client1" {
		t.Fatalf("trace %v, tracer got %+v", ht, ft.got)
	}
	rc, err := c.RuleCounters(ctx, &sdnv1.RuleCountersRequest{})
	if err != nil || len(rc.Policies) != 1 || rc.Policies[0].Counters[0].Packets != 7 {
		t.Fatalf("counters %v, %v", rc, err)
	}
	for _, bad := range []*sdnv1.DatapathTraceRequest{
		{InWorkload: "a/b", TunnelVnid: 5, SrcIp: "10.0.0.1", DstIp: "10.0.0.2", Protocol: "tcp", Port: 1}, // two
		{InWorkload: "a/b", SrcIp: "x", DstIp: "10.0.0.2", Protocol: "tcp", Port: 1},
		{InWorkload: "a/b", SrcIp: "10.0.0.1", DstIp: "10.0.0.2", Protocol: "sctp", Port: 1},
		{InWorkload: "a/b", SrcIp: "10.0.0.1", DstIp: "10.0.0.2", Protocol: "udp"},
		{InWorkload: "a/b", SrcIp: "10.0.0.1", DstIp: "10.0.0.2", Protocol: "icmp", Port: 3},
	} {
		if _, err := c.Trace(ctx, bad); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "host h1") {
			t.Errorf("%v: %v, want InvalidArgument naming the host", bad, err)
		}
	}
	ft.err = errors.New("ovs-appctl: connection refused")
	if _, err := c.Trace(ctx, goodReq); status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "host h1 could not trace the packet: ovs-appctl") {
		t.Fatalf("tracer failure: %v", err)
	}
}

// TestOnlyServersMayCall: with mutual TLS, a server's certificate calls
// the agent's service (whose agent certificate names no host); an agent's
// or a client's is refused with PermissionDenied and what to do; a server
// that dials the wrong host (the certificate there names another node)
// fails at the handshake.
func TestOnlyServersMayCall(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	if err := pki.InitCA(dir); err != nil {
		t.Fatal(err)
	}
	for _, id := range []pki.Identity{{Role: pki.RoleServer, Name: "s1"}, {Role: pki.RoleAgent, Name: "h1"}, {Role: pki.RoleAgent, Name: "h2"}, {Role: pki.RoleClient, Name: "admin"}} {
		if _, err := pki.Issue(dir, id.Role, id.Name, nil, pki.DefaultValidity); err != nil {
			t.Fatal(err)
		}
	}
	host := pki.PathsFor(dir, pki.RoleAgent, "h1")
	scfg, err := pki.HostServiceTLS(host.Cert, host.Key, host.CA)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, &fakeTracer{}, scfg)
	dial := func(role pki.Role, name, authority string) sdnv1.DatapathServiceClient {
		p := pki.PathsFor(dir, role, name)
		cfg, err := pki.HostClientTLS(p.Cert, p.Key, p.CA, nil)
		if err != nil {
			t.Fatal(err)
		}
		return client(t, addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)), grpc.WithAuthority(authority))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if ht, err := dial(pki.RoleServer, "s1", "h1").Trace(ctx, goodReq); err != nil || ht.Outcome != "allowed" {
		t.Fatalf("server s1: %v, %v", ht, err)
	}
	for _, who := range []struct {
		role pki.Role
		name string
	}{{pki.RoleAgent, "h2"}, {pki.RoleClient, "admin"}} {
		_, err := dial(who.role, who.name, "h1").RuleCounters(ctx, &sdnv1.RuleCountersRequest{})
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "only the servers ask hosts") {
			t.Errorf("%s/%s: %v, want PermissionDenied", who.role, who.name, err)
		}
	}
	short, cancel2 := context.WithTimeout(ctx, 2*time.Second)
	defer cancel2()
	_, err = dial(pki.RoleServer, "s1", "h2").Trace(short, goodReq)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "certificate there is agent/h1") {
		t.Fatalf("server dialling h2 at h1's address: %v, want a refused handshake", err)
	}
}
