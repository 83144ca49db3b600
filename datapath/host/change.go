package host

import (
	"context"
	"fmt"
	"strings"

	"github.com/sdn-dev/sdn/model"
)

// A change realize (ApplyChange) is the path of a revision from the
// watch. Most revisions change only what the flows are compiled from
// (policies, address groups, labels, named ports, isolation): then the
// host-level steps of Apply (bridges, underlay, gateway, workload ports,
// tunnel neighbours), which read OVS and the kernel through several
// processes and cost most of a realize, would find nothing to do. So when
// the host-level inputs equal those of the last full Apply, only the
// flows are compiled and reconciled, with the ports that Apply found. The
// full Apply still runs at start, at every resync (node/agent,
// ResyncInterval) and for every CNI ADD (Sync), which is what repairs a
// host changed behind sdn's back.

// hostKey renders what the host-level steps of Apply depend on: the
// host's addresses and settings, its local workloads' plumbing, the
// remote hosts and the kernel's set-up (node ports, SNAT). Two desired states with equal keys differ only in what
// the flows are compiled from.
func hostKey(w *desired) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s %s %d %d %s\n", w.subnet, w.gateway, w.gatewayMAC, w.cluster, w.mtu, w.vxlanPort, w.underlayIP)
	for _, l := range w.local {
		fmt.Fprintf(&b, "L %s %s %s %s %s\n", l.Name, l.IP, l.MAC, l.ifname, l.bw)
	}
	for _, r := range w.remote {
		fmt.Fprintf(&b, "R %s %s %s\n", r.Name, r.Subnet, r.UnderlayIP)
	}
	b.WriteString(w.hostNet.key())
	return b.String()
}

// fullApply is what the last full Apply found, for ApplyChange.
type fullApply struct {
	key   string
	ports map[string]int // host veth name -> OpenFlow port
}

// ApplyChange is Apply for a revision from the watch: when the host-level
// inputs are those of the last full Apply, it reconciles the flows alone;
// otherwise it is Apply.
func (d *Datapath) ApplyChange(ctx context.Context, m *model.Desired) (Result, error) {
	want, _, err := desiredState(m, d.cfg.NodeName)
	if err != nil {
		return d.Apply(ctx, m)
	}
	d.mu.Lock()
	last := d.full
	if last == nil || last.key != hostKey(want) {
		d.mu.Unlock()
		return d.Apply(ctx, m)
	}
	defer d.mu.Unlock()
	res := Result{FlowsOnly: true}
	want.userspace = d.cfg.DatapathType == "netdev"
	fh := want.flowHost(last.ports)
	res.Workloads = len(fh.Local)
	if res.Flows, err = d.program(ctx, fh, true); err != nil {
		return res, fmt.Errorf("realize node %q: %w", d.cfg.NodeName, err)
	}
	return res, nil
}

// RealizeChange is Realize through ApplyChange (node/agent calls it for
// revisions from the watch).
func (d *Datapath) RealizeChange(ctx context.Context, m *model.Desired) error {
	res, err := d.ApplyChange(ctx, m)
	if err != nil {
		return err
	}
	d.logResult(m.Revision, res)
	return nil
}
