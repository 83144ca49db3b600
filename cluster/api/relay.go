package api

import (
	"context"

	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Relay takes, on the leader, a batch of what a follower heard from the
// agents watching it: each signal counts as if the agent had called the
// leader itself (Heartbeat, ReportRealized), for hosts the state knows.
// Unknown hosts are listed back; the follower tells their agents at their
// next heartbeat.
func (s *Server) Relay(ctx context.Context, req *sdnv1.RelayRequest) (*sdnv1.RelayResponse, error) {
	var unknown []string
	err := s.cluster.FSM().View(func(tx *state.Tx) error {
		for _, sig := range req.Signals {
			if _, ok := tx.Node(sig.Node); !ok {
				unknown = append(unknown, sig.Node)
			}
		}
		return nil
	})
	if err != nil {
		return nil, toStatus(err)
	}
	now := s.now()
	for _, sig := range req.Signals {
		if sig.Node == "" {
			continue
		}
		if sig.Alive {
			s.live.Heartbeat(sig.Node)
		}
		if r := sig.Report; r != nil {
			s.realized.Report(sig.Node, r.Revision, r.Error, now)
		}
		if r := sig.Learned; r != nil {
			s.realized.Learn(sig.Node, r.Revision, r.Error, now)
		}
	}
	return &sdnv1.RelayResponse{Unknown: unknown}, nil
}
