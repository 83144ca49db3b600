package integration

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/pki"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// checkRevocation runs on TestMutualTLS's three TLS servers (dir holds the
// cluster's CA and certificates): a revoked client certificate is refused
// by every server at the handshake, and on a connection opened before at
// its next call; the list shows it; sdnctl will not revoke its own
// certificate without --force; a revoked server certificate cuts that
// server off raft while the other two go on.
func checkRevocation(t *testing.T, dir string, ps []*serverProc, leader, follower *serverProc) {
	bin := binaries(t)
	admin := pki.PathsFor(dir, pki.RoleClient, "admin")
	ctl := func(p *serverProc, paths pki.Paths, args ...string) (string, string, int) {
		return sdnctlAt(t, p.addr, append(append(tlsFlags(paths), "--timeout", "10s"), args...)...)
	}
	if out, err := exec.Command(filepath.Join(bin, "sdnctl"), "tls", "issue", "--dir", dir, "--role", "client", "--name", "alice").CombinedOutput(); err != nil {
		t.Fatalf("issue client/alice: %v\n%s", err, out)
	}
	alice := pki.PathsFor(dir, pki.RoleClient, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	early := sdnv1.NewConfigServiceClient(dialTLS(t, leader.addr, alice))
	if _, err := early.List(ctx, &sdnv1.ListRequest{Kind: "networks"}); err != nil {
		t.Fatalf("client/alice before the revocation: %v", err)
	}

	out, errs, code := ctl(follower, admin, "tls", "revoke", alice.Cert, "--reason", "laptop stolen")
	if code != 0 || !strings.Contains(out, "(client/alice): every server refuses it from now on") {
		t.Fatalf("revoke client/alice: exit %d\n%s%s", code, out, errs)
	}
	for _, p := range ps {
		waitFor(t, 10*time.Second, p.id+" to refuse client/alice", func() bool {
			_, errs, code := ctl(p, alice, "get", "networks")
			return code == 1 && strings.Contains(errs, "refused your certificate")
		}, p)
		waitFor(t, 5*time.Second, p.id+"'s log to say why", func() bool {
			return strings.Contains(p.log.String(), "the certificate of client/alice (serial ") && strings.Contains(p.log.String(), "is revoked: revoked ") &&
				strings.Contains(p.log.String(), "by client/admin: laptop stolen")
		}, p)
	}
	// Its connection opened before: refused at its next call, or already
	// closed by the server's sweep (whichever came first).
	_, err := early.List(ctx, &sdnv1.ListRequest{Kind: "networks"})
	switch status.Code(err) {
	case codes.Unauthenticated:
		wantRefused(t, "client/alice's connection opened before the revocation", err, codes.Unauthenticated, "the certificate of client/alice", "is revoked")
	case codes.Unavailable: // closed; a new connection is refused at its handshake
	default:
		t.Errorf("client/alice's connection opened before the revocation: %v", err)
	}

	out, errs, code = ctl(leader, admin, "tls", "revoke", alice.Cert)
	if code != 0 || !strings.Contains(out, "was revoked already") || !strings.Contains(out, "by client/admin") {
		t.Errorf("revoke client/alice again: exit %d\n%s%s", code, out, errs)
	}
	out, errs, code = ctl(ps[2], admin, "tls", "revoked")
	if code != 0 || !strings.Contains(out, "client/alice") || !strings.Contains(out, "laptop stolen") || !strings.Contains(out, "SERIAL") {
		t.Errorf("tls revoked: exit %d\n%s%s", code, out, errs)
	}
	_, errs, code = ctl(leader, admin, "tls", "revoke", admin.Cert)
	if code != 2 || !strings.Contains(errs, "is the certificate sdnctl runs with (--tls-cert): revoking it locks you out") {
		t.Errorf("revoke one's own certificate: exit %d\n%s", code, errs)
	}
	_, errs, code = ctl(leader, admin, "tls", "revoke", "--serial", "xyz")
	if code != 2 || !strings.Contains(errs, "is not a hexadecimal serial number") {
		t.Errorf("revoke a bad serial: exit %d\n%s", code, errs)
	}

	// An agent's open watch ends within a second or two of the revocation:
	// its connection is closed, not only refused at the next handshake.
	h2 := pki.PathsFor(dir, pki.RoleAgent, "h2")
	watch, err := sdnv1.NewNodeServiceClient(dialTLS(t, follower.addr, h2)).Watch(ctx, &sdnv1.WatchRequest{Node: "h2"})
	if err == nil {
		_, err = watch.Recv()
	}
	if err != nil {
		t.Fatalf("agent/h2 watching before its revocation: %v", err)
	}
	if out, errs, code := ctl(leader, admin, "tls", "revoke", h2.Cert, "--reason", "host retired"); code != 0 {
		t.Fatalf("revoke agent/h2: exit %d\n%s%s", code, out, errs)
	}
	ended := make(chan error, 1)
	go func() {
		for {
			if _, err := watch.Recv(); err != nil {
				ended <- err
				return
			}
		}
	}()
	select {
	case err := <-ended:
		t.Logf("agent/h2's watch ended after its revocation: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("agent/h2's watch opened before its revocation still runs 10 s after it")
	}
	waitFor(t, 5*time.Second, follower.id+" to log the closed connection", func() bool {
		return strings.Contains(follower.log.String(), "closed a connection of a revoked certificate") &&
			strings.Contains(follower.log.String(), "the certificate of agent/h2")
	}, follower)

	// A server's certificate: the others refuse it on raft too.
	var victim *serverProc
	for _, p := range ps {
		if p != leader && p != follower {
			victim = p
		}
	}
	out, errs, code = ctl(leader, admin, "tls", "revoke", pki.PathsFor(dir, pki.RoleServer, victim.id).Cert, "--reason", "host compromised")
	if code != 0 || !strings.Contains(out, "server "+victim.id+" can no longer reach the others") {
		t.Fatalf("revoke server/%s: exit %d\n%s%s", victim.id, code, out, errs)
	}
	waitFor(t, 20*time.Second, victim.id+" to be cut off raft", func() bool {
		out, _, code := ctl(leader, admin, "cluster", "members", "-o", "json")
		var m membersOf
		if code != 0 || json.Unmarshal([]byte(out), &m) != nil {
			return false
		}
		for _, s := range m.Servers {
			if s.ID == victim.id {
				return s.State == "unreachable"
			}
		}
		return false
	}, ps...)
	if _, errs, code := ctl(follower, admin, "apply", "-f", "../examples"); code != 0 {
		t.Errorf("a write with %s cut off: %s", victim.id, errs)
	}
}
