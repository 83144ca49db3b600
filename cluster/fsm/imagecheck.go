package fsm

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// maxStateProblems bounds how many problems CheckState lists.
const maxStateProblems = 10

// CheckState checks a whole state, object by object, as a restore does
// before the state replaces a cluster's (cluster.RestoreState): what the
// store promises of its records (state.Tx.CheckContent: they decode, each
// under its own key, no revision from the future), the rules the commands
// apply (names, labels, addresses, settings; the same checks as
// validate.go's and settings.go's), the references (a workload's network
// exists and gives it its VNID; a workload with an address is on a
// registered host whose subnet holds it) and the allocations (no VNID,
// subnet, address or CNI owner held twice: RebuildAllocators). It returns
// nil, or an error listing the first problems found.
func CheckState(tx *state.Tx) error {
	c := &stateCheck{tx: tx}
	c.problems = append(c.problems, tx.CheckContent()...)
	c.settings()
	c.networks()
	c.nodes()
	c.workloads()
	c.policies()
	c.services()
	if err := RebuildAllocators(tx); err != nil {
		c.bad("allocations: %v", err)
	}
	if len(c.problems) == 0 {
		return nil
	}
	shown := c.problems[:min(len(c.problems), maxStateProblems)]
	msg := strings.Join(shown, "; ")
	if more := len(c.problems) - len(shown); more > 0 {
		msg += fmt.Sprintf("; and %d more", more)
	}
	if len(c.problems) == 1 {
		return errors.New(msg)
	}
	return fmt.Errorf("%d problems: %s", len(c.problems), msg)
}

// stateCheck collects what CheckState finds.
type stateCheck struct {
	tx       *state.Tx
	problems []string
	nets     map[string]*sdnv1.Network
	nodesBy  map[string]*sdnv1.Node
}

func (c *stateCheck) bad(format string, a ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, a...))
}

// settings checks the stored cluster settings as an apply would.
func (c *stateCheck) settings() {
	s := c.tx.Cluster()
	if s == nil {
		return
	}
	var vs violations
	// An older release's snapshot may hold what its rules allowed.
	checkSettings(&vs, c.tx, s, false)
	for _, v := range vs.list {
		c.bad("cluster settings: %s", v.Message)
	}
}

// networks checks names, labels and VNIDs: at most one admin network, the
// only one with VNID 0.
func (c *stateCheck) networks() {
	c.nets = map[string]*sdnv1.Network{}
	var admins []string
	for _, n := range c.tx.Networks() {
		c.nets[n.Name] = n
		if msg := checkName(model.KindNetwork, n.Name); msg != "" {
			c.bad("%s", msg)
		}
		if msg := checkLabels(n.Labels); msg != "" {
			c.bad("network %q: %s", n.Name, msg)
		}
		switch {
		case n.Admin:
			admins = append(admins, n.Name)
			if n.Vnid != model.AdminVNID {
				c.bad("network %q: the admin network has VNID %d, not %d", n.Name, n.Vnid, model.AdminVNID)
			}
		case n.Vnid == model.AdminVNID || n.Vnid > model.MaxVNID:
			c.bad("network %q: VNID %d is not a tenant network's (1-%d)", n.Name, n.Vnid, model.MaxVNID)
		}
	}
	if len(admins) > 1 {
		c.bad("networks %s are all admin networks; at most one may be", strings.Join(admins, ", "))
	}
}

