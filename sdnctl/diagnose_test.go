package main

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestDiagnose: what each failure says, from what is known about the call
// and its connections; only a failed TLS handshake, or a server that
// closed the connection before speaking, gets TLS hints.
func TestDiagnose(t *testing.T) {
	plain := &app{server: "s:1", timeout: 30 * time.Second}
	withTLS := &app{server: "s:1", timeout: 30 * time.Second, tlsCA: "ca.crt", tlsCert: "me.crt", tlsKey: "me.key"}
	unavailable := func(msg string) *status.Status { return status.New(codes.Unavailable, msg) }
	deadline := status.New(codes.DeadlineExceeded, "context deadline exceeded")
	canceled := status.New(codes.Canceled, "context canceled")
	eof := unavailable("error reading from server: EOF")
	write, read := &callFacts{write: true}, &callFacts{}
	sentWrite, sentRead := &callFacts{write: true, sent: true}, &callFacts{sent: true}
	silent := &connFacts{stage: stageSilent, waited: 20*time.Second + 4*time.Millisecond}
	closed := func(err string) *connFacts { return &connFacts{stage: stageClosed, err: err} }
	handshake := func(err string) *connFacts { return &connFacts{stage: stageHandshake, err: err} }
	tlsWords := []string{"TLS", "certificate"}
	for _, c := range []struct {
		name    string
		a       *app
		f       failure
		want    string
		notWant []string
	}{
		// A request that left, then the connection was lost: a server
		// killed during an apply.
		{"write lost, plaintext", plain, failure{st: eof, call: sentWrite},
			"lost the connection to sdnd at s:1 after sending the request (error reading from server: EOF): the outcome is unknown; check with `sdnctl plan` or `sdnctl status`", tlsWords},
		{"write lost, TLS", withTLS, failure{st: unavailable("error reading from server: read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer"), call: sentWrite},
			"after sending the request (error reading from server: read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer): the outcome is unknown", tlsWords},
		{"write lost, with an old failed connection", plain, failure{st: eof, call: sentWrite, conn: closed("EOF")},
			"the outcome is unknown", tlsWords},
		{"read lost", plain, failure{st: eof, call: sentRead},
			"lost the connection to sdnd at s:1 during the call (error reading from server: EOF): the read failed; try again", tlsWords},
		{"write unanswered in time", plain, failure{st: deadline, call: sentWrite, deadline: true},
			"sdnd at s:1 did not answer within 30s: the outcome is unknown; check with `sdnctl plan` or `sdnctl status` (raise --timeout for a large change)", tlsWords},
		{"read unanswered in time", plain, failure{st: deadline, call: sentRead, deadline: true},
			"sdnd at s:1 did not answer within 30s (raise --timeout): the read failed; try again", tlsWords},
		{"write failed on the client after sending", plain, failure{st: status.New(codes.ResourceExhausted, "grpc: received message larger than max"), call: sentWrite},
			"sdnd at s:1: grpc: received message larger than max; the request was sent and no answer came: the outcome is unknown", nil},

		// Nothing came back on a connection: a stopped server or a
		// silent listener.
		{"silent, our deadline", plain, failure{st: deadline, call: write, conn: silent, deadline: true},
			"no answer from sdnd at s:1 within 30s: it accepted the connection but sent nothing back, so the request was not sent; is sdnd stopped (SIGSTOP, a debugger) or overloaded, or is something other than sdnd listening there? (raise --timeout if it is only slow)", tlsWords},
		{"silent, gRPC's connect timeout", plain, failure{st: unavailable(`connection error: desc = "error reading server preface: read tcp: use of closed network connection"`), call: read, conn: silent},
			"no answer from sdnd at s:1 within 20s: it accepted the connection but sent nothing back", append(tlsWords, "raise --timeout")},
		{"silent TLS server", withTLS, failure{st: unavailable(`connection error: desc = "transport: authentication handshake failed: context deadline exceeded"`), call: read, conn: silent},
			"no answer from sdnd at s:1 within 20s", tlsWords},

		// TLS and its absence.
		{"plaintext to a TLS server", plain, failure{st: unavailable(`connection error: desc = "error reading server preface: EOF"`), call: read, conn: closed("EOF")},
			"cannot talk to sdnd at s:1: it speaks mutual TLS and sdnctl ran without TLS: pass --tls-ca, --tls-cert and --tls-key (or SDN_TLS_CA, SDN_TLS_CERT, SDN_TLS_KEY) with the cluster's ca.crt", nil},
		{"plaintext to a TLS server, reset", plain, failure{st: unavailable("write tcp 127.0.0.1:37432->127.0.0.1:17420: write: broken pipe"), call: read, conn: closed("read: connection reset by peer")},
			"it speaks mutual TLS and sdnctl ran without TLS", nil},
		{"plaintext to a server answering in TLS", plain, failure{st: unavailable("error reading server preface: http2: frame too large"), call: read, conn: &connFacts{stage: stageNotHTTP2, head: []byte{0x15, 0x03, 0x03, 0x00, 0x02}}},
			"it answered in TLS and sdnctl ran without TLS: pass --tls-ca", nil},
		{"a server that is not gRPC", plain, failure{st: unavailable("error reading server preface: http2: frame too large"), call: read, conn: &connFacts{stage: stageNotHTTP2, head: []byte("HTTP/1.1 ")}},
			`it answered in something other than gRPC (it began "HTTP/1.1 "): is --server the address of sdnd's API?`, tlsWords},
		{"TLS to a plaintext server", withTLS, failure{st: unavailable("x"), call: read, conn: handshake("tls: first record does not look like a TLS handshake")},
			"it speaks plaintext (sdnd --dev or --insecure-plaintext) and sdnctl dialled with TLS: drop --tls-ca", nil},
		{"another cluster's CA", withTLS, failure{st: unavailable("x"), call: read, conn: handshake("tls: failed to verify certificate: x509: certificate signed by unknown authority")},
			"its certificate was not signed by the CA in --tls-ca (ca.crt)", nil},
		{"our certificate from another CA", withTLS, failure{st: unavailable("x"), call: read, conn: closed("remote error: tls: unknown certificate authority")},
			"it does not trust your certificate (--tls-cert me.crt)", nil},
		{"our certificate refused", withTLS, failure{st: unavailable("x"), call: read, conn: closed("remote error: tls: bad certificate")},
			"it refused your certificate (--tls-cert me.crt) during the handshake", nil},
		{"closed right after the handshake", withTLS, failure{st: unavailable("x"), call: read, conn: closed("EOF")},
			"it closed the connection right after the TLS handshake: most likely it refused your certificate (--tls-cert me.crt)", nil},
		{"closed during the handshake", withTLS, failure{st: unavailable("x"), call: read, conn: handshake("EOF")},
			"it closed the connection during the TLS handshake: is --server the address of an sdnd server?", nil},
		{"a certificate for another address", withTLS, failure{st: unavailable("x"), call: read, conn: handshake("x509: certificate is valid for 10.0.0.1, not 10.0.0.9")},
			"its certificate does not name the address dialled", nil},
		{"not a server's certificate", withTLS, failure{st: unavailable("x"), call: read, conn: handshake("peer agent/h1 is refused: only server certificates are accepted here")},
			"is --server the address of an sdnd server?", nil},
		{"an expired server certificate", withTLS, failure{st: unavailable("x"), call: read, conn: handshake("x509: certificate has expired or is not yet valid")},
			"its certificate is not valid now", nil},

		// No connection at all.
		{"refused", plain, failure{st: unavailable(`connection error: desc = "transport: Error while dialing: dial tcp: connect: connection refused"`), call: write},
			"cannot reach sdnd at s:1: connection error: desc = \"transport: Error while dialing: dial tcp: connect: connection refused\"; is `sdnd --dev` running? (set --server or SDN_SERVER)", tlsWords},
		{"refused, TLS", withTLS, failure{st: unavailable("connection refused"), call: write},
			"cannot reach sdnd at s:1: connection refused", tlsWords},
		{"no connection in time", plain, failure{st: deadline, call: write, deadline: true},
			"no answer from sdnd at s:1 within 30s: no connection could be opened (context deadline exceeded), so the request was not sent; is the address right and reachable?", tlsWords},

		// The server's own answers.
		{"no leader", plain, failure{st: unavailable("no raft leader; retry when a server is elected"), call: &callFacts{write: true, sent: true, answered: true}},
			"sdnd at s:1: no raft leader; retry when a server is elected", tlsWords},
		{"refused call", withTLS, failure{st: status.New(codes.PermissionDenied, "agent/h1 may not call ConfigService/Apply"), call: &callFacts{write: true, sent: true, answered: true}},
			"sdnd at s:1 refused the call: agent/h1 may not call ConfigService/Apply", nil},
		{"server's deadline", plain, failure{st: status.New(codes.DeadlineExceeded, "the commit took longer than 10s"), call: &callFacts{write: true, sent: true, answered: true}},
			"sdnd at s:1: the commit took longer than 10s", nil},
		{"untraced server answer", plain, failure{st: status.New(codes.FailedPrecondition, "network \"p\" still has workloads")},
			`network "p" still has workloads`, nil},
		{"untraced transport failure", plain, failure{st: unavailable("connection refused")},
			"cannot reach sdnd at s:1: connection refused", nil},

		// Interrupted.
		{"interrupted after sending a write", plain, failure{st: canceled, call: sentWrite, canceled: true},
			"interrupted after the request was sent to sdnd at s:1: the outcome is unknown; check with `sdnctl plan` or `sdnctl status`", nil},
		{"interrupted before sending a write", plain, failure{st: canceled, call: write, canceled: true, conn: silent},
			"interrupted before the request was sent: nothing changed", nil},
		{"interrupted during a read", plain, failure{st: canceled, call: sentRead, canceled: true},
			"interrupted", nil},
	} {
		err := c.a.diagnose(c.f)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v\nwant %q", c.name, err, c.want)
			continue
		}
		for _, w := range c.notWant {
			if strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q says %q", c.name, err, w)
			}
		}
		var ie *interruptedError
		if errors.As(err, &ie) != c.f.canceled {
			t.Errorf("%s: %T, interrupted %t", c.name, err, c.f.canceled)
		}
	}
}

