package pki

import (
	"context"
	"crypto/tls"
	"net"
	"sync"

	"google.golang.org/grpc/credentials"
)

// Tracker remembers a process's live TLS connections with their peer's
// verified certificate, so that the connections of a certificate revoked
// after their handshake can be closed (CloseRevoked): a revocation must
// end an agent's open watch and a revoked server's raft connections, not
// only refuse new handshakes.
type Tracker struct {
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{conns: map[*trackedConn]struct{}{}} }

type trackedConn struct {
	net.Conn
	state tls.ConnectionState
	t     *Tracker
	once  sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.t.mu.Lock()
		delete(c.t.conns, c)
		c.t.mu.Unlock()
	})
	return c.Conn.Close()
}

// Track returns c, remembered with the handshake's state until it closes.
// Use the returned connection in its place.
func (t *Tracker) Track(c net.Conn, state tls.ConnectionState) net.Conn {
	tc := &trackedConn{Conn: c, state: state, t: t}
	t.mu.Lock()
	t.conns[tc] = struct{}{}
	t.mu.Unlock()
	return tc
}

// Len is how many connections are tracked.
func (t *Tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

// CloseRevoked closes every tracked connection whose peer's certificate
// revoked reports revoked, and returns their refusals.
func (t *Tracker) CloseRevoked(revoked Revoked) []error {
	t.mu.Lock()
	var victims []*trackedConn
	var errs []error
	for c := range t.conns {
		if err := CheckRevoked(c.state, revoked); err != nil {
			victims = append(victims, c)
			errs = append(errs, err)
		}
	}
	t.mu.Unlock()
	for _, c := range victims {
		c.Close()
	}
	return errs
}

// Credentials wraps gRPC TLS credentials so that every connection they
// complete, served or dialled, is tracked.
func (t *Tracker) Credentials(inner credentials.TransportCredentials) credentials.TransportCredentials {
	return trackedCreds{TransportCredentials: inner, t: t}
}

type trackedCreds struct {
	credentials.TransportCredentials
	t *Tracker
}

func (c trackedCreds) track(conn net.Conn, info credentials.AuthInfo, err error) (net.Conn, credentials.AuthInfo, error) {
	if err != nil {
		return conn, info, err
	}
	if ti, ok := info.(credentials.TLSInfo); ok {
		conn = c.t.Track(conn, ti.State)
	}
	return conn, info, nil
}

func (c trackedCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c.track(c.TransportCredentials.ServerHandshake(raw))
}

func (c trackedCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c.track(c.TransportCredentials.ClientHandshake(ctx, authority, raw))
}

func (c trackedCreds) Clone() credentials.TransportCredentials {
	return trackedCreds{TransportCredentials: c.TransportCredentials.Clone(), t: c.t}
}
