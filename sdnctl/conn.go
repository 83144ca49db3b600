package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/pki"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// client is a connection to sdnd and the API services sdnctl uses.
type client struct {
	conn    *grpc.ClientConn
	config  sdnv1.ConfigServiceClient
	status  sdnv1.StatusServiceClient
	cluster sdnv1.ClusterServiceClient
	nodes   sdnv1.NodeServiceClient
	policy  sdnv1.PolicyServiceClient
}

func (c *client) Close() error { return c.conn.Close() }

// dialOptions decides how sdnctl talks to sdnd: mutual TLS with the
// files of --tls-ca, --tls-cert and --tls-key (or SDN_TLS_CA,
// SDN_TLS_CERT, SDN_TLS_KEY), plaintext with none of them (sdnd --dev).
// It is the one place that chooses transport security. Either way the
// connections and calls are recorded (trace.go) for the errors.
func (a *app) dialOptions() ([]grpc.DialOption, error) {
	given, missing := a.tlsGiven()
	var creds credentials.TransportCredentials
	switch {
	case len(given) == 0:
		creds = insecure.NewCredentials()
	case len(missing) > 0:
		return nil, usagef("%s given without %s: mutual TLS needs the cluster CA certificate, your certificate and its key (flags or SDN_TLS_CA, SDN_TLS_CERT, SDN_TLS_KEY)",
			strings.Join(given, ", "), strings.Join(missing, " and "))
	default:
		cfg, err := pki.ClientTLS(a.tlsCert, a.tlsKey, a.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("TLS: %w", err)
		}
		creds = credentials.NewTLS(cfg)
	}
	if a.conns == nil {
		a.conns = &connLog{now: time.Now}
	}
	return []grpc.DialOption{
		grpc.WithTransportCredentials(&tracedCreds{TransportCredentials: creds, log: a.conns}),
		grpc.WithStatsHandler(callStats{}),
	}, nil
}

// tlsGiven lists the TLS flags set and those missing.
func (a *app) tlsGiven() (given, missing []string) {
	for _, f := range []struct{ name, v string }{{pki.FlagCA, a.tlsCA}, {pki.FlagCert, a.tlsCert}, {pki.FlagKey, a.tlsKey}} {
		if f.v != "" {
			given = append(given, "--"+f.name)
		} else {
			missing = append(missing, "--"+f.name)
		}
	}
	return given, missing
}

// useTLS reports whether sdnctl dials with TLS.
func (a *app) useTLS() bool {
	given, _ := a.tlsGiven()
	return len(given) == 3
}

// connect makes a client for the server named by --server. The connection
// is established lazily, by the first call. Several servers (a,b,c) are
// tried in order until one answers; any server answers any call.
func (a *app) connect() (*client, error) {
	target, opts, err := a.target()
	if err != nil {
		return nil, err
	}
	dopts, err := a.dialOptions()
	if err != nil {
		return nil, err
	}
	// Answers past gRPC's default 4 MiB: an apply's changes, a status of
	// many hosts (lists come in pages; docs/design.md, "Message sizes").
	opts = append(opts, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(model.MaxResponseBytes)))
	conn, err := grpc.NewClient(target, append(dopts, opts...)...)
	if err != nil {
		return nil, usagef("bad --server %q: %v", a.server, err)
	}
	return &client{
		conn:    conn,
		config:  sdnv1.NewConfigServiceClient(conn),
		status:  sdnv1.NewStatusServiceClient(conn),
		nodes:   sdnv1.NewNodeServiceClient(conn),
		cluster: sdnv1.NewClusterServiceClient(conn),
		policy:  sdnv1.NewPolicyServiceClient(conn),
	}, nil
}

// target turns --server into a gRPC target: one address as given, several
// (comma-separated host:port) through a resolver that lists them all, so
// the connection moves to the next when one fails.
func (a *app) target() (string, []grpc.DialOption, error) {
	var addrs []string
	for s := range strings.SplitSeq(a.server, ",") {
		if s = strings.TrimSpace(s); s != "" {
			addrs = append(addrs, s)
		}
	}
	switch {
	case len(addrs) == 0:
		return "", nil, usagef("--server is empty; give sdnd's address, e.g. 127.0.0.1:7420")
	case len(addrs) == 1:
		return addrs[0], nil, nil
	}
	r := manual.NewBuilderWithScheme("sdnctl")
	ras := make([]resolver.Address, len(addrs))
	for i, s := range addrs {
		if strings.Contains(s, "://") || strings.HasPrefix(s, "unix:") {
			return "", nil, usagef("--server %q: several servers are host:port each, not %q", a.server, s)
		}
		host, _, err := net.SplitHostPort(s)
		if err != nil {
			return "", nil, usagef("--server %q: %q is not host:port", a.server, s)
		}
		// TLS checks each server's certificate for the host dialled.
		ras[i] = resolver.Address{Addr: s, ServerName: host}
	}
	r.InitialState(resolver.State{Addresses: ras})
	return r.Scheme() + ":///servers", []grpc.DialOption{grpc.WithResolvers(r)}, nil
}

// callContext bounds one call by --timeout and traces it, for rpcError.
func (a *app) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(withCallTrace(ctx), a.timeout)
}

// rpcError turns an error from a call to sdnd into one that says what is
// known and what to do (diagnose.go); ctx is the call's, from
// callContext. Errors that are not gRPC statuses pass through.
func (a *app) rpcError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	f := failure{
		st:       st,
		deadline: st.Code() == codes.DeadlineExceeded && errors.Is(ctx.Err(), context.DeadlineExceeded),
		canceled: st.Code() == codes.Canceled && ctx.Err() != nil,
	}
	if t := callTraceOf(ctx); t != nil {
		f.call = t.facts()
	}
	if a.conns != nil && (f.call == nil || !f.call.sent) {
		f.conn = a.conns.failed()
	}
	return a.diagnose(f)
}

// applyErrorOf returns the ApplyError carried in err's status details, if
// any.
func applyErrorOf(err error) *sdnv1.ApplyError {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	for _, d := range st.Details() {
		if ae, ok := d.(*sdnv1.ApplyError); ok {
			return ae
		}
	}
	return nil
}
