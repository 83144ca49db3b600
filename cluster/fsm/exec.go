package fsm

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"

	"github.com/sdn-dev/sdn/cluster/alloc"
	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// exec carries one command through its checks, allocations and writes. With
// write unset (a dry run) it allocates for real and the caller rolls the
// allocations back, so a plan sees exactly the errors an apply would.
type exec struct {
	tx    *state.Tx
	at    *allocTxn
	write bool
	// strict applies the checks added with command envelope format 2
	// (underlay addresses, MACs per host, addresses waiting workloads
	// ask for) to a command of a format 2 entry. An entry of format 1,
	// written by an older release or before every server read format 2,
	// is applied as it was then, so replaying an old log gives the
	// state the servers reached when they first applied it (package
	// doc, "Determinism").
	strict bool
	rev    uint64
	vs     violations
	human  []*sdnv1.Change
	events []*sdnv1.ObjectChange
	// liveness names the hosts marked down or up again by the command:
	// their workloads leave or rejoin the services (endpoints.go).
	liveness []string
}

func newExec(tx *state.Tx, p *pools, write bool) *exec {
	return &exec{tx: tx, at: p.begin(), write: write, rev: tx.NextRevision()}
}

// record notes one object's change for the caller and for watchers.
func (e *exec) record(op sdnv1.ChangeOp, kind model.Kind, name string, details []string, obj *sdnv1.ObjectChange) {
	e.human = append(e.human, &sdnv1.Change{Op: op, Kind: string(kind), Name: name, Details: details})
	obj.Op, obj.Kind, obj.Name = op, string(kind), name
	e.events = append(e.events, obj)
}

func (e *exec) putNetwork(op sdnv1.ChangeOp, n *sdnv1.Network, details []string) error {
	n.ModRevision = e.rev
	if op == sdnv1.ChangeOp_CHANGE_OP_CREATE {
		n.CreateRevision = e.rev
	}
	e.record(op, model.KindNetwork, n.Name, details, &sdnv1.ObjectChange{Network: n})
	if !e.write {
		return nil
	}
	return e.tx.PutNetwork(n)
}

func (e *exec) deleteNetwork(n *sdnv1.Network) error {
	e.record(sdnv1.ChangeOp_CHANGE_OP_DELETE, model.KindNetwork, n.Name, nil, &sdnv1.ObjectChange{Network: n})
	if !e.write {
		return nil
	}
	return e.tx.DeleteNetwork(n.Name)
}

func (e *exec) putWorkload(op sdnv1.ChangeOp, w *sdnv1.Workload, details []string) error {
	w.ModRevision = e.rev
	if op == sdnv1.ChangeOp_CHANGE_OP_CREATE {
		w.CreateRevision = e.rev
	}
	w.Ranges = nil
	e.record(op, model.KindWorkload, model.WorkloadKey(w.Network, w.Name), details, &sdnv1.ObjectChange{Workload: w})
	if k := workloadOwnerKey(w); k != "" {
		e.at.setOwner(k, model.WorkloadKey(w.Network, w.Name))
	}
	if !e.write {
		return nil
	}
	return e.tx.PutWorkload(w)
}

func (e *exec) deleteWorkload(w *sdnv1.Workload) error {
	e.record(sdnv1.ChangeOp_CHANGE_OP_DELETE, model.KindWorkload, model.WorkloadKey(w.Network, w.Name), nil, &sdnv1.ObjectChange{Workload: w})
	if k := workloadOwnerKey(w); k != "" {
		e.at.dropOwner(k)
	}
	if !e.write {
		return nil
	}
	return e.tx.DeleteWorkload(w.Network, w.Name)
}

func (e *exec) putNode(op sdnv1.ChangeOp, n *sdnv1.Node, details []string) error {
	n.ModRevision = e.rev
	if op == sdnv1.ChangeOp_CHANGE_OP_CREATE {
		n.CreateRevision = e.rev
	}
	e.record(op, model.KindNode, n.Name, details, &sdnv1.ObjectChange{Node: n})
	if !e.write {
		return nil
	}
	return e.tx.PutNode(n)
}

func (e *exec) putCluster(op sdnv1.ChangeOp, c *sdnv1.ClusterSettings, details []string) error {
	c.ModRevision = e.rev
	e.record(op, model.KindCluster, model.ClusterObjectName, details, &sdnv1.ObjectChange{Cluster: c})
	if !e.write {
		return nil
	}
	return e.tx.PutCluster(c)
}

// unplace frees a placed workload's address.
func (e *exec) unplace(w *sdnv1.Workload) {
	if w.Ip == "" || w.Pending != "" {
		return
	}
	if a, err := netip.ParseAddr(w.Ip); err == nil {
		e.at.releaseIP(w.Node, a)
	}
	if explicitMAC(w) {
		e.at.dropMAC(w.Node, w.Mac, model.WorkloadKey(w.Network, w.Name))
	}
}

