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
