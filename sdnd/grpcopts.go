package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/sdn-dev/sdn/pki"
)

// connSecurity is the one place sdnd decides how its connections are
// protected: the API listeners (serverOptions: TCP, the cluster address
// raft shares, and unix sockets alike), every gRPC dial (agent to server,
// server to server: dialOptions) and raft between servers (raftTLS and
// clientTLS go to transport.Config).
//
// With TLS, every connection is mutual TLS 1.3 against the cluster CA, and
// the API authorizes each call by the caller's certificate (cluster/api's
// role table). Unix-socket API listeners get TLS too: their mode 0600
// already keeps non-root users out, but TLS there costs nothing and keeps
// one rule (every API call carries a verified identity that the role table
// judges) instead of a second, unauthenticated admin door. The CNI socket
// is not an API listener: it is the agent's, root only, plaintext
// (node/cnisrv).
//
// Without TLS (--dev, --insecure-plaintext) everything is plaintext and no
// call is authorized.
type connSecurity struct {
	serverTLS *tls.Config // API listeners; nil: plaintext
	clientTLS *tls.Config // every dial, raft's included; nil: plaintext
	raftTLS   *tls.Config // raft's accepted connections: servers only
	// The hosts' datapath service (node/dpsvc): the agent serves it with
	// hostServiceTLS, the servers dial it with hostClientTLS (hosts are
	// checked by identity, pki.HostClientTLS).
	hostServiceTLS *tls.Config
	hostClientTLS  *tls.Config
	self           pki.Identity
	plaintext      string // with no TLS, the flag that asked for it
	// revocation checks peers' certificates against the revoked ones in
	// the server's state, once the server role set it (agents have none).
	revocation *revocation
	// tracker holds every TLS connection (API, raft, dials), so that the
	// server role closes those of a certificate revoked after their
	// handshake.
	tracker *pki.Tracker
}

// revocation is a pki.Revoked bound late: the TLS configs are made before
// the state that holds the revoked certificates is open.
type revocation struct {
	check atomic.Pointer[pki.Revoked]
}

func (r *revocation) set(f pki.Revoked) { r.check.Store(&f) }

func (r *revocation) revoked(serial string) (bool, string) {
	if f := r.check.Load(); f != nil {
		return (*f)(serial)
	}
	return false, ""
}

// closeRevoked closes every open connection whose peer's certificate the
// bound check says is revoked, and logs each.
func (s connSecurity) closeRevoked(log *slog.Logger) {
	for _, err := range s.tracker.CloseRevoked(s.revocation.revoked) {
		log.Warn("closed a connection of a revoked certificate", "err", err)
	}
}

// tls reports whether connections use mutual TLS.
func (s connSecurity) tls() bool { return s.clientTLS != nil }

// security returns the connection security o asks for: the TLS configs
// from its files, after checking that its certificate fits the roles it
// runs and its node name.
func security(o *options) (connSecurity, error) {
	if o.plaintext() {
		flag := "--dev"
		if o.insecurePlaintext {
			flag = "--" + insecurePlaintextFlag
		}
		return connSecurity{plaintext: flag}, nil
	}
	id, err := certIdentity(o.tlsCert)
	if err != nil {
		return connSecurity{}, err
	}
	if err := checkIdentity(o, id); err != nil {
		return connSecurity{}, err
	}
	sec := connSecurity{self: id, revocation: &revocation{}, tracker: pki.NewTracker()}
	if o.server {
		if sec.serverTLS, err = pki.ServerTLS(o.tlsCert, o.tlsKey, o.tlsCA); err != nil {
			return connSecurity{}, fmt.Errorf("TLS of the server's listeners: %w", err)
		}
		sec.raftTLS = pki.WithRevocation(pki.RequirePeerRole(sec.serverTLS, pki.RoleServer), sec.revocation.revoked)
		sec.serverTLS = pki.WithRevocation(sec.serverTLS, sec.revocation.revoked)
	}
	if sec.hostServiceTLS, sec.hostClientTLS, err = hostTLS(o, sec.revocation); err != nil {
		return connSecurity{}, err
	}
	if sec.clientTLS, err = pki.ClientTLS(o.tlsCert, o.tlsKey, o.tlsCA); err != nil {
		return connSecurity{}, fmt.Errorf("TLS of connections to servers: %w", err)
	}
	// A server dialling another (raft, forwarded calls) refuses a revoked
	// server certificate too.
	sec.clientTLS = pki.WithRevocation(sec.clientTLS, sec.revocation.revoked)
	return sec, nil
}

