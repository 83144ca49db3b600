package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// failure is everything sdnctl knows about a call that failed: gRPC's
// status, what the call's trace recorded and, when its request never
// left, what the connections saw of the server (trace.go).
type failure struct {
	st       *status.Status
	call     *callFacts // nil: the call was not traced
	conn     *connFacts // nil: no connection failed before speaking HTTP/2
	deadline bool       // the call's own deadline (--timeout) passed
	canceled bool       // the call's context was canceled: sdnctl was interrupted
}

// callFacts is what happened to a call.
type callFacts struct {
	write    bool // the call may change the cluster
	sent     bool // its request was handed to an established connection
	answered bool // the server's status arrived
}

// connStage is how far a connection that never spoke HTTP/2 got, in
// increasing order of what it tells about the server.
type connStage int

const (
	// stageSilent: TCP connected, then nothing came back (a stopped
	// process, an overloaded one, a listener that is not sdnd).
	stageSilent connStage = iota + 1
	// stageNotHTTP2: the server sent something other than HTTP/2.
	stageNotHTTP2
	// stageClosed: the server closed the connection before a byte of
	// HTTP/2: at sdnctl's first bytes (plaintext), or right after the TLS
	// handshake (TLS 1.3 servers judge the client's certificate then).
	stageClosed
	// stageHandshake: the TLS handshake failed.
	stageHandshake
)

// connFacts is what one connection saw of the server.
type connFacts struct {
	stage  connStage
	err    string        // the handshake's error, or the read error that ended it
	head   []byte        // the first bytes the server sent (stageNotHTTP2)
	waited time.Duration // how long it has been open or was open
}

// checkOutcome is what to do when a write's outcome is unknown.
const checkOutcome = "check with `sdnctl plan` or `sdnctl status`"

// diagnose turns a failed call into an error that says what is known and
// what to do (CONTRIBUTING.md, Errors and logs): the server's own answer
// as it gave it; a write whose request left with no answer has an unknown
// outcome, a read that lost its answer failed; a request that never left
// is explained by what its connection saw, and only a connection whose
// TLS handshake failed, or that the server closed before speaking, gets
// TLS hints.
func (a *app) diagnose(f failure) error {
	call := f.call
	if call == nil {
		// Untraced: only a transport failure is taken for one.
		call = &callFacts{answered: f.st.Code() != codes.Unavailable && !f.deadline && !f.canceled}
	}
	switch {
	case call.answered:
		return a.serverError(f.st)
	case f.canceled:
		return interrupted(a.server, call)
	case call.sent:
		return a.lostAnswer(f, call.write)
	}
	return a.notSent(f)
}

// serverError is the server's own answer, with what to do where the code
// says it.
func (a *app) serverError(st *status.Status) error {
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded:
		return fmt.Errorf("sdnd at %s: %s", a.server, st.Message())
	case codes.Unauthenticated:
		return fmt.Errorf("sdnd at %s wants a certificate: %s", a.server, st.Message())
	case codes.PermissionDenied:
		return fmt.Errorf("sdnd at %s refused the call: %s", a.server, st.Message())
	case codes.Unimplemented:
		return fmt.Errorf("sdnd at %s does not implement this call (is it older than sdnctl?): %s",
			a.server, st.Message())
	}
	return errors.New(st.Message())
}

// interrupted is the error of a call sdnctl's interruption cut short.
func interrupted(server string, call *callFacts) error {
	switch {
	case call.write && call.sent:
		return &interruptedError{fmt.Sprintf("interrupted after the request was sent to sdnd at %s: the outcome is unknown; %s", server, checkOutcome)}
	case call.write:
		return &interruptedError{"interrupted before the request was sent: nothing changed"}
	}
	return &interruptedError{"interrupted"}
}

// lostAnswer: the request left on a working connection and no answer
// came: a write may or may not have happened.
func (a *app) lostAnswer(f failure, write bool) error {
	msg := f.st.Message()
	switch {
	case f.deadline && write:
		return fmt.Errorf("sdnd at %s did not answer within %s: the outcome is unknown; %s (raise --timeout for a large change)",
			a.server, a.timeout, checkOutcome)
	case f.deadline:
		return fmt.Errorf("sdnd at %s did not answer within %s (raise --timeout): the read failed; try again", a.server, a.timeout)
	case f.st.Code() == codes.Unavailable && write:
		return fmt.Errorf("lost the connection to sdnd at %s after sending the request (%s): the outcome is unknown; %s",
			a.server, msg, checkOutcome)
	case f.st.Code() == codes.Unavailable:
		return fmt.Errorf("lost the connection to sdnd at %s during the call (%s): the read failed; try again", a.server, msg)
	case write:
		return fmt.Errorf("sdnd at %s: %s; the request was sent and no answer came: the outcome is unknown; %s",
			a.server, msg, checkOutcome)
	}
	return fmt.Errorf("sdnd at %s: %s", a.server, msg)
}

