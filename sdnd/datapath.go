package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/sdn-dev/sdn/datapath/ovs"
	"github.com/sdn-dev/sdn/sdnd/agent"
	"github.com/sdn-dev/sdn/sdnd/cnisrv"
)

// hostDatapath is what the agent role needs of the host's datapath: the
// Realizer the agent calls with the whole desired state, and the workload
// ports the CNI service plugs.
type hostDatapath interface {
	agent.Realizer
	cnisrv.Datapath
}

// openDatapath builds this host's datapath on inst and returns it with a
// function that releases it.
func openDatapath(ctx context.Context, o *options, inst *ovs.Instance, log *slog.Logger) (hostDatapath, func(), error) {
	return nil, nil, errors.New("the host datapath (datapath/host) is not built into this sdnd yet")
}
