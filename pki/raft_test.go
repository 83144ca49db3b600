package pki_test

import (
	"crypto/tls"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sdn-dev/sdn/pki"
)

// tlsStream is the raft.StreamLayer cluster/ needs for raft over mutual
// TLS; this test shows it is all it takes. accept comes from
// pki.RequirePeerRole(serverCfg, pki.RoleServer): only servers get in.
// dial is the ClientTLS config: the peer must be a server whose
// certificate names the address dialed.
type tlsStream struct {
	net.Listener // tls.NewListener(tcp, accept)
	dial         *tls.Config
	advertise    net.Addr // what peers dial, if not the listener's address
}

func (s *tlsStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	// DialWithDialer takes ServerName from addr and bounds the handshake by
	// the timeout too.
	return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(addr), s.dial)
}

func (s *tlsStream) Addr() net.Addr {
	if s.advertise != nil {
		return s.advertise
	}
	return s.Listener.Addr()
}

func newTLSTransport(t *testing.T, dir string, role pki.Role, name string) *raft.NetworkTransport {
	t.Helper()
	p := pki.PathsFor(dir, role, name)
	serverCfg, err := p.Server()
	if err != nil {
		t.Fatal(err)
	}
	clientCfg, err := p.Client()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stream := &tlsStream{Listener: tls.NewListener(l, pki.RequirePeerRole(serverCfg, pki.RoleServer)), dial: clientCfg}
	trans := raft.NewNetworkTransport(stream, 3, 5*time.Second, io.Discard)
	t.Cleanup(func() { trans.Close() })
	return trans
}

func TestRaftTransportOverMutualTLS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	if err := pki.InitCA(dir); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"s1", "s2"} {
		if _, err := pki.Issue(dir, pki.RoleServer, n, []string{"127.0.0.1"}, pki.DefaultValidity); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pki.Issue(dir, pki.RoleAgent, "h1", []string{"127.0.0.1"}, pki.DefaultValidity); err != nil {
		t.Fatal(err)
	}
	s1 := newTLSTransport(t, dir, pki.RoleServer, "s1")
	s2 := newTLSTransport(t, dir, pki.RoleServer, "s2")

	go func() {
		for rpc := range s1.Consumer() {
			rpc.Respond(&raft.AppendEntriesResponse{Term: 7, Success: true}, nil)
		}
	}()
	var resp raft.AppendEntriesResponse
	err := s2.AppendEntries("s1", s1.LocalAddr(), &raft.AppendEntriesRequest{Term: 7}, &resp)
	if err != nil || !resp.Success || resp.Term != 7 {
		t.Fatalf("s2 → s1 AppendEntries over TLS: %+v, %v", resp, err)
	}

	// An agent holding a certificate from the same CA gets no raft RPC
	// through: s1 refuses it at the handshake.
	h1 := newTLSTransport(t, dir, pki.RoleAgent, "h1")
	err = h1.AppendEntries("s1", s1.LocalAddr(), &raft.AppendEntriesRequest{Term: 8}, &resp)
	if err == nil {
		t.Fatal("an agent's AppendEntries reached raft")
	}
}
