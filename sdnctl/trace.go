package main

// What sdnctl records about its calls and connections, so that an error
// says what is known rather than what gRPC's message resembles
// (CONTRIBUTING.md, Errors and logs: an unknown outcome is called
// unknown). Two recorders, both fed by gRPC itself:
//
//   - callStats, a gRPC stats handler, notes for each call traced by
//     callContext whether its request left on an established connection
//     and whether the server answered with a status. A write whose request
//     left and got no answer has an unknown outcome, whatever the error.
//   - tracedCreds wraps the transport credentials (TLS or plaintext) and
//     notes for each connection what the server did before speaking
//     HTTP/2: nothing at all (a stopped process, a silent listener), fail
//     the TLS handshake, close the connection, or send something that is
//     not HTTP/2. Only these say why a connection never carried a call.

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/stats"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// callTrace is what happened to one call (every attempt gRPC made of it).
type callTrace struct {
	mu       sync.Mutex
	method   string
	dryRun   bool // the request asked for a dry run (a plan)
	sent     bool // the request was handed to an established connection
	answered bool // the server's status arrived (trailers)
}

type callTraceKey struct{}

// withCallTrace returns ctx carrying a fresh trace for the one call made
// with it.
func withCallTrace(ctx context.Context) context.Context {
	return context.WithValue(ctx, callTraceKey{}, &callTrace{})
}

// callTraceOf returns the trace ctx carries, nil if none.
func callTraceOf(ctx context.Context) *callTrace {
	t, _ := ctx.Value(callTraceKey{}).(*callTrace)
	return t
}

// facts returns a copy of what the trace recorded.
func (t *callTrace) facts() *callFacts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return &callFacts{
		write:    isWrite(t.method, t.dryRun),
		sent:     t.sent,
		answered: t.answered,
	}
}

// readMethods are the calls of sdnctl that change nothing; every other
// method, including any added later, counts as a write, so that a lost
// answer to it is reported as an unknown outcome, never as "try again".
var readMethods = []string{
	sdnv1.ConfigService_List_FullMethodName,
	sdnv1.ConfigService_ListStream_FullMethodName,
	sdnv1.StatusService_Status_FullMethodName,
	sdnv1.StatusService_WaitRealized_FullMethodName,
	sdnv1.ClusterService_Members_FullMethodName,
	sdnv1.ClusterService_ListRevoked_FullMethodName,
	sdnv1.ClusterService_Info_FullMethodName,
	sdnv1.SnapshotService_Save_FullMethodName,
	sdnv1.NodeService_Watch_FullMethodName,
	sdnv1.PolicyService_Verdict_FullMethodName,
}

// isWrite reports whether a call of method may change the cluster; a dry
// run (plan) does not.
func isWrite(method string, dryRun bool) bool {
	return !dryRun && !slices.Contains(readMethods, method)
}

// callStats is the gRPC stats handler that fills the callTrace a call's
// context carries; calls without one are not recorded.
type callStats struct{}

func (callStats) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	if t := callTraceOf(ctx); t != nil {
		t.mu.Lock()
		t.method = info.FullMethodName
		t.mu.Unlock()
	}
	return ctx
}

func (callStats) HandleRPC(ctx context.Context, s stats.RPCStats) {
	t := callTraceOf(ctx)
	if t == nil || !s.IsClient() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch s := s.(type) {
	case *stats.Begin:
		// gRPC retries transparently only an attempt the server did not
		// process (it never left, or the server refused the stream).
		if s.IsTransparentRetryAttempt {
			t.sent = false
			break
		}
		// A new call on the same context (get's fallback from ListStream
		// to List on an older server): the trace is the latest call's.
		t.sent, t.answered, t.dryRun = false, false, false
	case *stats.OutPayload:
		t.sent = true
		if r, ok := s.Payload.(interface{ GetDryRun() bool }); ok && r.GetDryRun() {
			t.dryRun = true
		}
	case *stats.InTrailer:
		t.answered = true
	}
}

func (callStats) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (callStats) HandleConn(context.Context, stats.ConnStats)                       {}

// connLog records every connection sdnctl opened (TCP connected: dials
// that failed before are not in it).
type connLog struct {
	mu    sync.Mutex
	conns []*connRecord
	now   func() time.Time
}

