package host

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sdn-dev/sdn/datapath/link"
)

// Userspace tunneling resolves the MAC of a tunnel packet's next hop from
// OVS's own tunnel neighbour cache (`ovs-appctl tnl/arp/show`). A packet
// to a next hop missing there is dropped while OVS sends an ARP request, and
// an entry not used for `tnl/neigh/aging` seconds (900 by default in OVS
// 3.1) is forgotten: `tnl/arp/set` makes the same entries as snooping,
// they age alike (OVS 3.1 has no static entries). Hence Realize fills the
// cache (ensureTunnelNeighbors) and a refresher keeps it filled
// (refreshTunnelNeighbors).

// neighborWait bounds how long Realize waits for the kernel to resolve the
// tunnel next hops it had no entry for. On a LAN the answer takes well
// under a millisecond; a host that has not answered by then is left to the
// kernel, which keeps asking.
const neighborWait = time.Second

// defaultNeighborAging is OVS 3.1's default tnl/neigh/aging, assumed when
// it cannot be read.
const defaultNeighborAging = 900 * time.Second

// ensureTunnelNeighbors makes sure, with the userspace datapath, that OVS's
// tunnel neighbour cache holds the MAC of the next hop towards every remote
// host before flows send traffic there, so that the first packet to a host
// not talked to before is not dropped.
//
// The kernel does the resolving. Every next hop (the remote's underlay
// address, or the gateway the kernel routes it through) gets a "managed"
// neighbour entry on br-phy (link.KeepNeighbor): the kernel ARPs for it
// now, through br-phy, and from then on probes it whenever it goes stale
// (every half minute or so), retrying while it fails. OVS snoops the
// replies on br-phy, which fills and refreshes its cache; Realize also
// copies each resolved MAC that OVS lacks into it (tnl/arp/set). Managed
// entries on br-phy that are no next hop any more are deleted. Realize
// waits (at most neighborWait) only for next hops the kernel had no entry
// for; one that stays unresolved is logged and left to the kernel.
func (d *Datapath) ensureTunnelNeighbors(ctx context.Context, h *link.Handle, want *desired, res *Result) error {
	hops := map[netip.Addr][]string{} // next hop -> the remote nodes behind it
	for _, r := range want.remote {
		dev, gw, err := h.RouteTo(r.UnderlayIP)
		if err == nil && dev != UnderlayBridge {
			err = fmt.Errorf("the route goes through %q", dev)
		}
		if err != nil {
			d.log.Warn("tunnel packets to this node cannot leave through the underlay bridge; fix the host's route to its underlay address",
				"node", r.Name, "underlay_ip", r.UnderlayIP, "bridge", UnderlayBridge, "err", err)
			continue
		}
		hop := r.UnderlayIP
		if gw.IsValid() {
			hop = gw
		}
		hops[hop] = append(hops[hop], r.Name)
	}
	d.hops = sortedAddrs(hops)

	kernel, err := d.neighbors(h)
	if err != nil {
		return err
	}
	for _, ip := range sortedAddrs(kernel) {
		if _, ok := hops[ip]; !ok && kernel[ip].Managed {
			if err := h.DeleteNeighbor(UnderlayBridge, ip); err != nil {
				return err
			}
			res.Changes = append(res.Changes, fmt.Sprintf("%s: neighbour %s no longer kept resolved (no tunnel goes there)", UnderlayBridge, ip))
		}
	}
	var kept, asked []netip.Addr // asked: the kernel had no entry; wait for these
	for _, ip := range d.hops {
		n, ok := kernel[ip]
		if ok && n.Managed && n.Resolved() {
			continue
		}
		// Missing, not managed yet, or unresolved: the kernel retries a
		// managed entry by itself, but asking again costs one message and
		// covers kernels without managed entries.
		if err := h.KeepNeighbor(UnderlayBridge, ip); err != nil {
			return err
		}
		kept = append(kept, ip)
		if !ok || !n.Managed && d.managedNeighbors {
			res.Changes = append(res.Changes, fmt.Sprintf("%s: keep neighbour %s resolved (%s)", UnderlayBridge, ip, strings.Join(hops[ip], ", ")))
		}
		if !ok {
			asked = append(asked, ip)
		}
	}
	if len(kept) > 0 {
		deadline := time.Now().Add(neighborWait)
		for {
			if kernel, err = d.neighbors(h); err != nil {
				return err
			}
			asked = slices.DeleteFunc(asked, func(ip netip.Addr) bool { return kernel[ip].Resolved() })
			if len(asked) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		d.checkManaged(kernel, kept)
	}

	set, unresolved, err := d.syncTunnelNeighbors(ctx, d.hops, kernel, false)
	for _, s := range set {
		res.Changes = append(res.Changes, "tunnel neighbour "+s)
	}
	if len(unresolved) > 0 {
		var desc []string
		for _, ip := range unresolved {
			desc = append(desc, fmt.Sprintf("%s (%s; kernel: %s)", ip, strings.Join(hops[ip], ", "), kernel[ip].StateString()))
		}
		d.log.Warn("tunnel next hops do not answer ARP yet; OVS will drop the first packet to each until they do (the kernel keeps asking)",
			"bridge", UnderlayBridge, "next_hops", strings.Join(desc, "; "))
	}
	return err
}

// syncTunnelNeighbors puts into OVS's cache the MAC of every next hop in
// hops: the kernel's if it is reachable (just confirmed) or OVS has none,
// else the one OVS holds. Without refresh it writes only entries OVS lacks
// or holds with another MAC; with refresh it writes them all, which
// restarts their aging. It returns what it wrote ("IP on BRIDGE is MAC
// (was …)") and the next hops nobody knows a MAC for.
func (d *Datapath) syncTunnelNeighbors(ctx context.Context, hops []netip.Addr, kernel map[netip.Addr]link.Neighbor, refresh bool) (set []string, unresolved []netip.Addr, err error) {
	cache, err := d.tunnelNeighbors(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, ip := range hops {
		n := kernel[ip]
		c, inOVS := cache[ip]
		inOVS = inOVS && !c.stale
		var mac net.HardwareAddr
		switch {
		case n.Confirmed(), n.Resolved() && !inOVS:
			mac = n.MAC
		case inOVS:
			mac = c.mac // a stale kernel entry does not overrule OVS
		default:
			unresolved = append(unresolved, ip)
			continue
		}
		if inOVS && bytes.Equal(mac, c.mac) && !refresh {
			continue
		}
		if _, err := d.ovs.Appctl(ctx, "ovs-vswitchd", "tnl/arp/set", UnderlayBridge, ip.String(), mac.String()); err != nil {
			return set, unresolved, fmt.Errorf("tell OVS the MAC of tunnel next hop %s: %w", ip, err)
		}
		was := "unknown"
		if inOVS {
			was = c.mac.String()
		}
		set = append(set, fmt.Sprintf("%s on %s is %s (was %s)", ip, UnderlayBridge, mac, was))
	}
	return set, unresolved, nil
}

// neighbors reads the kernel's neighbour table of br-phy.
func (d *Datapath) neighbors(h *link.Handle) (map[netip.Addr]link.Neighbor, error) {
	ns, err := h.Neighbors(UnderlayBridge)
	if err != nil {
		return nil, err
	}
	m := make(map[netip.Addr]link.Neighbor, len(ns))
	for _, n := range ns {
		m[n.IP] = n
	}
	return m, nil
}

// checkManaged notices a kernel that ignores the managed flag (Linux
// before 5.16): its entries are resolved when asked and then age like any
// other. Say so once, and stop reporting the flag as missing at every
// Realize; the refresher asks such a kernel again at each pass.
func (d *Datapath) checkManaged(kernel map[netip.Addr]link.Neighbor, kept []netip.Addr) {
	if !d.managedNeighbors {
		return
	}
	for _, ip := range kept {
		if n, ok := kernel[ip]; ok && !n.Managed {
			d.managedNeighbors = false
			d.log.Warn("the kernel does not keep managed neighbour entries (Linux 5.16 and later do); the tunnel next hops are resolved at each Realize and refresh instead",
				"bridge", UnderlayBridge, "neighbour", ip)
			return
		}
	}
}

// refreshTunnelNeighbors rewrites every next hop's entry in OVS's cache,
// which restarts its aging, so that no entry expires however long a remote
// host stays idle. The kernel's managed probes, snooped by OVS, refresh
// most entries by themselves, but not those of hosts that this host's own
// traffic keeps confirmed: the kernel does not probe a neighbour that TCP
// acknowledgements keep reachable (measured: with the host talking TCP to a
// peer every second, OVS's entry for the peer expired at its aging without
// a single ARP on the wire). Next hops the kernel has not resolved (or
// keeps unmanaged, on old kernels) are asked about again; OVS snoops the
// answers. The kernel part runs under mu, between Realizes; OVS is
// written after (one ovs-appctl run per next hop).
func (d *Datapath) refreshTunnelNeighbors(ctx context.Context) {
	hops, kernel, err := func() ([]netip.Addr, map[netip.Addr]link.Neighbor, error) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if len(d.hops) == 0 {
			return nil, nil, nil
		}
		h, err := link.Open(d.hostNS)
		if err != nil {
			return nil, nil, err
		}
		defer h.Close()
		kernel, err := d.neighbors(h)
		if err != nil {
			return nil, nil, err
		}
		for _, ip := range d.hops {
			if n, ok := kernel[ip]; !ok || !n.Managed || !n.Resolved() {
				if err := h.KeepNeighbor(UnderlayBridge, ip); err != nil {
					return nil, nil, err
				}
			}
		}
		return slices.Clone(d.hops), kernel, nil
	}()
	if err == nil && len(hops) > 0 {
		var set []string
		var unresolved []netip.Addr
		set, unresolved, err = d.syncTunnelNeighbors(ctx, hops, kernel, true)
		d.log.Debug("refreshed OVS's tunnel neighbour cache", "bridge", UnderlayBridge, "refreshed", len(set), "unresolved", unresolved)
	}
	if err != nil && ctx.Err() == nil {
		d.log.Warn("refresh OVS's tunnel neighbour cache; trying again at the next pass", "err", err)
	}
}

// neighborRefreshPeriod is a third of OVS's tnl/neigh/aging, so that an
// entry is refreshed twice before it could expire even if a pass fails.
func (d *Datapath) neighborRefreshPeriod(ctx context.Context) time.Duration {
	aging := defaultNeighborAging
	if out, err := d.ovs.Appctl(ctx, "ovs-vswitchd", "tnl/neigh/aging"); err == nil {
		if s, err := strconv.Atoi(strings.TrimSpace(out)); err == nil && s > 0 {
			aging = time.Duration(s) * time.Second
		}
	}
	return aging / 3
}

// refresher runs a periodic task in the background until stopped.
type refresher struct {
	mu     sync.Mutex
	cancel context.CancelFunc // nil until started
	done   chan struct{}
	closed bool
}

// start runs pass in a goroutine, again and again, each time after what
// period returns (at least 250 ms), unless it runs already or was stopped.
// Each call gets at most a minute.
func (r *refresher) start(period func(context.Context) time.Duration, pass func(context.Context)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil || r.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		call := func(f func(context.Context)) {
			cctx, ccancel := context.WithTimeout(ctx, time.Minute)
			defer ccancel()
			f(cctx)
		}
		for {
			var wait time.Duration
			call(func(ctx context.Context) { wait = period(ctx) })
			t := time.NewTimer(max(wait, 250*time.Millisecond))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			call(pass)
		}
	}()
}

