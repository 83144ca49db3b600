// Package pki is sdn's public key infrastructure for mutual TLS: it creates
// a cluster's certificate authority and the certificates of its members,
// and turns them into *tls.Config values for gRPC (server↔server,
// agent↔server, sdnctl↔server) and for raft's TCP stream between servers.
//
// pki is the crypto and the file layout, as plain functions: InitCA and
// Init (a CA and the members' certificates at once), Issue and Reissue (one
// more, or a renewal), List (a directory's certificates and what is wrong
// with each), ServerTLS and ClientTLS, and the revocation checks. It parses
// no command line and prints nothing. The commands that use it are
// sdnctl's: `sdnctl tls init|issue|list` for the files, `sdnctl tls
// revoke|revoked` for the servers' revocation list.
//
// # Trust model
//
// One CA per cluster. Whatever the CA signed is a member of the cluster;
// nothing else is. Each certificate names one identity, a role and a name,
// and every connection authenticates both ends: TLS 1.3 only, both sides
// present a certificate, both verify the other's against the cluster CA.
//
// The roles:
//
//   - server: an sdnd server (raft voter, API). NAME is its node name, which
//     is also its raft server id. Servers accept connections and dial each
//     other (raft, leader forwarding), so their certificates carry both the
//     server and client extended key usages, and DNS/IP subject alternative
//     names: the node name, every address given at issue, and localhost,
//     127.0.0.1 and ::1 (for sdnctl and agents on the same host, and for
//     gRPC over a unix socket, whose authority is "localhost").
//   - agent: an sdnd agent. NAME is the host's node name. An agent only
//     dials servers, so its certificate is for client authentication only,
//     unless addresses are given at issue (then it may also serve TLS).
//   - client: an sdnctl user (an administrator). NAME is the user's name,
//     e.g. admin. Client authentication only; no addresses.
//
// The identity is encoded as the certificate's one URI subject alternative
// name, a SPIFFE ID: spiffe://sdn/ROLE/NAME (e.g. spiffe://sdn/server/s1).
// That is the authoritative encoding: PeerIdentity reads it from the
// verified chain, and gRPC exposes it as credentials.TLSInfo.SPIFFEID. The
// subject repeats it for people reading `openssl x509 -text`: CN=NAME,
// OU=ROLE, O=sdn. Names are DNS subdomains (lowercase letters, digits, '-'
// and '.'), like node names.
//
// What each side checks:
//
//   - ServerTLS: the peer presents a certificate that chains to the CA and
//     is valid now (tls.RequireAndVerifyClientCert). Any role is admitted;
//     the service decides per call with Authorize or PeerIdentity, or at
//     the handshake with RequirePeerRole (raft: servers only).
//   - ClientTLS: the server's certificate chains to the CA, names the host
//     that was dialed (standard hostname verification), and has the server
//     role, so an agent's or a user's certificate cannot pose as a server.
//
// Which roles an endpoint should admit: raft and leader forwarding, servers
// only; agent RPCs (register, watch, report), agents and servers (a host may
// run both roles in one process with its server certificate); admin RPCs
// (apply, delete, node drain/remove), clients and servers. An agent should
// act only for the node its certificate names.
//
// # Files
//
// All in one directory (created 0700), PEM encoded:
//
//	ca.crt              the CA certificate: copy it to every server, agent and sdnctl user
//	ca.key              the CA's private key: signs certificates; keep it where you run `sdnctl tls issue`, not on cluster hosts
//	server-NAME.crt     server NAME's certificate (with its key: sdnd --server --node-name NAME)
//	server-NAME.key
//	agent-NAME.crt      host NAME's agent certificate (sdnd --agent --node-name NAME)
//	agent-NAME.key
//	client-NAME.crt     user NAME's certificate for sdnctl
//	client-NAME.key
//
// Keys are ECDSA P-256 in PKCS #8, mode 0600; certificates are 0644. P-256
// is what every TLS stack accepts (Go, grpcurl, OpenSSL, Java); Ed25519
// certificates are still refused by some. The CA is valid 10 years,
// certificates one year by default.
//
// A process uses three files, named by the flags FlagCA, FlagCert and
// FlagKey (--tls-ca, --tls-cert, --tls-key). ca.crt may hold several CA
// certificates (a bundle), all trusted.
//
// # Rotation
//
// The configs from ServerTLS and ClientTLS re-read their certificate and key
// when either file changes (checked at each handshake; a stat of two files),
// so a certificate is renewed without a restart: `sdnctl tls issue --replace`
// writes the new pair (each file by an atomic rename) and new connections
// use it. A pair caught half-written (new key, old certificate) is ignored
// and the previous pair kept until both files match again. Connections
// already open keep the session they have.
//
// The CA certificate is read once, at start. To replace the CA: create the
// new one in another directory, put both CA certificates in every host's
// ca.crt and restart each process; issue new pairs from the new CA (no
// restart); then drop the old CA from ca.crt and restart again.
//
// A certificate stays valid until it expires unless it is revoked
// (`sdnctl tls revoke`): the servers keep the revoked serials in the
// cluster's state; WithRevocation refuses them at the handshake,
// RevokedFromContext at each call, and a Tracker closes connections opened
// before (docs/security.md, "Revocation"). The API also binds an agent to
// the node its certificate names, so removing a node (sdnctl node remove)
// shuts its agent out. A leaked CA key means a new CA.
//
// # Use
//
// gRPC, the server side (every listener, unix sockets included) and a
// call that admits only some roles:
//
//	cfg, err := pki.ServerTLS(certFile, keyFile, caFile)
//	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)), ...)
//	id, err := pki.Authorize(ctx, pki.RoleAgent, pki.RoleServer) // in a handler or interceptor
//
// gRPC, the dialing side (ServerName comes from the target):
//
//	cfg, err := pki.ClientTLS(certFile, keyFile, caFile)
//	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
//
// Raft (a raft.StreamLayer; raft_test.go has it whole): accept with
// tls.NewListener(tcpListener, pki.RequirePeerRole(serverCfg, pki.RoleServer)),
// dial with tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp",
// string(addr), clientCfg), and report the advertised address from Addr.
//
// # Plaintext
//
// Plaintext gRPC and raft happen only when asked for explicitly: sdnd --dev
// (a single machine trying sdn out) or --insecure-plaintext; sdnd --server
// and --agent refuse to start without TLS files otherwise. The CNI plugin
// talks to its agent over a unix socket of mode 0600, so only root reaches
// it; it needs no TLS. sdnd serves the API with TLS on its unix sockets
// too, so every call carries an identity its role table judges.
package pki
