package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// Time limits for one plugin call. ADD includes the agent's wait for the
// datapath (20 s at most), so it gets more.
const (
	addTimeout   = 60 * time.Second
	otherTimeout = 30 * time.Second
	dialTimeout  = 3 * time.Second
)

// agentClient is a connection to the agent's unix socket.
type agentClient struct {
	socket string
	conn   *grpc.ClientConn
	sdnv1.AgentServiceClient
}

// dial connects to the agent. It first makes one plain connection to the
// socket so that an absent or dead agent is reported as such, not as a
// gRPC transport error.
func dial(socket string) (*agentClient, error) {
	c, err := net.DialTimeout("unix", socket, dialTimeout)
	if err != nil {
		why := err.Error()
		if errors.Is(err, fs.ErrNotExist) {
			why = "the socket does not exist"
		} else if errors.Is(err, fs.ErrPermission) {
			why = fmt.Sprintf("permission denied (the socket is root-only; the plugin runs as uid %d)", os.Geteuid())
		}
		return nil, types.NewError(types.ErrTryAgainLater,
			fmt.Sprintf("sdn: sdnd agent not reachable at %s: %s; is sdnd --agent running?", socket, why), err.Error())
	}
	c.Close()
	conn, err := grpc.NewClient("unix:"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, types.NewError(types.ErrInternal, fmt.Sprintf("sdn: connect to sdnd agent at %s: %v", socket, err), "")
	}
	return &agentClient{socket: socket, conn: conn, AgentServiceClient: sdnv1.NewAgentServiceClient(conn)}, nil
}

func (c *agentClient) Close() { c.conn.Close() }

// health asks the agent whether it is ready (CNI STATUS).
func (c *agentClient) health(ctx context.Context) error {
	res, err := healthpb.NewHealthClient(c.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: sdnv1.AgentService_ServiceDesc.ServiceName})
	if err != nil {
		return c.cniError("STATUS", err)
	}
	if res.Status != healthpb.HealthCheckResponse_SERVING {
		return types.NewError(types.ErrPluginNotAvailable,
			fmt.Sprintf("sdn: sdnd agent at %s is %s (not yet registered with the servers, or shutting down)", c.socket, res.Status), "")
	}
	return nil
}

// cniError maps an agent error to a CNI error: unreachable or overloaded
// servers and timeouts are "try again later" (11), requests the agent or
// the servers refused are "invalid network config" (7), the rest (among
// them an exhausted address pool) internal (999).
func (c *agentClient) cniError(cmd string, err error) *types.Error {
	st, _ := status.FromError(err)
	msg := fmt.Sprintf("sdn: %s: %s", cmd, st.Message())
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted:
		return types.NewError(types.ErrTryAgainLater, msg, "")
	case codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition, codes.AlreadyExists:
		return types.NewError(types.ErrInvalidNetworkConfig, msg, "")
	}
	return types.NewError(types.ErrInternal, msg, "")
}
