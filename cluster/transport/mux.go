// Package transport carries raft and the gRPC API on one TCP address, the
// way Consul does: a connection that starts with the byte RaftType is raft's
// (the dialling side, Raft().Dial, writes it), any other is the API's (gRPC
// over HTTP/2 starts with "PRI * HTTP/2.0", a TLS client hello with 0x16).
// A server then has one address that is both its raft address and its API
// address, so a follower forwards a write to the leader's raft address
// without any table of addresses.
//
// Transport security for raft plugs in here: Config.ServerTLS and
// Config.ClientTLS, when set, wrap every raft connection after its type
// byte. sdnd sets them from its certificates (mutual TLS, servers only:
// pki.RequirePeerRole on the accepting side, a server certificate for the
// address dialled on the dialling side), or leaves them nil for plaintext
// (--dev). An accepted raft connection finishes its handshake within
// handshakeTimeout before raft sees it, and a refused one is logged with
// why. The API side gets its TLS from the credentials of the grpc.Server
// that serves Mux.API().
package transport

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// RaftType is the first byte of every raft connection. It is neither 'P'
// (HTTP/2's preface) nor 0x16 (a TLS handshake), so gRPC, plain or over
// TLS, never starts with it.
const RaftType byte = 0x01

// handshakeTimeout bounds how long an accepted connection may take to send
// its first byte.
const handshakeTimeout = 10 * time.Second

// Config configures a Mux.
type Config struct {
	// Addr is the TCP address to listen on, e.g. "10.0.0.1:7420" or
	// "127.0.0.1:0".
	Addr string
	// Advertise is the address other servers dial to reach this one;
	// default the listener's address, which must then be dialable (not
	// 0.0.0.0 or ::).
	Advertise string
	// ServerTLS, when set, wraps accepted raft connections (after the type
	// byte) in TLS; ClientTLS wraps dialled ones. nil: plaintext. This is
	// where mutual TLS between servers plugs into raft: ServerTLS should
	// admit server certificates only (pki.RequirePeerRole).
	ServerTLS *tls.Config
	ClientTLS *tls.Config
	// Track, when set, is given every raft TLS connection after its
	// handshake, accepted or dialled, and the connection it returns is
	// used instead (pki.Tracker.Track: so that those of a certificate
	// revoked later can be closed).
	Track func(net.Conn, tls.ConnectionState) net.Conn
	// Logger receives connection-level warnings; nil = slog.Default().
	Logger *slog.Logger
}

// Mux is a TCP listener whose connections are sorted by their first byte
// into raft's and the API's.
type Mux struct {
	cfg  Config
	ln   net.Listener
	adv  net.Addr
	api  *chanListener
	raft *streamLayer
	log  *slog.Logger

	closeOnce sync.Once
	done      chan struct{}
}

// Listen opens the address and starts sorting connections.
func Listen(cfg Config) (*Mux, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	adv, err := advertised(cfg.Advertise, ln.Addr())
	if err != nil {
		ln.Close()
		return nil, err
	}
	m := &Mux{cfg: cfg, ln: ln, adv: adv, log: cfg.Logger, done: make(chan struct{})}
	m.api = newChanListener(ln.Addr())
	m.raft = &streamLayer{chanListener: newChanListener(adv), mux: m}
	go m.serve()
	return m, nil
}

// advertised resolves the address peers dial: adv when given, else the
// listener's own, which must then be a specific IP.
func advertised(adv string, listen net.Addr) (net.Addr, error) {
	if adv == "" {
		a := listen.(*net.TCPAddr)
		if a.IP == nil || a.IP.IsUnspecified() {
			return nil, fmt.Errorf("listen address %s cannot be dialled by other servers; give the address they reach this server at (--raft-advertise)", listen)
		}
		return a, nil
	}
	a, err := net.ResolveTCPAddr("tcp", adv)
	if err != nil {
		return nil, fmt.Errorf("advertise address %q: %w", adv, err)
	}
	if a.IP == nil || a.IP.IsUnspecified() {
		return nil, fmt.Errorf("advertise address %q is not one other servers can dial; give this server's own IP", adv)
	}
	return a, nil
}

// Addr is the advertised address: raft's and the API's.
func (m *Mux) Addr() net.Addr { return m.adv }

// ListenAddr is the address actually listened on (with the port chosen
// when Config.Addr asked for port 0).
func (m *Mux) ListenAddr() net.Addr { return m.ln.Addr() }

// API returns the listener of the API's connections, for grpc.Server.Serve.
func (m *Mux) API() net.Listener { return m.api }

// Raft returns raft's stream layer, for raft.NewNetworkTransportWithConfig.
func (m *Mux) Raft() raft.StreamLayer { return m.raft }

// Close stops listening and closes both sides.
func (m *Mux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.done)
		err = m.ln.Close()
		m.api.Close()
		m.raft.Close()
	})
	return err
}

func (m *Mux) serve() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			m.log.Error("accept on the server address failed; raft and the API stop", "addr", m.ln.Addr(), "err", err)
			m.Close()
			return
		}
		go m.sort(c)
	}
}

// sort reads a connection's first byte and hands it to its side.
func (m *Mux) sort(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(handshakeTimeout))
	br := bufio.NewReaderSize(c, 1)
	b, err := br.Peek(1)
	if err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if b[0] == RaftType {
		_, _ = br.Discard(1)
		var rc net.Conn = &bufConn{Conn: c, r: br}
		if m.cfg.ServerTLS != nil {
			tc := tls.Server(rc, m.cfg.ServerTLS)
			_ = tc.SetDeadline(time.Now().Add(handshakeTimeout))
			if err := tc.Handshake(); err != nil {
				m.log.Warn("raft connection refused: TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
				tc.Close()
				return
			}
			_ = tc.SetDeadline(time.Time{})
			rc = tc
			if m.cfg.Track != nil {
				rc = m.cfg.Track(tc, tc.ConnectionState())
			}
		}
		m.raft.deliver(rc)
		return
	}
	m.api.deliver(&bufConn{Conn: c, r: br})
}

// bufConn is a connection whose first bytes were read into r.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// chanListener is a net.Listener fed by the mux.
type chanListener struct {
	addr      net.Addr
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.closed:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// streamLayer is raft's side: accepted raft connections, and dials that
// announce themselves with RaftType.
type streamLayer struct {
	*chanListener
	mux *Mux
}

// Dial connects to another server's address as raft.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(address), timeout)
	if err != nil {
		return nil, err
	}
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte{RaftType}); err != nil {
		c.Close()
		return nil, err
	}
	if s.mux.cfg.ClientTLS == nil {
		_ = c.SetWriteDeadline(time.Time{})
		return c, nil
	}
	cfg := s.mux.cfg.ClientTLS
	if cfg.ServerName == "" {
		// As tls.Dial does: verify the certificate for the host dialled.
		host, _, err := net.SplitHostPort(string(address))
		if err != nil {
			c.Close()
			return nil, err
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	tc := tls.Client(c, cfg)
	_ = tc.SetDeadline(time.Now().Add(timeout))
	if err := tc.Handshake(); err != nil {
		tc.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", address, err)
	}
	_ = tc.SetDeadline(time.Time{})
	if s.mux.cfg.Track != nil {
		return s.mux.cfg.Track(tc, tc.ConnectionState()), nil
	}
	return tc, nil
}
