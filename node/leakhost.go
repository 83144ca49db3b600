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

// World lists the bridge's workload ports, then the workload veths.
func (h leakHost) World(ctx context.Context) (leaks.World, error) {
	return listWorld(func() (map[string]int, error) { return h.inst.Ports(ctx, host.IntegrationBridge) },
		func() ([]string, error) {
			lh, err := link.Open("")
			if err != nil {
				return nil, err
			}
			defer lh.Close()
			return lh.LinkNames("sdn")
		})
}

// listWorld lists the ports first and the veths second. A CNI ADD makes
// the veth, then its port: listed in this order, a port is never seen
// without the veth an ADD in progress made before it (the other order can
// miss a veth made between the two lists and see its port alone, which
// the leak loop removes at once: it would unplug the ADD's port).
func listWorld(ports func() (map[string]int, error), veths func() ([]string, error)) (leaks.World, error) {
	p, err := ports()
	if err != nil {
		return leaks.World{}, err
	}
	v, err := veths()
	if err != nil {
		return leaks.World{}, err
	}
	return leaks.World{Veths: v, Ports: p}, nil
}

func (h leakHost) RemovePort(ctx context.Context, name string) error {
	return h.dp.UnplugWorkload(ctx, name)
}

func (h leakHost) RemoveVeth(_ context.Context, name string) error {
	return link.TeardownWorkload("", name)
}
