package fsm

import (
	"errors"
	"fmt"
	"maps"
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
	tx     *state.Tx
	at     *allocTxn
	write  bool
	rev    uint64
	vs     violations
	human  []*sdnv1.Change
	events []*sdnv1.ObjectChange
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
