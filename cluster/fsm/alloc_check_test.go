package fsm

// The checks the random allocation runs (alloc_fsm_test.go) make after
// every command: nothing allocated twice, the in-memory pools equal to the
// store, and a refusal for a full pool naming that pool.

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/cluster/alloc"
	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/model"
)

// shrinkVNIDs swaps the FSM's VNID pool for one of VNIDs 1-max, so a random
// run can fill it (the real one holds 2^24-1). White-box: the FSM has no
// option for it and gets none for this test. It must happen before any
// network exists, and a reload (reopen, restore) puts the full pool back.
func shrinkVNIDs(t testing.TB, f *FSM, max uint32) {
	t.Helper()
	f.View(func(tx *state.Tx) error {
		if len(tx.Networks()) > 0 {
			t.Fatal("shrinkVNIDs on an FSM that holds networks")
		}
		return nil
	})
	p, err := alloc.NewVNIDPoolRange(1, max)
	if err != nil {
		t.Fatal(err)
	}
	f.pools.vnids = p
}

// lastAddr is p's broadcast address.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= 1<<(32-p.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// checkAllocations scans the stored state for what the allocators promise:
// no VNID, subnet, underlay address or workload address held twice; the admin
// network on VNID 0; every subnet a block of the cluster CIDR; every placed
// workload inside its registered host's block, on neither the network,
// gateway nor broadcast address, with the MAC derived from its address and
// its network's VNID.
func checkAllocations(tx *state.Tx) error {
	settings := effectiveSettings(tx)
	cidr, err := netip.ParsePrefix(settings.Cidr)
	if err != nil {
		return fmt.Errorf("stored cluster CIDR %q: %v", settings.Cidr, err)
	}
	hp := int(settings.HostPrefix)

	vnidOf := map[string]uint32{}
	vnidHolder := map[uint32]string{}
	var admins []string
	for _, n := range tx.Networks() {
		vnidOf[n.Name] = n.Vnid
		if n.Admin {
			admins = append(admins, n.Name)
			if n.Vnid != model.AdminVNID {
				return fmt.Errorf("admin network %s has VNID %d, want 0", n.Name, n.Vnid)
			}
			continue
		}
		if n.Vnid == 0 || n.Vnid > model.MaxVNID {
			return fmt.Errorf("network %s has VNID %d, outside 1-%d", n.Name, n.Vnid, model.MaxVNID)
		}
		if other, dup := vnidHolder[n.Vnid]; dup {
			return fmt.Errorf("VNID %d held by networks %s and %s", n.Vnid, other, n.Name)
		}
		vnidHolder[n.Vnid] = n.Name
	}
	if len(admins) > 1 {
		return fmt.Errorf("%d admin networks: %v", len(admins), admins)
	}

	subnetOf := map[string]netip.Prefix{}
	subnetHolder := map[netip.Prefix]string{}
	underlayHolder := map[string]string{}
	for _, n := range tx.Nodes() {
		sub, err := netip.ParsePrefix(n.Subnet)
		if err != nil {
			return fmt.Errorf("node %s has subnet %q: %v", n.Name, n.Subnet, err)
		}
		if sub.Bits() != hp || sub.Masked() != sub || !cidr.Contains(sub.Addr()) {
			return fmt.Errorf("node %s has subnet %s, not a /%d block of %s", n.Name, sub, hp, cidr)
		}
		if n.GatewayIp != sub.Addr().Next().String() {
			return fmt.Errorf("node %s: gateway %s, want the first address of %s", n.Name, n.GatewayIp, sub)
		}
		if other, dup := subnetHolder[sub]; dup {
			return fmt.Errorf("subnet %s held by nodes %s and %s", sub, other, n.Name)
		}
		if other, dup := underlayHolder[n.UnderlayIp]; dup {
			return fmt.Errorf("underlay address %s held by nodes %s and %s", n.UnderlayIp, other, n.Name)
		}
		subnetHolder[sub], underlayHolder[n.UnderlayIp], subnetOf[n.Name] = n.Name, n.Name, sub
	}

	ipHolder := map[netip.Addr]string{}
	for _, w := range tx.Workloads("") {
		key := model.WorkloadKey(w.Network, w.Name)
		v, ok := vnidOf[w.Network]
		if !ok {
			return fmt.Errorf("workload %s is in network %s, which does not exist", key, w.Network)
		}
		if w.Vnid != v {
			return fmt.Errorf("workload %s has VNID %d, its network %s has %d", key, w.Vnid, w.Network, v)
		}
		sub, registered := subnetOf[w.Node]
		if w.Pending != "" {
			continue // no address held (a requested one is only kept)
		}
		if !registered {
			return fmt.Errorf("workload %s has address %q on host %s, which is not registered", key, w.Ip, w.Node)
		}
		a, err := netip.ParseAddr(w.Ip)
		if err != nil {
			return fmt.Errorf("workload %s: address %q: %v", key, w.Ip, err)
		}
		switch {
		case !sub.Contains(a):
			return fmt.Errorf("workload %s has %s, outside its host %s's subnet %s", key, a, w.Node, sub)
		case a == sub.Addr():
			return fmt.Errorf("workload %s has %s, the network address of %s", key, a, sub)
		case a == sub.Addr().Next():
			return fmt.Errorf("workload %s has %s, the gateway of %s", key, a, sub)
		case a == lastAddr(sub):
			return fmt.Errorf("workload %s has %s, the broadcast address of %s", key, a, sub)
		}
		if other, dup := ipHolder[a]; dup {
			return fmt.Errorf("address %s held by workloads %s and %s", a, other, key)
		}
		ipHolder[a] = key
		if w.Mac != model.MACForIP(a).String() {
			return fmt.Errorf("workload %s has MAC %s, want %s (derived from %s)", key, w.Mac, model.MACForIP(a), a)
		}
	}
	return nil
}

