package cnisrv

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// ServersHealthService is the service name of the agent's gRPC health that
// answers whether the servers are in reach: SERVING when the servers'
// own health says they know a raft leader, NOT_SERVING when they do not
// or do not answer within serversProbeTimeout. The CNI plugin's STATUS
// asks it after the agent's readiness (sdnv1.AgentService's status).
const ServersHealthService = "sdn.v1.AgentService/servers"

// serversProbeTimeout bounds one look at the servers' health.
const serversProbeTimeout = 3 * time.Second

// agentHealth is the agent's gRPC health: the standard server's statuses,
// and ServersHealthService asked of the servers when it is checked.
type agentHealth struct {
	*health.Server
	servers healthpb.HealthClient
}

// Check answers ServersHealthService by asking the servers now; every
// other name from the statuses set on the standard server.
func (h *agentHealth) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if req.GetService() != ServersHealthService {
		return h.Server.Check(ctx, req)
	}
	if h.servers == nil {
		return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, serversProbeTimeout)
	defer cancel()
	res, err := h.servers.Check(ctx, &healthpb.HealthCheckRequest{})
	switch {
	case err == nil && res.Status == healthpb.HealthCheckResponse_SERVING:
		return res, nil
	case err == nil:
		return nil, status.Errorf(codes.Unavailable, "the servers answer %s: they know no raft leader (an election, or too few servers up)", res.Status)
	}
	return nil, status.Errorf(codes.Unavailable, "the servers are out of reach: %s", status.Convert(err).Message())
}