// TestConnRecordFacts: what a connection's reads and handshake say about
// the server.
func TestConnRecordFacts(t *testing.T) {
	settings := []byte{0, 0, 6, 0x4, 0, 0, 0, 0, 0}
	now := time.Unix(100, 0)
	for _, c := range []struct {
		name string
		r    connRecord
		want connStage // 0: the server spoke HTTP/2
		err  string
	}{
		{"nothing yet", connRecord{}, stageSilent, ""},
		{"nothing, then sdnctl gave up", connRecord{closed: true}, stageSilent, ""},
		{"TLS handshake abandoned: nothing came", connRecord{handshakeErr: errors.New("context deadline exceeded"), closed: true}, stageSilent, ""},
		{"TLS handshake failed", connRecord{wireRead: 20, handshakeErr: errors.New("tls: first record does not look like a TLS handshake")}, stageHandshake, "tls: first record does not look like a TLS handshake"},
		{"closed at once (plaintext)", connRecord{endErr: io.EOF}, stageClosed, "EOF"},
		{"closed after the handshake", connRecord{wireRead: 900, endErr: errors.New("remote error: tls: bad certificate")}, stageClosed, "remote error: tls: bad certificate"},
		{"handshake, then nothing", connRecord{wireRead: 900}, stageSilent, ""},
		{"not HTTP/2", connRecord{wireRead: 9, appRead: 9, head: []byte("HTTP/1.1 ")}, stageNotHTTP2, ""},
		{"HTTP/2", connRecord{wireRead: 9, appRead: 9, head: settings}, 0, ""},
		{"HTTP/2, then lost", connRecord{wireRead: 900, appRead: 900, head: settings, endErr: io.EOF}, 0, ""},
	} {
		c.r.start = now.Add(-3 * time.Second)
		f := c.r.facts(now)
		switch {
		case c.want == 0 && f != nil:
			t.Errorf("%s: %+v, want nil", c.name, f)
		case c.want == 0:
		case f == nil || f.stage != c.want || f.err != c.err:
			t.Errorf("%s: %+v, want stage %d err %q", c.name, f, c.want, c.err)
		case f.waited != 3*time.Second:
			t.Errorf("%s: waited %s", c.name, f.waited)
		}
	}
}

