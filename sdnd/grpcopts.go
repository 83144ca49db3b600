package main

import (
	"crypto/tls"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// connSecurity is the one place sdnd decides how its connections are
// protected: the API listeners (serverOptions), every gRPC dial (agent to
// server, server to server: dialOptions) and raft between servers (the
// same *tls.Config values go to transport.Config). Everything is plaintext
// today; mutual TLS (pki/) fills serverTLS and clientTLS from the flags,
// and every listener and dial picks them up.
type connSecurity struct {
	serverTLS *tls.Config // nil: plaintext
	clientTLS *tls.Config // nil: plaintext
}

// security returns the connection security o asks for.
func security(*options) (connSecurity, error) { return connSecurity{}, nil }

// Keepalives: a client pings a silent connection every 20 s and gives it
// 10 s to answer, so an agent notices a server that vanished without a
// word (a partition, a power cut) and moves to another; servers accept
// pings that often.
var (
	clientKeepalive = keepalive.ClientParameters{Time: 20 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}
	serverKeepalive = keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}
)

// serverOptions are the options of the API's grpc.Server.
func (s connSecurity) serverOptions() []grpc.ServerOption {
	opts := []grpc.ServerOption{grpc.KeepaliveEnforcementPolicy(serverKeepalive)}
	if s.serverTLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.serverTLS)))
	}
	return opts
}

// dialOptions are the options of every gRPC connection sdnd makes.
func (s connSecurity) dialOptions() []grpc.DialOption {
	creds := insecure.NewCredentials()
	if s.clientTLS != nil {
		creds = credentials.NewTLS(s.clientTLS)
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithKeepaliveParams(clientKeepalive)}
}
