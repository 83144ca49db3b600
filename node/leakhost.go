package node

import (
	"context"

	"github.com/sdn-dev/sdn/datapath/host"
	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/datapath/ovs"
	"github.com/sdn-dev/sdn/node/leaks"
)

// leakHost is the host as the leak loop (node/leaks) sees it: workload
// veths in this process's namespace (where the CNI service makes their host
// ends) and the integration bridge's workload ports.
type leakHost struct {
	inst *ovs.Instance
	dp   hostDatapath
}

func (h leakHost) World(ctx context.Context) (leaks.World, error) {
	lh, err := link.Open("")
	if err != nil {
		return leaks.World{}, err
	}
	defer lh.Close()
	veths, err := lh.LinkNames("sdn")
	if err != nil {
		return leaks.World{}, err
	}
	ports, err := h.inst.Ports(ctx, host.IntegrationBridge)
	if err != nil {
		return leaks.World{}, err
	}
	return leaks.World{Veths: veths, Ports: ports}, nil
}

func (h leakHost) RemovePort(ctx context.Context, name string) error {
	return h.dp.UnplugWorkload(ctx, name)
}

func (h leakHost) RemoveVeth(_ context.Context, name string) error {
	return link.TeardownWorkload("", name)
}