// stop ends the goroutine and waits for it; start does nothing afterwards.
func (r *refresher) stop() {
	r.mu.Lock()
	r.closed = true
	cancel, done := r.cancel, r.done
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// ovsNeighbor is an entry of OVS's tunnel neighbour cache.
type ovsNeighbor struct {
	mac   net.HardwareAddr
	stale bool // expired, not yet removed: OVS does not use it
}

// tunnelNeighbors reads OVS's tunnel neighbour cache for br-phy.
func (d *Datapath) tunnelNeighbors(ctx context.Context) (map[netip.Addr]ovsNeighbor, error) {
	out, err := d.ovs.Appctl(ctx, "ovs-vswitchd", "tnl/arp/show")
	if err != nil {
		return nil, fmt.Errorf("read OVS's tunnel neighbour cache: %w", err)
	}
	return parseTunnelNeighbors(out, UnderlayBridge), nil
}

// parseTunnelNeighbors reads `ovs-appctl tnl/arp/show` (OVS 3.1):
//
//	IP                                            MAC                 Bridge
//	==========================================================================
//	198.18.0.2                                    5e:0b:56:6c:65:f2   br-phy
//	198.18.0.3                                    82:f7:de:7c:c8:12   br-phy STALE
//
// and returns bridge's IPv4 entries.
func parseTunnelNeighbors(out, bridge string) map[netip.Addr]ovsNeighbor {
	m := map[netip.Addr]ovsNeighbor{}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 3 || f[2] != bridge {
			continue
		}
		ip, err1 := netip.ParseAddr(f[0])
		mac, err2 := net.ParseMAC(f[1])
		if err1 != nil || err2 != nil || !ip.Unmap().Is4() {
			continue
		}
		m[ip.Unmap()] = ovsNeighbor{mac: mac, stale: len(f) > 3 && f[3] == "STALE"}
	}
	return m
}

func sortedAddrs[V any](m map[netip.Addr]V) []netip.Addr {
	ips := make([]netip.Addr, 0, len(m))
	for ip := range m {
		ips = append(ips, ip)
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	return ips
}