// connRecord is what one connection saw of the server. Bytes are counted
// on the wire (TLS records included) and above the credentials (what
// HTTP/2 reads: the server's frames).
type connRecord struct {
	start        time.Time
	handshakeErr error // the TLS handshake failed (plaintext: never)
	wireRead     int64
	appRead      int64
	head         []byte // the first bytes above the credentials, up to headLen
	endErr       error  // the read's or write's error that showed the server ended the connection
	appErr       bool   // endErr came from above the credentials
	closed       bool   // sdnctl (gRPC) closed it before the server ended it
}

// headLen is an HTTP/2 frame header: enough to tell the SETTINGS frame
// every HTTP/2 server sends first.
const headLen = 9

// tracedCreds wraps the transport credentials sdnctl dials with and
// records each connection's handshake, reads and end in log.
type tracedCreds struct {
	credentials.TransportCredentials
	log *connLog
}

func (c *tracedCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	rec := c.log.add()
	conn, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, &tracedConn{Conn: raw, log: c.log, rec: rec})
	if err != nil {
		c.log.mu.Lock()
		rec.handshakeErr = err
		c.log.mu.Unlock()
		return nil, nil, err
	}
	return &tracedConn{Conn: conn, log: c.log, rec: rec, app: true}, info, nil
}

func (c *tracedCreds) Clone() credentials.TransportCredentials {
	return &tracedCreds{TransportCredentials: c.TransportCredentials.Clone(), log: c.log}
}

func (l *connLog) add() *connRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &connRecord{start: l.now()}
	l.conns = append(l.conns, r)
	return r
}

// tracedConn counts what the server sends; app marks the connection above
// the credentials (for plaintext, both count the same bytes).
type tracedConn struct {
	net.Conn
	log *connLog
	rec *connRecord
	app bool
}

func (c *tracedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.log.mu.Lock()
	defer c.log.mu.Unlock()
	r := c.rec
	if c.app {
		r.appRead += int64(n)
		if k := min(n, headLen-len(r.head)); k > 0 {
			r.head = append(r.head, p[:k]...)
		}
	} else {
		r.wireRead += int64(n)
	}
	c.ended(err)
	return n, err
}

// Write notes a write the server's close failed (EPIPE, a reset): gRPC
// may see that before the read that would have.
func (c *tracedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil {
		c.log.mu.Lock()
		c.ended(err)
		c.log.mu.Unlock()
	}
	return n, err
}

// ended records err if the server caused it: not sdnctl's own close, not
// a timeout (the server may just be slow or stopped). The first one
// counts, except that one from above TLS wins over the wire's: it names
// the alert the server sent ("remote error: tls: bad certificate"), where
// the wire says EOF. Called with log.mu held.
func (c *tracedConn) ended(err error) {
	r := c.rec
	var ne net.Error
	switch {
	case err == nil, r.closed, errors.Is(err, net.ErrClosed), errors.As(err, &ne) && ne.Timeout():
	case r.endErr == nil || c.app && !r.appErr:
		r.endErr, r.appErr = err, c.app
	}
}

func (c *tracedConn) Close() error {
	c.log.mu.Lock()
	if c.rec.endErr == nil {
		c.rec.closed = true
	}
	c.log.mu.Unlock()
	return c.Conn.Close()
}

// failed returns what the most telling connection that never spoke HTTP/2
// saw, nil when every connection did (or none was made): a server's
// definite answer (a TLS failure, a close, something not HTTP/2) tells
// more than silence, and a later connection more than an earlier one.
func (l *connLog) failed() *connFacts {
	l.mu.Lock()
	defer l.mu.Unlock()
	var best *connFacts
	for _, r := range l.conns {
		f := r.facts(l.now())
		if f == nil {
			continue
		}
		if best == nil || f.stage >= best.stage {
			best = f
		}
	}
	return best
}

// facts classifies one connection; nil when the server spoke HTTP/2 on it.
func (r *connRecord) facts(now time.Time) *connFacts {
	f := &connFacts{waited: now.Sub(r.start), head: slices.Clone(r.head)}
	serverEnded := r.endErr != nil
	switch {
	case r.wireRead == 0 && !serverEnded:
		f.stage = stageSilent
	case r.handshakeErr != nil:
		f.stage, f.err = stageHandshake, r.handshakeErr.Error()
	case r.appRead == 0 && serverEnded:
		f.stage, f.err = stageClosed, r.endErr.Error()
	case r.appRead == 0:
		f.stage = stageSilent // a TLS handshake, then nothing
	case len(r.head) >= 4 && r.head[3] == 0x4:
		return nil // an HTTP/2 SETTINGS frame: the server speaks HTTP/2
	default:
		f.stage = stageNotHTTP2
		if r.endErr != nil {
			f.err = r.endErr.Error()
		}
	}
	return f
}