// nodes checks hosts as their registration was checked, and their subnets'
// gateways.
func (c *stateCheck) nodes() {
	c.nodesBy = map[string]*sdnv1.Node{}
	underlay := map[string]string{}
	for _, n := range c.tx.Nodes() {
		c.nodesBy[n.Name] = n
		if msg := checkName(model.KindNode, n.Name); msg != "" {
			c.bad("%s", msg)
		}
		if msg := checkLabels(n.Labels); msg != "" {
			c.bad("node %q: %s", n.Name, msg)
		}
		if ip, err := model.ParseIPv4("underlay address", n.UnderlayIp); err != nil {
			c.bad("node %q: %v", n.Name, err)
		} else if other, dup := underlay[ip.String()]; dup {
			c.bad("nodes %q and %q share the underlay address %s", other, n.Name, ip)
		} else {
			underlay[ip.String()] = n.Name
		}
		if n.UnderlayMtu < 576+VXLANOverhead || n.UnderlayMtu > 65535 {
			c.bad("node %q: underlay MTU %d is outside %d-65535", n.Name, n.UnderlayMtu, 576+VXLANOverhead)
		}
		if n.Subnet == "" {
			continue
		}
		sub, err := netip.ParsePrefix(n.Subnet)
		if err != nil {
			continue // RebuildAllocators says so
		}
		if gw := sub.Masked().Addr().Next(); n.GatewayIp != gw.String() {
			c.bad("node %q: gateway %q, but its subnet %s's gateway is %s", n.Name, n.GatewayIp, sub, gw)
		}
	}
}

// policies checks each policy as an apply would (policy.Check, its
// network exists), and that the stored address groups are exactly those
// the policies and workloads derive (DeriveGroups).
func (c *stateCheck) policies() {
	ps := c.tx.Policies()
	for _, p := range ps {
		key := model.PolicyKey(p)
		for _, pr := range policy.Check(p) {
			c.bad("policy %q: %s%s", key, fieldPrefix(pr.Field), pr.Message)
		}
		if _, ok := c.nets[p.Network]; p.Network != "" && !ok {
			c.bad("policy %q: its network %q does not exist", key, p.Network)
		}
	}
	want := DeriveGroups(ps, c.nets, c.tx.Workloads(""))
	have := c.tx.AddressGroups()
	byName := map[string]*sdnv1.AddressGroup{}
	for _, g := range have {
		byName[g.Name] = g
	}
	for _, g := range want {
		if old, ok := byName[g.Name]; !ok {
			c.bad("address group %s (%s) is missing: the policies refer to it", g.Name, g.Selector)
		} else if !sameGroup(old, g) {
			c.bad("address group %s (%s) is not what the policies and workloads make of it", g.Name, g.Selector)
		}
		delete(byName, g.Name)
	}
	for _, g := range have {
		if _, stale := byName[g.Name]; stale {
			c.bad("address group %s (%s): no policy refers to it", g.Name, g.Selector)
		}
	}
}

func fieldPrefix(f string) string {
	if f == "" {
		return ""
	}
	return f + ": "
}

// workloads checks names, labels, addresses and references.
func (c *stateCheck) workloads() {
	for _, w := range c.tx.Workloads("") {
		key := model.WorkloadKey(w.Network, w.Name)
		if msg := checkName(model.KindWorkload, w.Name); msg != "" {
			c.bad("workload %q: %s", key, msg)
		}
		if msg := checkLabels(w.Labels); msg != "" {
			c.bad("workload %q: %s", key, msg)
		}
		if msg := checkNamedPorts(w.NamedPorts); msg != "" {
			c.bad("workload %q: named_ports: %s", key, msg)
		}
		if msg := checkName(model.KindNode, w.Node); msg != "" {
			c.bad("workload %q: %s", key, msg)
		}
		n, ok := c.nets[w.Network]
		switch {
		case !ok:
			c.bad("workload %q: its network %q does not exist", key, w.Network)
		case w.Vnid != n.Vnid:
			c.bad("workload %q: VNID %d, but its network %q has %d", key, w.Vnid, w.Network, n.Vnid)
		}
		if w.Ip == "" || w.Pending != "" {
			continue
		}
		if _, ok := c.nodesBy[w.Node]; !ok {
			c.bad("workload %q: has address %s on host %q, which is not registered", key, w.Ip, w.Node)
		}
		mac := w.Mac
		if mac == "" {
			c.bad("workload %q: has address %s but no MAC", key, w.Ip)
		}
		if field, msg := checkAddrs(w); msg != "" {
			c.bad("workload %q: %s: %s", key, field, msg)
		} else if w.Mac != mac {
			c.bad("workload %q: MAC %q is not written as the servers write one (%s)", key, mac, w.Mac)
		}
	}
}
