package suites

import (
	"context"
	"path/filepath"

	"github.com/sdn-dev/sdn/bench"
	"github.com/sdn-dev/sdn/bench/cnidrive"
	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/integration/lab"
)

// bridgePluginDir is where Debian's containernetworking-plugins installs
// its plugins.
const bridgePluginDir = "/usr/lib/cni"

// cniDriver is one variant of the cniadd suite: a cnidrive.Driver (the
// plugin run as a runtime runs it) on the lab's host1, and the containers
// attached as the host's load.
type cniDriver struct {
	name, prefix string // variant name; container name prefix
	drv          *cnidrive.Driver
	hostNS       string   // the bridge's host namespace (a name), deleted by close
	load         []string // containers attached as the host's load
}

// newSDNDriver drives bin/sdn against the lab's host1.
func newSDNDriver(l *lab.Lab, bin string) (*cniDriver, error) {
	d, err := cnidrive.SDN(l.Name+"-host1-", filepath.Join(bin, "sdn"), cniNetwork, l.CNISocket(1))
	if err != nil {
		return nil, err
	}
	return &cniDriver{name: "sdn", prefix: "s", drv: d}, nil
}

// newBridgeDriver drives containernetworking-plugins' bridge with
// host-local IPAM (cnidrive.Bridge), its host side in a namespace of its
// own (so the bridge and its veths stay out of the machine's).
func newBridgeDriver(l *lab.Lab, dir string) (*cniDriver, error) {
	hostNS := l.Name + "-host1-cnibr"
	if _, err := link.NewNS(hostNS); err != nil {
		return nil, err
	}
	// The containers' namespaces are workload namespaces of the lab's
	// host1, so that the lab's Down removes what a crash left.
	d := cnidrive.Bridge(l.Name+"-host1-", bridgePluginDir, link.NSPath(hostNS), filepath.Join(dir, "host-local"))
	return &cniDriver{name: "bridge", prefix: "b", drv: d, hostNS: hostNS}, nil
}

func (d *cniDriver) addAll(ctx context.Context, ids []string, conc int) (cnidrive.Result, error) {
	return d.drv.AddAll(ctx, ids, conc)
}

func (d *cniDriver) delAll(ctx context.Context, ids []string, conc int) error {
	return d.drv.DelAll(ctx, ids, conc)
}

// close deletes the load's namespaces and the bridge's host namespace
// (the lab's Down removes the rest).
func (d *cniDriver) close(env *bench.Env) {
	for _, id := range d.load {
		if err := link.DeleteNS(d.drv.NS(id)); err != nil {
			env.Logf("teardown: %v", err)
		}
	}
	if d.hostNS != "" {
		if err := link.DeleteNS(d.hostNS); err != nil {
			env.Logf("teardown: %v", err)
		}
	}
}