// checkPoolsMatchStore is FSM.CheckAllocators: the live allocators equal
// those rebuilt from the store.
func checkPoolsMatchStore(f *FSM) error { return f.CheckAllocators() }

// exhaustedRE matches a violation that says a pool is full: what was being
// allocated, the pool, used of capacity, the unit and the hint.
var exhaustedRE = regexp.MustCompile(`^(allocate a VNID|allocate a subnet|allocate an address on node (\S+)): (.+) is full \((\d+) of (\d+) (\S+) used\); (.+)$`)

// checkExhausted checks every "is full" violation of a refusal against the
// state it was refused in: it must name the right pool, its true capacity
// (all of it used), the unit and the hint. It returns which pools ran dry.
func checkExhausted(tx *state.Tx, rerr *Error, vnidCap uint64) ([]string, error) {
	text := rerr.Error()
	if rerr.Code == CodeExhausted && (!strings.Contains(text, "is full (") || !strings.Contains(text, "; ")) {
		return nil, fmt.Errorf("exhausted refusal without pool, size and hint: %q", text)
	}
	settings := effectiveSettings(tx)
	cidr := netip.MustParsePrefix(settings.Cidr)
	hp := int(settings.HostPrefix)
	var kinds []string
	for _, v := range rerr.Violations {
		if !strings.Contains(v.Message, "is full") {
			continue
		}
		m := exhaustedRE.FindStringSubmatch(v.Message)
		if m == nil {
			return nil, fmt.Errorf("violation %q does not read `<pool> is full (<used> of <size> <unit> used); <hint>`", v.Message)
		}
		used, _ := strconv.ParseUint(m[4], 10, 64)
		capacity, _ := strconv.ParseUint(m[5], 10, 64)
		var pool, unit, hint, kind string
		var want uint64
		switch {
		case m[1] == "allocate a VNID":
			kind, pool, unit, hint, want = "vnid", "VNID space", "VNIDs", "delete unused networks", vnidCap
			if vnidCap != uint64(model.MaxVNID) {
				pool = fmt.Sprintf("VNID space 1-%d", vnidCap)
			}
		case m[1] == "allocate a subnet":
			kind, pool, unit, hint = "subnet", "cluster CIDR "+cidr.String(), fmt.Sprintf("/%ds", hp), "widen cluster.cidr or remove stale nodes"
			want = 1 << (hp - cidr.Bits())
		default:
			n, ok := tx.Node(m[2])
			if !ok {
				return nil, fmt.Errorf("violation %q: host %s is not registered", v.Message, m[2])
			}
			sub := netip.MustParsePrefix(n.Subnet)
			kind, pool, unit, hint = "ip", fmt.Sprintf("node %s's subnet %s", n.Name, sub), "addresses", "delete unused workloads on this node or run new ones on another node"
			want = 1<<(32-sub.Bits()) - 3
		}
		if m[3] != pool || m[6] != unit || m[7] != hint || capacity != want || used != capacity {
			return nil, fmt.Errorf("violation %q: want pool %q, %d of %d %s used, hint %q", v.Message, pool, want, want, unit, hint)
		}
		kinds = append(kinds, kind)
	}
	if rerr.Code == CodeExhausted && len(kinds) == 0 {
		return nil, fmt.Errorf("exhausted refusal names no full pool: %q", text)
	}
	return kinds, nil
}
