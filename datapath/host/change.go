package host

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"strings"
	"time"

	"github.com/sdn-dev/sdn/model"
)

// A change realize (ApplyChange) is the path of a revision from the
// watch. Most revisions change only what the flows are compiled from
// (policies, address groups, labels, named ports, isolation), or add and
// remove local workloads (CNI ADD and DEL). The host-level steps of Apply
// (bridges, underlay, gateway, every workload port, tunnel neighbours),
// which read OVS and the kernel through several processes and cost most of
// a realize, would find nothing to do for them. So when the host-level
// inputs other than the local workloads equal those of the last full
// Apply, only the flows are compiled and reconciled (against what the last
// reconcile left, ovs.Desired.Trusted), with the ports the last realize
// found plus those of new local workloads: the port CNI ADD plugged
// (PlugWorkload records its OpenFlow port, so no OVS read is needed). The
// kernel's set-up (hostnet) is applied again only when its inputs changed
// (a new workload's address to masquerade). A new workload whose port no
// one plugged, or any other host-level change, takes the full Apply. The
// full Apply still runs at start and at every resync (node/agent,
// ResyncInterval), which is what repairs a host changed behind sdn's back.

// baseKey renders what the host-level steps of Apply depend on, except the
// local workloads and the kernel's set-up (localKeys, hostNet.key): the
// host's addresses and settings and the remote hosts. Two desired states
// with equal keys differ only in local workloads, the kernel's inputs, and
// what the flows are compiled from.
func baseKey(w *desired) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s %s %d %d %s\n", w.subnet, w.gateway, w.gatewayMAC, w.cluster, w.mtu, w.vxlanPort, w.underlayIP)
	for _, r := range w.remote {
		fmt.Fprintf(&b, "R %s %s %s\n", r.Name, r.Subnet, r.UnderlayIP)
	}
	return b.String()
}

// localKeys renders each local workload's plumbing by host veth name.
func localKeys(w *desired) map[string]string {
	m := make(map[string]string, len(w.local))
	for _, l := range w.local {
		m[l.ifname] = fmt.Sprintf("%s %s %s %s", l.Name, l.IP, l.MAC, l.bw)
	}
	return m
}

// fullApply is what the last realize found, for ApplyChange.
type fullApply struct {
	base    string
	local   map[string]string // localKeys
	hostNet string            // hostNetInputs.key
	ports   map[string]int    // host veth name -> OpenFlow port
	// underlay is the tunnel endpoint the full Apply found (for hostnet).
	underlay netip.Addr
}

// newFullApply records what a realize of want found.
func newFullApply(want *desired, ports map[string]int, underlay netip.Addr) *fullApply {
	return &fullApply{base: baseKey(want), local: localKeys(want), hostNet: want.hostNet.key(), ports: ports, underlay: underlay}
}

// ApplyChange is Apply for a revision from the watch: when the host-level
// inputs other than local workloads are those of the last full Apply, and
// every new local workload's port is known, it reconciles the flows alone
// (and the kernel's set-up if its inputs changed); otherwise it is Apply.
func (d *Datapath) ApplyChange(ctx context.Context, m *model.Desired) (Result, error) {
	want, _, err := desiredState(m, d.cfg.NodeName)
	if err != nil {
		return d.Apply(ctx, m)
	}
	d.waitPlugs(ctx, localIfnames(want))
	d.mu.Lock()
	last := d.full
	var ports map[string]int
	var added []string
	if last != nil && last.base == baseKey(want) {
		ports, added = d.changedPorts(last, want)
	}
	if ports == nil {
		d.mu.Unlock()
		return d.Apply(ctx, m)
	}
	defer d.mu.Unlock()
	d.full = nil // known again only if this realize succeeds
	res := Result{FlowsOnly: true, PortsAdded: added}
	want.userspace = d.cfg.DatapathType == "netdev"
	fail := func(err error) (Result, error) {
		return res, fmt.Errorf("realize node %q: %w", d.cfg.NodeName, err)
	}
	fh := want.flowHost(ports)
	res.Workloads = len(fh.Local)
	t0 := time.Now()
	if res.Flows, err = d.program(ctx, fh, true); err != nil {
		return fail(err)
	}
	res.Took = append(res.Took, "flows "+time.Since(t0).Round(time.Millisecond).String())
	if want.hostNet.key() != last.hostNet {
		t0 = time.Now()
		if err := d.ensureHostNet(ctx, want, last.underlay, &res); err != nil {
			return fail(err)
		}
		res.Took = append(res.Took, "hostnet "+time.Since(t0).Round(time.Millisecond).String())
	}
	d.full = newFullApply(want, ports, last.underlay)
	return res, nil
}

// changedPorts returns the OpenFlow ports of want's local workloads: those
// the last realize knew, and for new ones the port PlugWorkload plugged
// (named in added). It returns nil when a new workload's port is not known:
// the full Apply looks for its veth and plugs it.
func (d *Datapath) changedPorts(last *fullApply, want *desired) (ports map[string]int, added []string) {
	ports = maps.Clone(last.ports)
	keys := localKeys(want)
	for ifname := range last.local {
		if _, ok := keys[ifname]; !ok {
			delete(ports, ifname) // DEL unplugged it
		}
	}
	limited := map[string]bool{}
	for _, l := range want.local {
		limited[l.ifname] = l.bw != (bandwidth{})
	}
	d.plugMu.Lock()
	defer d.plugMu.Unlock()
	for ifname, key := range keys {
		if old, ok := last.local[ifname]; ok && old == key && ports[ifname] > 0 {
			continue
		}
		if limited[ifname] {
			return nil, nil // its meter and QoS are set by the full Apply
		}
		p, ok := d.plugged[ifname]
		if !ok || p.ofport <= 0 {
			if _, known := last.local[ifname]; known && ports[ifname] <= 0 {
				continue // no port at the last full Apply either (no veth yet)
			}
			return nil, nil
		}
		ports[ifname] = p.ofport
		delete(d.plugged, ifname) // desired now: no grace needed
		added = append(added, ifname)
	}
	return ports, added
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