// notSent: the request never left, so nothing changed; the connections
// say why.
func (a *app) notSent(f failure) error {
	msg := f.st.Message()
	c := f.conn
	switch {
	case c != nil && c.stage == stageSilent:
		waited := c.waited.Round(time.Second)
		slow := ""
		if f.deadline {
			waited, slow = a.timeout, " (raise --timeout if it is only slow)"
		}
		return fmt.Errorf("no answer from sdnd at %s within %s: it accepted the connection but sent nothing back, so the request was not sent; "+
			"is sdnd stopped (SIGSTOP, a debugger) or overloaded, or is something other than sdnd listening there?%s", a.server, waited, slow)
	case c != nil:
		return fmt.Errorf("cannot talk to sdnd at %s: %s\n(%s)", a.server, a.connHint(c), msg)
	case f.deadline:
		return fmt.Errorf("no answer from sdnd at %s within %s: no connection could be opened (%s), so the request was not sent; is the address right and reachable?",
			a.server, a.timeout, msg)
	}
	return fmt.Errorf("cannot reach sdnd at %s: %s; is `sdnd --dev` running? (set --server or SDN_SERVER)", a.server, msg)
}

// tlsFlagsHelp names the three TLS settings.
const tlsFlagsHelp = "--tls-ca, --tls-cert and --tls-key (or SDN_TLS_CA, SDN_TLS_CERT, SDN_TLS_KEY)"

// connHint explains what a connection that never carried a call saw.
func (a *app) connHint(c *connFacts) string {
	switch c.stage {
	case stageHandshake:
		return a.handshakeHint(c.err)
	case stageClosed:
		if !a.useTLS() {
			// A TLS server closes a plaintext connection at its first
			// bytes, having sent none of its own.
			return "it speaks mutual TLS and sdnctl ran without TLS: pass " + tlsFlagsHelp +
				" with the cluster's ca.crt and your client certificate and key (made by `sdnctl tls init` or `sdnctl tls issue --role client --name YOU`)"
		}
		return a.refusalHint(c.err)
	}
	if !a.useTLS() && len(c.head) > 0 && (c.head[0] == 0x15 || c.head[0] == 0x16) {
		// A TLS alert or handshake record where HTTP/2 was expected.
		return "it answered in TLS and sdnctl ran without TLS: pass " + tlsFlagsHelp
	}
	return fmt.Sprintf("it answered in something other than gRPC (it began %q): is --server the address of sdnd's API?", c.head)
}

// refusalHint explains a TLS server that closed the connection right
// after the handshake, from the read error (an alert it sent, or EOF).
// With TLS 1.3 the server judges the client's certificate after the
// client finished its side of the handshake.
func (a *app) refusalHint(err string) string {
	switch {
	case strings.Contains(err, "tls: unknown certificate authority"):
		return "it does not trust your certificate (--tls-cert " + a.tlsCert + "): another CA signed it; use one issued by this cluster's CA (`sdnctl tls issue --role client`)"
	case containsAny(err, "tls: bad certificate", "tls: certificate required", "tls: expired certificate", "tls: revoked certificate"):
		return "it refused your certificate (--tls-cert " + a.tlsCert + ") during the handshake; its log says why (\"API connection refused\")"
	}
	return "it closed the connection right after the TLS handshake: most likely it refused your certificate (--tls-cert " + a.tlsCert +
		"), e.g. one another CA signed, or an expired one; its log says why (\"API connection refused\")"
}

// handshakeHint explains a failed TLS handshake from its error.
func (a *app) handshakeHint(err string) string {
	switch {
	case strings.Contains(err, "first record does not look like a TLS handshake"):
		return "it speaks plaintext (sdnd --dev or --insecure-plaintext) and sdnctl dialled with TLS: drop " + tlsFlagsHelp
	case strings.Contains(err, "certificate signed by unknown authority"):
		return "its certificate was not signed by the CA in --tls-ca (" + a.tlsCA + "): the two come from different clusters' CAs; use the ca.crt of this cluster"
	case containsAny(err, "tls: unknown certificate authority", "tls: bad certificate", "tls: certificate required", "tls: expired certificate", "tls: revoked certificate"):
		return a.refusalHint(err)
	case strings.Contains(err, "certificate is valid for"):
		return "its certificate does not name the address dialled: dial one it names (`sdnctl tls list` shows them), or reissue it with that --host"
	case containsAny(err, "certificate has expired", "is not valid yet"):
		return "its certificate is not valid now: renew it (`sdnctl tls issue --replace`) or check the clocks"
	case strings.Contains(err, "only server certificates are accepted here"):
		return "the certificate it presented is not a server's: is --server the address of an sdnd server?"
	case containsAny(err, "EOF", "connection reset by peer"):
		return "it closed the connection during the TLS handshake: is --server the address of an sdnd server?"
	}
	return "the TLS handshake failed"
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
