package host

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sdn-dev/sdn/datapath/link"
)

// plugGrace is how long a port PlugWorkload added is kept although no
// desired state names its workload yet: CNI ADD plugs the veth before the
// workload reaches this host's desired state through the watch.
const plugGrace = 5 * time.Minute

// syncWorkloadPorts plugs into br-int the host veths of local workloads
// that exist, removes workload ports no longer desired, and returns the
// OpenFlow port of every workload port.
func (d *Datapath) syncWorkloadPorts(ctx context.Context, st *ovsState, h *link.Handle, want *desired, res *Result) (map[string]int, error) {
	veths, err := h.LinkNames("sdn")
	if err != nil {
		return nil, err
	}
	ports := st.ports(IntegrationBridge)
	desiredPorts := map[string]bool{}
	for _, w := range want.local {
		if !slices.Contains(veths, w.ifname) {
			continue // not created yet (or gone): no port, no flows
		}
		if d.plugging(w.ifname) {
			continue // PlugWorkload is adding it: its flows come with the next realize
		}
		desiredPorts[w.ifname] = true
		changed, err := d.quietHostEnd(h, w.ifname)
		if err != nil {
			return nil, err
		}
		res.Changes = append(res.Changes, changed...)
		d.plugMu.Lock()
		delete(d.plugged, w.ifname) // desired now: no grace needed
		d.plugMu.Unlock()
		n, ok := ports[w.ifname]
		if ok && n > 0 {
			continue
		}
		if ok {
			// In OVS but not open (the veth was recreated under it, say):
			// re-adding is the only way to make OVS open it again.
			if err := d.ovs.DeletePort(ctx, IntegrationBridge, w.ifname); err != nil {
				return nil, err
			}
		}
		if n, err = d.ovs.EnsurePort(ctx, IntegrationBridge, w.ifname, 0); err != nil {
			return nil, fmt.Errorf("plug workload %s: %w", w.Name, err)
		}
		ports[w.ifname] = n
		res.PortsAdded = append(res.PortsAdded, w.ifname)
	}
	var stale []string
	for name := range ports {
		if link.IsHostVethName(name) && !desiredPorts[name] && !d.recentlyPlugged(name) {
			stale = append(stale, name)
		}
	}
	slices.Sort(stale)
	for _, name := range stale {
		if err := d.ovs.DeletePort(ctx, IntegrationBridge, name); err != nil {
			return nil, err
		}
		delete(ports, name)
		res.PortsDeleted = append(res.PortsDeleted, name)
	}
	return ports, nil
}

// plugRecord is a port PlugWorkload added or is adding: when, and its
// OpenFlow port (which a change realize uses without reading OVS,
// change.go). While it is being added, done is set: it is closed when
// PlugWorkload has finished (ofport is then set, or the record is gone).
type plugRecord struct {
	at     time.Time
	ofport int
	done   *plugDone
}

// plugDone is closed once, by the PlugWorkload that ends the plug.
type plugDone struct {
	ch   chan struct{}
	once sync.Once
}

func (p *plugDone) close() { p.once.Do(func() { close(p.ch) }) }

// plugTimeout bounds how long a port counts as being plugged
// (PlugWorkload's OVSDB transaction and its wait for the OpenFlow port).
const plugTimeout = 30 * time.Second

// plugging reports whether PlugWorkload is adding name's port now.
func (d *Datapath) plugging(name string) bool {
	d.plugMu.Lock()
	defer d.plugMu.Unlock()
	p, ok := d.plugged[name]
	return ok && p.ofport <= 0 && time.Since(p.at) < plugTimeout
}

func (d *Datapath) recentlyPlugged(name string) bool {
	d.plugMu.Lock()
	defer d.plugMu.Unlock()
	p, ok := d.plugged[name]
	if ok && time.Since(p.at) > plugGrace {
		delete(d.plugged, name)
		return false
	}
	return ok
}

// BeginPlug records that hostIfname's port is about to be plugged by
// PlugWorkload, which the caller calls next (it may run at the same time
// as the caller publishes the workload: CNI ADD attaches the workload on
// the servers while its port is being added). From now until
// PlugWorkload returns, a realize of a desired state that names the
// workload waits for the port (waitPlugs) instead of leaving it out.
func (d *Datapath) BeginPlug(hostIfname string) { d.beginPlug(hostIfname) }

// beginPlug is BeginPlug, returning the record's done.
func (d *Datapath) beginPlug(hostIfname string) *plugDone {
	d.plugMu.Lock()
	defer d.plugMu.Unlock()
	if p, ok := d.plugged[hostIfname]; ok && p.ofport <= 0 && p.done != nil {
		return p.done // announced by BeginPlug already
	}
	done := &plugDone{ch: make(chan struct{})}
	d.plugged[hostIfname] = plugRecord{at: time.Now(), done: done}
	return done
}

