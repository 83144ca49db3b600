package fsm

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/sdn-dev/sdn/cluster/alloc"
	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// pools are the in-memory allocators and indexes derived from the stored
// state. They are rebuilt from the store on open and after a restore, and
// changed only by command execution, so every replica holds the same ones.
type pools struct {
	subnets *alloc.SubnetPool
	vnids   *alloc.VNIDPool
	ips     map[string]*alloc.IPPool // by node name
	owners  map[string]string        // CNI owner key -> workload key
	// macs holds the MACs of placed workloads that are not derived from
	// their address (explicit ones), by host: two workloads on one host
	// never share one (macKey -> workload key).
	macs map[string]string
}

// macKey is a host's MAC in pools.macs.
func macKey(node, mac string) string { return node + "\x00" + mac }

// explicitMAC reports whether a placed workload's MAC is its own choice
// rather than the one derived from its address (model.MACForIP).
func explicitMAC(w *sdnv1.Workload) bool {
	a, err := netip.ParseAddr(w.Ip)
	return w.Mac != "" && (err != nil || w.Mac != model.MACForIP(a).String())
}

const (
	cursorSubnets = "subnets"
	cursorVNIDs   = "vnids"
	cursorIPsPfx  = "ips/"
)

func ownerKey(containerID, ifname string) string { return containerID + "\x00" + ifname }

// workloadOwnerKey is the owner a runtime attached a workload as (CNI's
// container id and interface, sdnctl attach's, the Docker driver's
// endpoint id: model.OwnedKind), "" for workloads without one. An entry
// written before ORIGIN_KIND_ATTACH and _DOCKER existed cannot carry them,
// so replaying an old log builds the same owners.
func workloadOwnerKey(w *sdnv1.Workload) string {
	switch k := w.GetOrigin().GetKind(); {
	case w.GetOrigin().GetContainerId() == "":
		return ""
	case !model.OwnedKind(k):
		return ""
	}
	return ownerKey(w.Origin.ContainerId, w.Origin.Ifname)
}

func newSubnetPool(c *sdnv1.ClusterSettings) (*alloc.SubnetPool, error) {
	cidr, err := netip.ParsePrefix(c.Cidr)
	if err != nil {
		return nil, fmt.Errorf("cluster cidr %q: %w", c.Cidr, err)
	}
	return alloc.NewSubnetPool(cidr, int(c.HostPrefix))
}

// loadPools rebuilds the allocators from the stored objects.
func loadPools(tx *state.Tx) (*pools, error) {
	settings := effectiveSettings(tx)
	sp, err := newSubnetPool(settings)
	if err != nil {
		return nil, err
	}
	p := &pools{subnets: sp, vnids: alloc.NewVNIDPool(), ips: map[string]*alloc.IPPool{}, owners: map[string]string{}, macs: map[string]string{}}
	for _, n := range tx.Nodes() {
		if n.Subnet == "" {
			continue
		}
		sub, err := netip.ParsePrefix(n.Subnet)
		if err != nil {
			return nil, fmt.Errorf("node %s: stored subnet %q: %w", n.Name, n.Subnet, err)
		}
		if err := p.subnets.Claim(sub); err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		ipp, err := alloc.NewIPPool(sub, ipPoolName(n.Name, sub))
		if err != nil {
			return nil, err
		}
		ipp.Pool().SetCursor(tx.Cursor(cursorIPsPfx + n.Name))
		p.ips[n.Name] = ipp
	}
	p.subnets.Pool().SetCursor(tx.Cursor(cursorSubnets))
	for _, n := range tx.Networks() {
		if n.Admin {
			continue
		}
		if err := p.vnids.Claim(n.Vnid); err != nil {
			return nil, fmt.Errorf("network %s: %w", n.Name, err)
		}
	}
	p.vnids.Pool().SetCursor(tx.Cursor(cursorVNIDs))
	for _, w := range tx.Workloads("") {
		if k := workloadOwnerKey(w); k != "" {
			p.owners[k] = model.WorkloadKey(w.Network, w.Name)
		}
		if w.Ip == "" || w.Pending != "" {
			continue
		}
		ipp := p.ips[w.Node]
		if ipp == nil {
			return nil, fmt.Errorf("workload %s/%s: has address %s on node %q, which has no subnet", w.Network, w.Name, w.Ip, w.Node)
		}
		a, err := netip.ParseAddr(w.Ip)
		if err != nil {
			return nil, fmt.Errorf("workload %s/%s: stored ip %q: %w", w.Network, w.Name, w.Ip, err)
		}
		if err := ipp.Claim(a); err != nil {
			return nil, fmt.Errorf("workload %s/%s: %w", w.Network, w.Name, err)
		}
		if k := macKey(w.Node, w.Mac); explicitMAC(w) && p.macs[k] == "" {
			// A duplicate stored before MACs were checked stays the
			// first one's (workloads come sorted).
			p.macs[k] = model.WorkloadKey(w.Network, w.Name)
		}
	}
	return p, nil
}