// hostTLS returns the TLS configs of the datapath service: the agent's
// listener, and the servers' dials to it.
func hostTLS(o *options, rev *revocation) (service, client *tls.Config, err error) {
	if o.agent && o.datapathListen != datapathListenOff {
		if service, err = pki.HostServiceTLS(o.tlsCert, o.tlsKey, o.tlsCA); err != nil {
			return nil, nil, fmt.Errorf("TLS of the datapath service (--datapath-listen): %w", err)
		}
	}
	if o.server {
		if client, err = pki.HostClientTLS(o.tlsCert, o.tlsKey, o.tlsCA, rev.revoked); err != nil {
			return nil, nil, fmt.Errorf("TLS of connections to hosts' datapath services: %w", err)
		}
	}
	return service, client, nil
}

// checkIdentity checks that the certificate names a role this process may
// run as and its node name: a server presents server/NODE (raft and the
// API know it by that name), an agent agent/NODE (the API lets it act for
// that node only) or, on a host that runs both, server/NODE.
func checkIdentity(o *options, id pki.Identity) error {
	switch {
	case o.server && id.Role != pki.RoleServer:
		return fmt.Errorf("--%s %s is %s's certificate; sdnd --server needs its server certificate, server-%s.crt (`sdnctl tls issue --role server --name %s --host ADDRESS`)",
			pki.FlagCert, o.tlsCert, id, o.nodeName, o.nodeName)
	case id.Role != pki.RoleServer && id.Role != pki.RoleAgent:
		return fmt.Errorf("--%s %s is %s's certificate; sdnd --agent needs the host's agent certificate, agent-%s.crt (`sdnctl tls issue --role agent --name %s`)",
			pki.FlagCert, o.tlsCert, id, o.nodeName, o.nodeName)
	case id.Name != o.nodeName:
		return fmt.Errorf("--%s %s names %s but --node-name is %s: the certificate names the node it acts for; use %s-%s.crt, or --node-name %s",
			pki.FlagCert, o.tlsCert, id, o.nodeName, id.Role, o.nodeName, id.Name)
	}
	return nil
}

// certIdentity reads the sdn identity of the first certificate in a PEM
// file (pki.ServerTLS and ClientTLS verify it against the CA).
func certIdentity(path string) (pki.Identity, error) {
	c, err := pki.ReadCertificate(path)
	if err != nil {
		return pki.Identity{}, fmt.Errorf("--%s: %w; give the .crt made by `tls init` or `tls issue`", pki.FlagCert, err)
	}
	id, err := pki.IdentityOf(c)
	if err != nil {
		return pki.Identity{}, fmt.Errorf("--%s %s: %w", pki.FlagCert, path, err)
	}
	return id, nil
}

// Keepalives: a client pings a silent connection every 20 s and gives it
// 10 s to answer, so an agent notices a server that vanished without a
// word (a partition, a power cut) and moves to another; servers accept
// pings that often.
var (
	clientKeepalive = keepalive.ClientParameters{Time: 20 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}
	serverKeepalive = keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}
)

// serverOptions are the options of the API's grpc.Server; refused TLS
// handshakes are logged to log.
func (s connSecurity) serverOptions(log *slog.Logger) []grpc.ServerOption {
	opts := []grpc.ServerOption{grpc.KeepaliveEnforcementPolicy(serverKeepalive)}
	if s.serverTLS != nil {
		opts = append(opts, grpc.Creds(loggedCreds{s.tracker.Credentials(credentials.NewTLS(s.serverTLS)), log}))
	}
	return opts
}

// loggedCreds logs the API connections refused at the TLS handshake, with
// why: the refused side sees only "bad certificate" or a closed
// connection. (gRPC itself logs them only at its own verbose levels.)
type loggedCreds struct {
	credentials.TransportCredentials
	log *slog.Logger
}

func (c loggedCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	nc, info, err := c.TransportCredentials.ServerHandshake(conn)
	if err != nil && !errors.Is(err, io.EOF) { // EOF: a port check, not a TLS client
		c.log.Warn("API connection refused: TLS handshake failed", "remote", conn.RemoteAddr().String(), "err", err)
	}
	return nc, info, err
}

func (c loggedCreds) Clone() credentials.TransportCredentials {
	return loggedCreds{c.TransportCredentials.Clone(), c.log}
}

// dialOptions are the options of every gRPC connection sdnd makes.
func (s connSecurity) dialOptions() []grpc.DialOption {
	creds := insecure.NewCredentials()
	if s.clientTLS != nil {
		creds = s.tracker.Credentials(credentials.NewTLS(s.clientTLS))
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithKeepaliveParams(clientKeepalive)}
}

// hostDialOptions are the options of a server's connections to hosts'
// datapath services (the API adds grpc.WithAuthority(NODE) per host).
func (s connSecurity) hostDialOptions() []grpc.DialOption {
	creds := insecure.NewCredentials()
	if s.hostClientTLS != nil {
		creds = s.tracker.Credentials(credentials.NewTLS(s.hostClientTLS))
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(creds)}
}