// place gives w an address on its node: the one it asks for or a free one,
// and the MAC derived from it unless one was asked for. A workload whose node
// has not registered stays pending, with its requested address kept. The
// error is the user-facing reason when no address can be had.
func (e *exec) place(w *sdnv1.Workload, requestedIP, requestedMAC string) (Code, error) {
	w.Pending = ""
	w.Ip, w.Mac = requestedIP, requestedMAC
	if _, ok := e.at.p.ips[w.Node]; !ok {
		w.Pending = fmt.Sprintf("node %s is not registered", w.Node)
		return 0, nil
	}
	if requestedMAC != "" {
		if code, err := e.checkMAC(w, requestedIP, requestedMAC); err != nil {
			return code, err
		}
	}
	if requestedIP != "" {
		a, err := netip.ParseAddr(requestedIP)
		if err != nil {
			return CodeInvalid, fmt.Errorf("ip %q is not an IP address", requestedIP)
		}
		if err := e.at.claimIP(w.Node, a); err != nil {
			var inUse *alloc.InUseError
			if errors.As(err, &inUse) {
				return CodeConflict, fmt.Errorf("ip %s: %w", a, err)
			}
			return CodeInvalid, fmt.Errorf("ip %s: %w", a, err)
		}
	} else {
		a, err := e.at.ip(w.Node)
		if err != nil {
			return CodeExhausted, fmt.Errorf("allocate an address on node %s: %w", w.Node, err)
		}
		w.Ip = a.String()
	}
	if w.Mac == "" {
		w.Mac = model.MACForIP(netip.MustParseAddr(w.Ip)).String()
	}
	if explicitMAC(w) {
		e.at.setMAC(w.Node, w.Mac, model.WorkloadKey(w.Network, w.Name))
	}
	return 0, nil
}

// remac gives a stored workload another MAC where it is (a placed one is
// checked as place checks it).
func (e *exec) remac(old *sdnv1.Workload, mac string) (Code, error) {
	if old.Pending != "" || old.Ip == "" {
		return 0, nil
	}
	if code, err := e.checkMAC(old, old.Ip, mac); err != nil {
		return code, err
	}
	key := model.WorkloadKey(old.Network, old.Name)
	if explicitMAC(old) {
		e.at.dropMAC(old.Node, old.Mac, key)
	}
	if nw := (&sdnv1.Workload{Ip: old.Ip, Mac: mac}); explicitMAC(nw) {
		e.at.setMAC(old.Node, mac, key)
	}
	return 0, nil
}

// macError is place's refusal of a workload's MAC (its other refusals are
// of its address).
type macError struct{ msg string }

func (e macError) Error() string { return e.msg }

// placeField is the workload field a refusal from place is about.
func placeField(err error) string {
	if errors.As(err, new(macError)) {
		return "mac"
	}
	return "ip"
}

// checkMAC checks a MAC asked for a workload about to get an address on
// its host (ip is the one it asks for, "" for any): one of the range sdn
// derives from addresses (model.MACForIP) only with that very address, and
// never one another workload of the host has, since the host's flows tell
// its ports apart by MAC.
func (e *exec) checkMAC(w *sdnv1.Workload, ip, mac string) (Code, error) {
	if !e.strict {
		return 0, nil
	}
	if hw, err := net.ParseMAC(mac); err == nil && len(hw) == 6 && hw[0] == 0x0a && hw[1] == 0x58 {
		derived := netip.AddrFrom4([4]byte(hw[2:6]))
		if ip != derived.String() {
			return CodeInvalid, macError{fmt.Sprintf("mac %s is the MAC sdn derives for address %s (0a:58 and the address); only a workload with that address can have it: leave mac out to have one derived, or choose one outside 0a:58:*", mac, derived)}
		}
		return 0, nil
	}
	if other := e.at.p.macs[macKey(w.Node, mac)]; other != "" && other != model.WorkloadKey(w.Network, w.Name) {
		return CodeConflict, macError{fmt.Sprintf("mac %s is already workload %s's on host %s; two workloads on one host need distinct MACs: choose another, or leave mac out to have one derived from the address", mac, other, w.Node)}
	}
	return 0, nil
}

// commit ends a command that passed its checks: it stamps the revision, or
// undoes a dry run's allocations.
func (e *exec) commit() (uint64, error) {
	if !e.write {
		e.at.rollback()
		return e.tx.Meta().Revision, nil
	}
	if len(e.events) == 0 {
		return e.tx.Meta().Revision, nil
	}
	if err := e.deriveGroups(); err != nil {
		return 0, err
	}
	if err := e.deriveEndpoints(); err != nil {
		return 0, err
	}
	if err := e.at.p.saveCursors(e.tx, slices.Sorted(maps.Keys(e.at.touched))...); err != nil {
		return 0, err
	}
	return e.tx.Commit(e.events)
}

// fail undoes the command's allocations and returns its refusal.
func (e *exec) fail() *Error {
	e.at.rollback()
	return e.vs.err()
}
