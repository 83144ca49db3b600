package fsm

import (
	"net/netip"

	"github.com/sdn-dev/sdn/cluster/alloc"
)

// allocTxn changes the in-memory pools with an undo log, so a command that
// fails halfway (a pool runs dry on its third allocation) leaves the pools
// exactly as they were, and a dry run can allocate for real and then undo.
type allocTxn struct {
	p    *pools
	undo []func()
	// hosts whose address pool cursor moved, so only theirs are stored
	touched map[string]bool
}

func (p *pools) begin() *allocTxn { return &allocTxn{p: p, touched: map[string]bool{}} }

func (a *allocTxn) rollback() {
	for i := len(a.undo) - 1; i >= 0; i-- {
		a.undo[i]()
	}
	a.undo = nil
}

func (a *allocTxn) keepCursor(pl *alloc.Pool) {
	c := pl.Cursor()
	a.undo = append(a.undo, func() { pl.SetCursor(c) })
}

func (a *allocTxn) vnid() (uint32, error) {
	a.keepCursor(a.p.vnids.Pool())
	v, err := a.p.vnids.Allocate()
	if err != nil {
		return 0, err
	}
	a.undo = append(a.undo, func() { a.p.vnids.Release(v) })
	return v, nil
}

func (a *allocTxn) releaseVNID(v uint32) {
	if a.p.vnids.Release(v) {
		a.undo = append(a.undo, func() { _ = a.p.vnids.Claim(v) })
	}
}

// subnet allocates a host block and creates the host's address pool.
func (a *allocTxn) subnet(node string) (netip.Prefix, *alloc.IPPool, error) {
	a.keepCursor(a.p.subnets.Pool())
	s, err := a.p.subnets.Allocate()
	if err != nil {
		return netip.Prefix{}, nil, err
	}
	a.undo = append(a.undo, func() { a.p.subnets.Release(s) })
	ipp, err := alloc.NewIPPool(s, ipPoolName(node, s))
	if err != nil {
		return netip.Prefix{}, nil, err
	}
	old, had := a.p.ips[node]
	a.p.ips[node] = ipp
	a.undo = append(a.undo, func() {
		if had {
			a.p.ips[node] = old
		} else {
			delete(a.p.ips, node)
		}
	})
	return s, ipp, nil
}

// replaceSubnets swaps in the pool of a new cluster CIDR; a rollback (a
// refused command or a dry run) puts the old one back.
func (a *allocTxn) replaceSubnets(sp *alloc.SubnetPool) {
	old := a.p.subnets
	a.p.subnets = sp
	a.undo = append(a.undo, func() { a.p.subnets = old })
}

// releaseSubnet frees a host block and forgets the host's address pool.
func (a *allocTxn) releaseSubnet(node string, s netip.Prefix) {
	if a.p.subnets.Release(s) {
		a.undo = append(a.undo, func() { _ = a.p.subnets.Claim(s) })
	}
	if old, ok := a.p.ips[node]; ok {
		delete(a.p.ips, node)
		a.undo = append(a.undo, func() { a.p.ips[node] = old })
	}
}

func (a *allocTxn) ip(node string) (netip.Addr, error) {
	ipp := a.p.ips[node]
	a.keepCursor(ipp.Pool())
	a.touched[node] = true
	ip, err := ipp.Allocate()
	if err != nil {
		return netip.Addr{}, err
	}
	a.undo = append(a.undo, func() { ipp.Release(ip) })
	return ip, nil
}

func (a *allocTxn) claimIP(node string, ip netip.Addr) error {
	ipp := a.p.ips[node]
	if err := ipp.Claim(ip); err != nil {
		return err
	}
	a.undo = append(a.undo, func() { ipp.Release(ip) })
	return nil
}

func (a *allocTxn) releaseIP(node string, ip netip.Addr) {
	ipp := a.p.ips[node]
	if ipp == nil {
		return
	}
	if ipp.Release(ip) {
		a.undo = append(a.undo, func() { _ = ipp.Claim(ip) })
	}
}

func (a *allocTxn) setOwner(key, workload string) {
	old, had := a.p.owners[key]
	a.p.owners[key] = workload
	a.undo = append(a.undo, func() {
		if had {
			a.p.owners[key] = old
		} else {
			delete(a.p.owners, key)
		}
	})
}

func (a *allocTxn) dropOwner(key string) {
	old, had := a.p.owners[key]
	if !had {
		return
	}
	delete(a.p.owners, key)
	a.undo = append(a.undo, func() { a.p.owners[key] = old })
}

// setMAC records a placed workload's explicit MAC on its host.
func (a *allocTxn) setMAC(node, mac, workload string) {
	k := macKey(node, mac)
	old, had := a.p.macs[k]
	a.p.macs[k] = workload
	a.undo = append(a.undo, func() {
		if had {
			a.p.macs[k] = old
		} else {
			delete(a.p.macs, k)
		}
	})
}

// dropMAC forgets a workload's explicit MAC on its host.
func (a *allocTxn) dropMAC(node, mac, workload string) {
	k := macKey(node, mac)
	if a.p.macs[k] != workload {
		return
	}
	delete(a.p.macs, k)
	a.undo = append(a.undo, func() { a.p.macs[k] = workload })
}
