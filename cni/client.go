package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Time limits for one plugin call. ADD includes the agent's wait for the
// datapath (20 s at most), so it gets more.
const (
	addTimeout   = 60 * time.Second
	otherTimeout = 30 * time.Second
	gcTimeout    = 120 * time.Second
	dialTimeout  = 3 * time.Second
)

// agentClient is a connection to the agent's unix socket.
type agentClient struct {
	socket string
	conn   *grpc.ClientConn
	sdnv1.AgentServiceClient
}

// dial connects to the agent for cmd. It first makes one plain connection
// to the socket so that an absent, dead or forbidden agent is reported as
// such (dialError), not as a gRPC transport error; gRPC then uses that
// connection (and dials again only if it is lost).
func dial(cmd, socket string) (*agentClient, error) {
	c, err := net.DialTimeout("unix", socket, dialTimeout)
	if err != nil {
		return nil, dialError(cmd, socket, err, os.Geteuid())
	}
	var mu sync.Mutex
	first := c
	dialer := func(ctx context.Context, _ string) (net.Conn, error) {
		mu.Lock()
		conn := first
		first = nil
		mu.Unlock()
		if conn != nil {
			return conn, nil
		}
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}
	conn, err := grpc.NewClient("passthrough:///"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(dialer))
	if err != nil {
		c.Close()
		return nil, types.NewError(types.ErrInternal, fmt.Sprintf("sdn: connect to sdnd agent at %s: %v", socket, err), "")
	}
	return &agentClient{socket: socket, conn: conn, AgentServiceClient: sdnv1.NewAgentServiceClient(conn)}, nil
}

// dialError is the CNI error for a connection to the agent's socket that
// failed (package comment, "Error codes"). An agent that is not running
// (no socket, nobody accepting on it, no answer in time) may come back:
// "try again later" (11), or "not available" (50) for STATUS. A caller the
// root-only socket refuses, or a path that cannot be a socket, will not
// get better by retrying: "I/O failure" (5), saying what to change.
func dialError(cmd, socket string, err error, uid int) *types.Error {
	reason := err.Error()
	var errno syscall.Errno
	if errors.As(err, &errno) {
		reason = errno.Error()
	}
	var nerr net.Error
	why := ""
	// STATUS: whatever keeps the plugin from the agent, it cannot ADD.
	permanent := types.ErrIOFailure
	if cmd == "STATUS" {
		permanent = types.ErrPluginNotAvailable
	}
	switch {
	case errors.Is(err, fs.ErrPermission):
		return types.NewError(permanent, fmt.Sprintf(
			"sdn: permission denied on the sdnd agent's socket %s: it is root-only and this plugin runs as uid %d; the container runtime must run CNI plugins as root",
			socket, uid), err.Error())
	case errors.Is(err, fs.ErrNotExist):
		why = "the socket does not exist"
	case errors.Is(err, syscall.ECONNREFUSED):
		why = "nothing accepts connections on the socket (sdnd stopped or is restarting)"
	case errors.Is(err, syscall.EAGAIN), errors.As(err, &nerr) && nerr.Timeout():
		why = fmt.Sprintf("it did not accept the connection within %v (busy or hung)", dialTimeout)
	default:
		return types.NewError(permanent, fmt.Sprintf(
			"sdn: cannot connect to the sdnd agent's socket %s: %s; set \"socket\" in the network config to the agent's --cni-socket",
			socket, reason), err.Error())
	}
	code, state := types.ErrTryAgainLater, "not reachable"
	if cmd == "STATUS" {
		code, state = types.ErrPluginNotAvailable, "not available"
	}
	return types.NewError(code, fmt.Sprintf("sdn: sdnd agent %s at %s: %s; is sdnd --agent running?", state, socket, why), err.Error())
}

func (c *agentClient) Close() { c.conn.Close() }

// serversHealthService is the agent's gRPC health service name that says
// whether the servers are in reach (cnisrv.ServersHealthService; a test
// keeps the two equal).
const serversHealthService = "sdn.v1.AgentService/servers"

// status answers CNI STATUS from the agent's gRPC health (package comment,
// "STATUS"): the agent service not SERVING (not yet registered with the
// servers, or shutting down) or not answering is 50; the agent ready but
// the servers out of reach or without a leader is 51. An agent that does
// not know the servers' service name (an older sdnd) is taken as ready.
func (c *agentClient) status(ctx context.Context) error {
	h := healthpb.NewHealthClient(c.conn)
	res, err := h.Check(ctx, &healthpb.HealthCheckRequest{Service: sdnv1.AgentService_ServiceDesc.ServiceName})
	if err != nil {
		return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("sdn: STATUS: sdnd agent at %s: %s", c.socket, status.Convert(err).Message()), "")
	}
	if res.Status != healthpb.HealthCheckResponse_SERVING {
		return types.NewError(types.ErrPluginNotAvailable,
			fmt.Sprintf("sdn: sdnd agent at %s is %s (not yet registered with the servers, or shutting down)", c.socket, res.Status), "")
	}
	res, err = h.Check(ctx, &healthpb.HealthCheckRequest{Service: serversHealthService})
	switch code := status.Code(err); {
	case code == codes.NotFound || code == codes.Unimplemented:
		return nil
	case err != nil:
		return types.NewError(types.ErrLimitedConnectivity,
			fmt.Sprintf("sdn: sdnd agent at %s is up but %s; existing workloads keep their datapath, new ones cannot attach", c.socket, status.Convert(err).Message()), "")
	case res.Status != healthpb.HealthCheckResponse_SERVING:
		return types.NewError(types.ErrLimitedConnectivity,
			fmt.Sprintf("sdn: sdnd agent at %s is up but the servers are %s", c.socket, res.Status), "")
	}
	return nil
}

// cniError maps an agent error to a CNI error: unreachable or overloaded
// servers and timeouts are "try again later" (11; for STATUS "not
// available", 50), requests the agent or the servers refused are "invalid
// network config" (7), the rest (among them an exhausted address pool)
// internal (999).
func (c *agentClient) cniError(cmd string, err error) *types.Error {
	st, _ := status.FromError(err)
	msg := fmt.Sprintf("sdn: %s: %s", cmd, st.Message())
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted:
		if cmd == "STATUS" {
			return types.NewError(types.ErrPluginNotAvailable, msg, "")
		}
		return types.NewError(types.ErrTryAgainLater, msg, "")
	case codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition, codes.AlreadyExists:
		return types.NewError(types.ErrInvalidNetworkConfig, msg, "")
	}
	return types.NewError(types.ErrInternal, msg, "")
}