// TestIsWrite: only the calls known to read are reads; a plan is one.
func TestIsWrite(t *testing.T) {
	for _, c := range []struct {
		method string
		dryRun bool
		want   bool
	}{
		{sdnv1.ConfigService_Apply_FullMethodName, false, true},
		{sdnv1.ConfigService_Apply_FullMethodName, true, false},
		{sdnv1.ConfigService_Delete_FullMethodName, false, true},
		{sdnv1.ConfigService_List_FullMethodName, false, false},
		{sdnv1.StatusService_Status_FullMethodName, false, false},
		{sdnv1.StatusService_WaitRealized_FullMethodName, false, false},
		{sdnv1.ClusterService_Members_FullMethodName, false, false},
		{sdnv1.ClusterService_TransferLeader_FullMethodName, false, true},
		{sdnv1.SnapshotService_Save_FullMethodName, false, false},
		{sdnv1.SnapshotService_Restore_FullMethodName, false, true},
		{"/sdn.v1.NewService/Anything", false, true},
		{"", false, true},
	} {
		if got := isWrite(c.method, c.dryRun); got != c.want {
			t.Errorf("isWrite(%q, %t) = %t", c.method, c.dryRun, got)
		}
	}
}

// failingConn fails every read and write with err.
type failingConn struct {
	net.Conn
	err error
}

