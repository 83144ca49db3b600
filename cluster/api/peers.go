package api

import (
	"fmt"
	"sync"
	"time"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
)

// Peers holds one client connection per other server, by address, for
// forwarding calls to the leader and for server-to-server calls (members,
// joins, cluster formation). Its dial options are the one place these
// connections get their transport security.
type Peers struct {
	opts []grpc.DialOption

	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	closed bool
}

// peerBackoff is how the pool reconnects to a server that went away:
// gRPC's default backoff grows to two minutes, so a server restarted after
// a while was unreachable through its old connection for many seconds
// after it served again. A server is one of 3 or 5, so trying every second
// costs nothing.
var peerBackoff = grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
	MinConnectTimeout: 5 * time.Second,
}

// NewPeers returns an empty pool dialling with opts (which must include
// transport credentials). Its connections take answers of up to
// model.MaxResponseBytes: a forwarded call's answer is the caller's.
func NewPeers(opts ...grpc.DialOption) *Peers {
	opts = append([]grpc.DialOption{grpc.WithConnectParams(peerBackoff)}, opts...)
	opts = append(opts, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(model.MaxResponseBytes)))
	return &Peers{opts: opts, conns: map[string]*grpc.ClientConn{}}
}

// Conn returns the connection to the server at addr (host:port), made on
// first use; it connects lazily and reconnects by itself. A connection
// waiting out a failed attempt is told to try again now: a caller has a
// call for that server.
func (p *Peers) Conn(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("server shutting down")
	}
	if c, ok := p.conns[addr]; ok {
		if c.GetState() == connectivity.TransientFailure {
			c.ResetConnectBackoff()
		}
		return c, nil
	}
	c, err := grpc.NewClient("passthrough:///"+addr, p.opts...)
	if err != nil {
		return nil, fmt.Errorf("server address %q: %w", addr, err)
	}
	p.conns[addr] = c
	return c, nil
}

// Cluster returns a ClusterService client for the server at addr.
func (p *Peers) Cluster(addr string) (sdnv1.ClusterServiceClient, error) {
	c, err := p.Conn(addr)
	if err != nil {
		return nil, err
	}
	return sdnv1.NewClusterServiceClient(c), nil
}

// Close closes every connection.
func (p *Peers) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for a, c := range p.conns {
		c.Close()
		delete(p.conns, a)
	}
}