// RebuildAllocators rebuilds the allocators from the objects tx holds, and
// drops them: it fails on any subnet, address or VNID held twice (the raft
// server checks a state image with it before restoring it).
func RebuildAllocators(tx *state.Tx) error {
	_, err := loadPools(tx)
	return err
}

func ipPoolName(node string, sub netip.Prefix) string {
	return fmt.Sprintf("node %s's subnet %s", node, sub)
}

// saveCursors persists the allocators' cursors so a rebuilt pool continues
// exactly where this one is.
func (p *pools) saveCursors(tx *state.Tx, nodes ...string) error {
	if err := tx.SetCursor(cursorSubnets, p.subnets.Pool().Cursor()); err != nil {
		return err
	}
	if err := tx.SetCursor(cursorVNIDs, p.vnids.Pool().Cursor()); err != nil {
		return err
	}
	for _, n := range nodes {
		if ipp := p.ips[n]; ipp != nil {
			if err := tx.SetCursor(cursorIPsPfx+n, ipp.Pool().Cursor()); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckAllocators rebuilds the allocators from the stored state, as a
// restart or a restore does, and compares them with the FSM's live ones:
// same assignments, same cursors, same CNI owners and explicit MACs. A
// difference is an allocation leaked by a refused command or a cursor that
// was not persisted, either of which makes a restarted replica diverge.
// Tests of replicas call it; two FSMs whose stores are equal and whose
// checks pass hold the same allocators.
func (f *FSM) CheckAllocators() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var err error
	f.View(func(tx *state.Tx) error {
		want, lerr := loadPools(tx)
		if lerr != nil {
			err = fmt.Errorf("rebuild allocators from the store: %w", lerr)
			return nil
		}
		err = comparePools(f.pools, want)
		return nil
	})
	return err
}

// comparePools says how two sets of allocators differ (nil: they do not).
func comparePools(got, want *pools) error {
	cmpPool := func(what string, g, w *alloc.Pool) error {
		gi, wi := slices.Collect(g.UsedIndexes()), slices.Collect(w.UsedIndexes())
		if !slices.Equal(gi, wi) {
			return fmt.Errorf("%s: indexes in use %v, want %v", what, gi, wi)
		}
		if g.Cursor() != w.Cursor() {
			return fmt.Errorf("%s: cursor %d, want %d", what, g.Cursor(), w.Cursor())
		}
		return nil
	}
	if got.subnets.CIDR() != want.subnets.CIDR() || got.subnets.HostPrefix() != want.subnets.HostPrefix() {
		return fmt.Errorf("subnet pool of %s /%d, want %s /%d", got.subnets.CIDR(), got.subnets.HostPrefix(), want.subnets.CIDR(), want.subnets.HostPrefix())
	}
	if err := cmpPool("subnets", got.subnets.Pool(), want.subnets.Pool()); err != nil {
		return err
	}
	if err := cmpPool("VNIDs", got.vnids.Pool(), want.vnids.Pool()); err != nil {
		return err
	}
	if g, w := slices.Sorted(maps.Keys(got.ips)), slices.Sorted(maps.Keys(want.ips)); !slices.Equal(g, w) {
		return fmt.Errorf("address pools for hosts %v, want %v", g, w)
	}
	for _, n := range slices.Sorted(maps.Keys(got.ips)) {
		if got.ips[n].Subnet() != want.ips[n].Subnet() {
			return fmt.Errorf("host %s: address pool of %s, want %s", n, got.ips[n].Subnet(), want.ips[n].Subnet())
		}
		if err := cmpPool("host "+n+" addresses", got.ips[n].Pool(), want.ips[n].Pool()); err != nil {
			return err
		}
	}
	if !maps.Equal(got.owners, want.owners) {
		return fmt.Errorf("CNI owners %v, want %v", got.owners, want.owners)
	}
	if !maps.Equal(got.macs, want.macs) {
		return fmt.Errorf("explicit MACs %v, want %v", got.macs, want.macs)
	}
	return nil
}

// Owner returns the workload a CNI owner (container id and interface)
// holds, as network and name; ok is false when it holds none. The API
// uses it to check, before proposing, that an agent detaches only its own
// host's workloads.
func (f *FSM) Owner(containerID, ifname string) (network, name string, ok bool) {
	f.mu.Lock()
	key, held := f.pools.owners[ownerKey(containerID, ifname)]
	f.mu.Unlock()
	if !held {
		return "", "", false
	}
	return splitKey(key)
}