func (c failingConn) Read([]byte) (int, error)  { return 0, c.err }
func (c failingConn) Write([]byte) (int, error) { return 0, c.err }
func (c failingConn) Close() error              { return nil }

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestTracedConnEnded: which read or write error a connection keeps as
// the server's ending of it.
func TestTracedConnEnded(t *testing.T) {
	alert := errors.New("remote error: tls: unknown certificate authority")
	epipe := errors.New("write: broken pipe")
	type op struct {
		app, write, close bool
		err               error
	}
	for _, c := range []struct {
		name string
		ops  []op
		want error
	}{
		{"a read's EOF", []op{{err: io.EOF}}, io.EOF},
		{"a write's broken pipe", []op{{write: true, err: epipe}}, epipe},
		{"the alert above TLS over the wire's EOF", []op{{err: io.EOF}, {app: true, err: alert}}, alert},
		{"the alert, then a broken pipe", []op{{app: true, err: alert}, {app: true, write: true, err: epipe}}, alert},
		{"the first on the wire", []op{{err: io.EOF}, {write: true, err: epipe}}, io.EOF},
		{"sdnctl closed it first", []op{{close: true}, {err: io.EOF}}, nil},
		{"sdnctl's own close", []op{{err: net.ErrClosed}}, nil},
		{"a timeout", []op{{err: timeoutErr{}}}, nil},
	} {
		log := &connLog{now: time.Now}
		rec := log.add()
		for _, o := range c.ops {
			tc := &tracedConn{Conn: failingConn{err: o.err}, log: log, rec: rec, app: o.app}
			switch {
			case o.close:
				tc.Close()
			case o.write:
				tc.Write([]byte("x"))
			default:
				tc.Read(make([]byte, 1))
			}
		}
		if rec.endErr != c.want {
			t.Errorf("%s: %v, want %v", c.name, rec.endErr, c.want)
		}
	}
}
