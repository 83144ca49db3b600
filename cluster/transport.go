package cluster

import (
	"log/slog"
	"time"

	"github.com/hashicorp/raft"
)

// NewNetworkTransport returns raft's network transport over a stream layer
// (sdnd passes its transport.Mux's), logging into log.
func NewNetworkTransport(stream raft.StreamLayer, log *slog.Logger) raft.Transport {
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  hclogFor(log, "transport"),
	})
}

// withoutPipeline hides t's AppendEntries pipeline from raft, which then
// replicates one AppendEntries at a time per follower. hashicorp/raft
// v1.7's pipelined replication deadlocks when a follower rejects an append
// while the leader's send loop has more to send (pipelineDecode returns,
// its send loop may pick one more send over the decoder's exit, and both
// ends of the pipeline's unbuffered channels wait for ever): the follower
// gets no entry again until the leader restarts, and the leader's Shutdown
// never returns (TestReplicationSurvivesRejectedAppends). The pipeline
// gains little here: with the transport's default of 2 RPCs in flight it
// overlaps one request, and the proposer keeps one entry in flight anyway.
func withoutPipeline(t raft.Transport) raft.Transport {
	if _, ok := t.(raft.WithPreVote); ok {
		return unpipelinedPreVote{unpipelined{t}}
	}
	return unpipelined{t}
}

type unpipelined struct{ raft.Transport }

func (unpipelined) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

// Close closes the transport (raft closes it when it shuts down).
func (u unpipelined) Close() error { return closeTransport(u.Transport) }

type unpipelinedPreVote struct{ unpipelined }

func (u unpipelinedPreVote) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return u.Transport.(raft.WithPreVote).RequestPreVote(id, target, args, resp)
}
