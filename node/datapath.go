package node

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/sdn-dev/sdn/datapath/host"
	"github.com/sdn-dev/sdn/datapath/ovs"
	"github.com/sdn-dev/sdn/node/agent"
	"github.com/sdn-dev/sdn/node/cnisrv"
)

// hostDatapath is what the agent role needs of the host's datapath: the
// Realizer the agent calls with the whole desired state, and the workload
// ports the CNI service plugs.
type hostDatapath interface {
	agent.Realizer
	cnisrv.Datapath
	// Close stops the datapath's background work (the tunnel neighbour
	// refresh); the host keeps its flows.
	Close() error
}

var _ hostDatapath = (*host.Datapath)(nil)

// openDatapath bumps the flow generation (persisted in the data dir) and
// builds this host's datapath on inst, in this process's namespace (the one
// OVS runs in).
func openDatapath(ctx context.Context, o Config, inst *ovs.Instance, log *slog.Logger) (hostDatapath, error) {
	gen, err := host.NextGeneration(filepath.Join(o.DataDir, "agent", "generation"))
	if err != nil {
		return nil, err
	}
	dp, err := host.New(ctx, host.Config{
		OVS: inst, DatapathType: o.Datapath, NodeName: o.NodeName, UnderlayIface: o.UnderlayIface,
		Generation: gen, Logger: log.With("component", "datapath"),
	})
	if err != nil {
		return nil, fmt.Errorf("open the host datapath: %w", err)
	}
	log.Info("datapath open", "generation", gen, "datapath", o.Datapath, "bridge", host.IntegrationBridge)
	return dp, nil
}
