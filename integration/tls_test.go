package integration

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/pki"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// tlsFlags are the TLS flags of the holder of p, for sdnd or sdnctl.
func tlsFlags(p pki.Paths) []string {
	return []string{"--" + pki.FlagCA, p.CA, "--" + pki.FlagCert, p.Cert, "--" + pki.FlagKey, p.Key}
}

// dialTLS is a gRPC connection to addr with the certificate of p.
func dialTLS(t *testing.T, addr string, p pki.Paths) *grpc.ClientConn {
	t.Helper()
	cfg, err := p.Client()
	if err != nil {
		t.Fatal(err)
	}
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wantRefused checks that err is a gRPC status with code and a message
// holding every one of subs.
func wantRefused(t *testing.T, what string, err error, code codes.Code, subs ...string) {
	t.Helper()
	st := status.Convert(err)
	if err == nil || st.Code() != code {
		t.Errorf("%s: got %v, want %s", what, err, code)
		return
	}
	for _, s := range subs {
		if !strings.Contains(st.Message(), s) {
			t.Errorf("%s: %q does not say %q", what, st.Message(), s)
		}
	}
}

// TestMutualTLS runs three `sdnd --server` processes with the certificates
// `sdnctl tls init` makes: they find each other (--bootstrap-expect, Hello
// and Join between servers) and replicate (raft) over mutual TLS, and
// sdnctl with a client certificate applies through a follower (forwarded
// to the leader) and reads. Refused, each with a message saying what to
// do: sdnctl without certificates, with a certificate from another CA (as
// client or as CA), an agent's certificate applying (PermissionDenied, on a
// follower before forwarding and on the leader), an agent acting for
// another host (register, report, watch), a non-server forging the
// forwarded-call headers or calling a server-only method, and plaintext
// gRPC and raft. A server refuses to start without TLS files, or with a
// certificate that is not its own.
func TestMutualTLS(t *testing.T) {
	bin := binaries(t)
	dir := filepath.Join(t.TempDir(), "tls")
	other := filepath.Join(t.TempDir(), "other")
	for _, args := range [][]string{
		{"tls", "init", "--dir", dir, "--servers", "s1,s2,s3", "--agents", "h1,h2", "--clients", "admin"},
		{"tls", "init", "--dir", other, "--servers", "s1", "--clients", "admin"},
	} {
		if out, err := exec.Command(filepath.Join(bin, "sdnctl"), args...).CombinedOutput(); err != nil {
			t.Fatalf("sdnctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	admin := pki.PathsFor(dir, pki.RoleClient, "admin")
	h1 := pki.PathsFor(dir, pki.RoleAgent, "h1")

	// Refusals at start, before anything listens.
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--server", "--bootstrap", "--node-name", "s1"}, 2, "sdnd --server speaks mutual TLS and no TLS files were given: pass --tls-ca, --tls-cert and --tls-key (create them with `sdnctl tls init`"},
		{append([]string{"--server", "--bootstrap", "--node-name", "h1"}, tlsFlags(h1)...), 1, "is agent/h1's certificate; sdnd --server needs its server certificate"},
		{append([]string{"--server", "--bootstrap", "--node-name", "s2"}, tlsFlags(pki.PathsFor(dir, pki.RoleServer, "s1"))...), 1, "names server/s1 but --node-name is s2"},
	} {
		cmd := exec.Command(filepath.Join(bin, "sdnd"), append(c.args, "--data-dir", t.TempDir(), "--listen", freePort(t))...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != c.code || !strings.Contains(string(out), c.want) {
			t.Errorf("sdnd %s: %v, want exit %d saying %q:\n%s", strings.Join(c.args, " "), err, c.code, c.want, out)
		}
	}

	start := time.Now()
	ps := []*serverProc{newServerProc(t, "s1"), newServerProc(t, "s2"), newServerProc(t, "s3")}
	for i, p := range ps {
		p.args = append([]string{"--bootstrap-expect", "3", "--join", ps[(i+1)%3].addr}, tlsFlags(pki.PathsFor(dir, pki.RoleServer, p.id))...)
		p.start(t)
	}
	ctl := func(p *serverProc, paths pki.Paths, args ...string) (string, string, int) {
		if paths != (pki.Paths{}) {
			args = append(tlsFlags(paths), args...)
		}
		return sdnctlAt(t, p.addr, args...)
	}
	var m membersOf
	waitFor(t, 30*time.Second, "three healthy members over mutual TLS", func() bool {
		out, _, code := ctl(ps[2], admin, "cluster", "members", "-o", "json")
		return code == 0 && json.Unmarshal([]byte(out), &m) == nil && m.healthy(3)
	}, ps...)
	t.Logf("three TLS servers formed in %s; leader %s", time.Since(start).Round(time.Millisecond), m.LeaderID)
	var leader, follower *serverProc
	for _, p := range ps {
		if p.id == m.LeaderID {
			leader = p
		} else if follower == nil {
			follower = p
		}
	}

	// An administrator: writes through a follower (forwarded as
	// client/admin), reads through the other servers.
	if out, errs, code := ctl(follower, admin, "apply", "-f", "../examples"); code != 0 {
		t.Fatalf("apply with the client certificate through follower %s: exit %d\n%s%s", follower.id, code, out, errs)
	}
	for _, p := range ps {
		out, errs, code := ctl(p, admin, "get", "networks")
		if code != 0 || !strings.Contains(out, "proj1") {
			t.Fatalf("get networks from %s: exit %d\n%s%s", p.id, code, out, errs)
		}
	}

	// sdnctl refused, with what to do.
	bundle := filepath.Join(t.TempDir(), "both.crt")
	a, _ := os.ReadFile(pki.CAPaths(dir).Cert)
	b, _ := os.ReadFile(pki.CAPaths(other).Cert)
	if err := os.WriteFile(bundle, append(a, b...), 0o644); err != nil {
		t.Fatal(err)
	}
	foreign := pki.PathsFor(other, pki.RoleClient, "admin")
	foreignTrusting := foreign
	foreignTrusting.CA = bundle
	agentCall := "agent/h1 may not call ConfigService/Apply: it is an administrator's call: it needs a client certificate"
	for _, c := range []struct {
		name  string
		p     *serverProc
		paths pki.Paths
		args  []string
		want  []string
	}{
		{"no certificates", follower, pki.Paths{}, []string{"get", "networks"},
			[]string{"it speaks mutual TLS and sdnctl ran without TLS: pass --tls-ca, --tls-cert and --tls-key"}},
		{"another cluster's CA and certificate", follower, foreign, []string{"get", "networks"},
			[]string{"its certificate was not signed by the CA in --tls-ca", "use the ca.crt of this cluster"}},
		{"a certificate from another CA", follower, foreignTrusting, []string{"get", "networks"},
			[]string{"your certificate (--tls-cert " + foreign.Cert + ")"}},
		{"an agent's certificate applying through a follower", follower, h1, []string{"apply", "-f", "../examples"},
			[]string{"sdnd at " + follower.addr + " refused the call: " + agentCall}},
		{"an agent's certificate applying at the leader", leader, h1, []string{"delete", "network", "proj1"},
			[]string{"refused the call: agent/h1 may not call ConfigService/Delete"}},
		{"an agent's certificate changing the cluster", follower, h1, []string{"cluster", "transfer-leader"},
			[]string{"agent/h1 may not call ClusterService/TransferLeader"}},
	} {
		out, errs, code := ctl(c.p, c.paths, append([]string{"--timeout", "10s"}, c.args...)...)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1\n%s%s", c.name, code, out, errs)
		}
		for _, w := range c.want {
			if !strings.Contains(errs, w) {
				t.Errorf("%s: stderr does not say %q:\n%s", c.name, w, errs)
			}
		}
	}
	waitFor(t, 5*time.Second, "the refused certificate in the server's log", func() bool {
		return strings.Contains(follower.log.String(), "API connection refused: TLS handshake failed") &&
			strings.Contains(follower.log.String(), "certificate signed by unknown authority")
	}, follower)
	// The follower refused the agent's apply itself: it never reached the
	// leader.
	if !strings.Contains(follower.log.String(), "call refused") || !strings.Contains(follower.log.String(), agentCall) {
		t.Errorf("%s's log does not show the refused apply:\n%s", follower.id, tailString(follower.log.String(), 20))
	}
	if strings.Contains(leader.log.String(), "agent/h1 may not call ConfigService/Apply") {
		t.Errorf("the agent's apply through %s was forwarded to the leader %s", follower.id, leader.id)
	}
	// An agent may read.
	if out, errs, code := ctl(follower, h1, "get", "networks"); code != 0 {
		t.Errorf("get networks as agent/h1: exit %d\n%s%s", code, out, errs)
	}

	// An agent acts for its own host only: as h1 through a follower
	// (forwarded for agent/h1, checked again by the leader), not as h2.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	asH1 := dialTLS(t, follower.addr, h1)
	nodes := sdnv1.NewNodeServiceClient(asH1)
	if _, err := nodes.Register(ctx, &sdnv1.RegisterNodeRequest{Name: "h1", UnderlayIp: "198.18.0.1", UnderlayMtu: 1500}); err != nil {
		t.Fatalf("agent/h1 registering h1 through follower %s: %v", follower.id, err)
	}
	_, err := nodes.Register(ctx, &sdnv1.RegisterNodeRequest{Name: "h2", UnderlayIp: "198.18.0.2", UnderlayMtu: 1500})
	wantRefused(t, "agent/h1 registering h2", err, codes.PermissionDenied, "agent/h1 acts for node h1 only; it may not register as node \"h2\"")
	_, err = nodes.ReportRealized(ctx, &sdnv1.ReportRealizedRequest{Node: "h2", Revision: 1})
	wantRefused(t, "agent/h1 reporting for h2", err, codes.PermissionDenied, "it may not report for node \"h2\"")
	_, err = sdnv1.NewWorkloadServiceClient(asH1).Attach(ctx, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{Network: "proj1", Name: "w", Node: "h2"}})
	wantRefused(t, "agent/h1 attaching on h2", err, codes.PermissionDenied, "it may not attach workloads on node \"h2\"")
	// Nor detach h2's workloads, by name or by CNI owner (container id).
	asServer := dialTLS(t, leader.addr, pki.PathsFor(dir, pki.RoleServer, leader.id))
	if _, err := sdnv1.NewNodeServiceClient(asServer).Register(ctx, &sdnv1.RegisterNodeRequest{Name: "h2", UnderlayIp: "198.18.0.2", UnderlayMtu: 1500}); err != nil {
		t.Fatalf("registering h2 with a server certificate: %v", err)
	}
	onH2 := &sdnv1.Workload{Network: "proj1", Name: "on-h2", Node: "h2",
		Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_CNI, ContainerId: "cid-on-h2", Ifname: "eth0"}}
	if _, err := sdnv1.NewWorkloadServiceClient(asServer).Attach(ctx, &sdnv1.AttachWorkloadRequest{Workload: onH2}); err != nil {
		t.Fatalf("attaching a CNI workload on h2 with a server certificate: %v", err)
	}
	_, err = sdnv1.NewWorkloadServiceClient(asH1).Detach(ctx, &sdnv1.DetachWorkloadRequest{ContainerId: "cid-on-h2", Ifname: "eth0"})
	wantRefused(t, "agent/h1 detaching h2's workload by CNI owner", err, codes.PermissionDenied, "it may not detach workloads on node \"h2\"")
	_, err = sdnv1.NewWorkloadServiceClient(asH1).Detach(ctx, &sdnv1.DetachWorkloadRequest{Network: "proj1", Name: "on-h2"})
	wantRefused(t, "agent/h1 detaching h2's workload by name", err, codes.PermissionDenied, "it may not detach workloads on node \"h2\"")
	if l, err := sdnv1.NewConfigServiceClient(asServer).List(ctx, &sdnv1.ListRequest{Kind: "workloads", Node: "h2"}); err != nil || len(l.Workloads) != 1 {
		t.Errorf("h2's workloads after the refused detaches: %v %v", l, err)
	}
	w, err := nodes.Watch(ctx, &sdnv1.WatchRequest{Node: "h2"})
	if err == nil {
		_, err = w.Recv()
	}
	wantRefused(t, "agent/h1 watching as h2", err, codes.PermissionDenied, "it may not watch as node \"h2\"")
	w, err = nodes.Watch(ctx, &sdnv1.WatchRequest{Node: "h1"})
	if err == nil {
		_, err = w.Recv()
	}
	if err != nil {
		t.Errorf("agent/h1 watching as h1: %v", err)
	}
	if _, err := nodes.ReportRealized(ctx, &sdnv1.ReportRealizedRequest{Node: "h1", Revision: 1}); err != nil {
		t.Errorf("agent/h1 reporting for h1: %v", err)
	}

	// Only servers forward calls, and only servers say Hello.
	forged := metadata.NewOutgoingContext(ctx, metadata.Pairs("sdn-forwarded-by", follower.id, "sdn-forwarded-for", "server/"+follower.id))
	_, err = sdnv1.NewConfigServiceClient(dialTLS(t, leader.addr, h1)).Apply(forged, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "forged"}}})
	wantRefused(t, "agent/h1 posing as a forwarding server", err, codes.PermissionDenied, "agent/h1 sent a call marked as forwarded by a server", "only servers forward calls")
	_, err = sdnv1.NewClusterServiceClient(dialTLS(t, follower.addr, admin)).Hello(ctx, &sdnv1.HelloRequest{})
	wantRefused(t, "client/admin saying Hello", err, codes.PermissionDenied, "client/admin may not call ClusterService/Hello: it is a call between servers")

	// Plaintext is refused on the cluster address: gRPC, and raft (its
	// type byte, then what a plaintext raft peer sends).
	plain, err := grpc.NewClient(follower.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	_, err = sdnv1.NewConfigServiceClient(plain).List(ctx, &sdnv1.ListRequest{Kind: "networks"})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext gRPC to a TLS server: %v", err)
	}
	raw, err := net.DialTimeout("tcp", follower.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	raw.Write([]byte{0x01, 0x00, 0x81, 0xa4, 'T', 'e', 'r', 'm', 0x07}) // RaftType, rpcAppendEntries, a msgpack map
	if n, err := raw.Read(make([]byte, 64)); err == nil && n > 0 {
		t.Errorf("a plaintext raft connection got %d bytes of answer", n)
	}
	waitFor(t, 5*time.Second, "the plaintext raft connection in the server's log", func() bool {
		return strings.Contains(follower.log.String(), "raft connection refused: TLS handshake failed")
	}, follower)
	t.Logf("refusals checked %s after the servers started", time.Since(start).Round(time.Millisecond))
	if _, errs, code := ctl(follower, admin, "get", "nodes"); code != 0 {
		t.Errorf("the cluster after the refusals: %s", errs)
	}
	checkRevocation(t, dir, ps, leader, follower)
}