// endPlug records how the plug of done ended (ofport 0: failed, forget
// the port) unless the record is another one by now (UnplugWorkload
// dropped it), and wakes the realizes waiting for it.
func (d *Datapath) endPlug(hostIfname string, done *plugDone, ofport int) {
	d.plugMu.Lock()
	defer d.plugMu.Unlock()
	defer done.close()
	if d.plugged[hostIfname].done != done {
		return
	}
	if ofport > 0 {
		d.plugged[hostIfname] = plugRecord{at: time.Now(), ofport: ofport}
	} else {
		delete(d.plugged, hostIfname)
	}
}

// localIfnames are the host veth names of want's local workloads.
func localIfnames(want *desired) []string {
	names := make([]string, 0, len(want.local))
	for _, l := range want.local {
		names = append(names, l.ifname)
	}
	return names
}

// waitPlugs waits until no port of names is being plugged (each for at
// most plugTimeout from its start), so that a realize that names a
// workload whose port CNI ADD is adding includes that port.
func (d *Datapath) waitPlugs(ctx context.Context, names []string) {
	for _, name := range names {
		d.plugMu.Lock()
		p, ok := d.plugged[name]
		d.plugMu.Unlock()
		if !ok || p.ofport > 0 || p.done == nil {
			continue
		}
		left := plugTimeout - time.Since(p.at)
		if left <= 0 {
			continue
		}
		t := time.NewTimer(left)
		select {
		case <-p.done.ch:
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// PlugWorkload adds a workload's host veth (named by HostIfname, already
// created by link.SetupWorkload) to br-int and returns its OpenFlow port.
// It is idempotent. CNI ADD calls it before the workload's flows exist;
// until a desired state names the workload its packets are dropped, and
// Realize leaves the port alone for a grace period.
func (d *Datapath) PlugWorkload(ctx context.Context, hostIfname string) (int, error) {
	if !link.IsHostVethName(hostIfname) {
		return 0, fmt.Errorf("plug workload: %q is not a workload veth name (want \"sdn\" and 11 hex digits, from link.HostVethName)", hostIfname)
	}
	// It does not wait for a realize in progress (d.mu): a realize that
	// meets the port before OVS gave it an OpenFlow number would take it
	// for broken and re-add it, so the port is recorded as being plugged
	// first (BeginPlug), and realizes wait for such a port (waitPlugs) or,
	// when their desired state does not name it, leave it alone.
	done := d.beginPlug(hostIfname)
	n, err := d.plug(ctx, hostIfname)
	d.endPlug(hostIfname, done, n)
	return n, err
}

// plug is PlugWorkload's work: the host end quieted, the port added.
func (d *Datapath) plug(ctx context.Context, hostIfname string) (int, error) {
	h, err := link.Open(d.hostNS)
	if err != nil {
		return 0, fmt.Errorf("plug workload: %w", err)
	}
	defer h.Close()
	if _, err := d.quietHostEnd(h, hostIfname); err != nil {
		return 0, fmt.Errorf("plug workload: %w", err)
	}
	n, err := d.ovs.AddPort(ctx, IntegrationBridge, hostIfname)
	if err != nil {
		return 0, fmt.Errorf("plug workload: %w", err)
	}
	return n, nil
}

// UnplugWorkload removes a workload's host veth from br-int; a port that is
// not there is not an error. Its flows go with the next Realize.
func (d *Datapath) UnplugWorkload(ctx context.Context, hostIfname string) error {
	if !link.IsHostVethName(hostIfname) {
		return fmt.Errorf("unplug workload: %q is not a workload veth name", hostIfname)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.plugMu.Lock()
	delete(d.plugged, hostIfname) // a plug in progress still wakes its waiters when it ends
	d.plugMu.Unlock()
	if err := d.ovs.DeletePort(ctx, IntegrationBridge, hostIfname); err != nil {
		return fmt.Errorf("unplug workload: %w", err)
	}
	return nil
}

// quietHostEnd keeps the host's kernel out of a workload's traffic. The
// userspace datapath reads a port through a packet socket, which leaves
// the kernel its own copy of every frame: it answered the workload's ARP
// for the gateway with the veth's MAC (before the flows could) and then
// took the workload's packets to the gateway twice. arp_ignore=8 stops the
// answers; without them no unicast frame carries the veth's MAC, and the
// kernel drops frames for other MACs. IPv6 is switched off on the host end,
// which is a switch port, not an interface of the host. The kernel datapath
// takes frames from the kernel before it sees them: nothing to do there.
func (d *Datapath) quietHostEnd(h *link.Handle, ifname string) ([]string, error) {
	if d.cfg.DatapathType != "netdev" {
		return nil, nil
	}
	var changes []string
	for _, kv := range [][2]string{
		{"ipv4/conf/" + ifname + "/arp_ignore", "8"},
		{"ipv6/conf/" + ifname + "/disable_ipv6", "1"},
	} {
		changed, err := h.SetNetSysctl(kv[0], kv[1])
		if err != nil {
			return changes, err
		}
		if changed {
			changes = append(changes, fmt.Sprintf("net.%s = %s", dotted(kv[0]), kv[1]))
		}
	}
	return changes, nil
}
