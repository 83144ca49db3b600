package fsm

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// noAddressTwice checks that no two workloads show one address, whether
// they hold it or wait for a host with it requested, and that the
// allocators match the store.
func noAddressTwice(t *testing.T, tf *testFSM, when string) {
	t.Helper()
	tf.view(func(tx *state.Tx) {
		seen := map[string]string{}
		for _, w := range tx.Workloads("") {
			if w.Ip == "" {
				continue
			}
			key := model.WorkloadKey(w.Network, w.Name)
			if other, dup := seen[w.Ip]; dup {
				t.Fatalf("%s: workloads %s and %s both show address %s", when, other, key, w.Ip)
			}
			seen[w.Ip] = key
		}
	})
	if err := tf.f.CheckAllocators(); err != nil {
		t.Fatalf("%s: %v", when, err)
	}
}

func pendingApply(ws ...*sdnv1.Workload) *sdnv1.ApplyRequest {
	return &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "p"}}, Workloads: ws}
}

func wl(name, node, ip string) *sdnv1.Workload {
	return &sdnv1.Workload{Name: name, Network: "p", Node: node, Ip: ip}
}

// Workloads declared in HCL for a host that has not registered wait with
// the address they ask for. Such an address is one workload's: asked twice,
// or inside a registered host's subnet (where it can never be placed, and
// that host's allocator hands it out), it is refused; a host that registers
// with the subnet holding another host's waiting request takes the address
// back from it; a waiting workload whose address cannot be had on its own
// host keeps waiting without it. No two workloads ever show one address.
func TestPendingWorkloadAddresses(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.ApplyConfig, pendingApply())

	refused := func(what string, req *sdnv1.ApplyRequest, code Code, want string) {
		t.Helper()
		before := tf.dump()
		r := tf.apply(command.ApplyConfig, req)
		if r.Err == nil || r.Err.Code != code || !strings.Contains(r.Err.Error(), want) {
			t.Fatalf("%s: %v; want code %d saying %q", what, r.Err, code, want)
		}
		if after := tf.dump(); !slices.Equal(before, after) {
			t.Fatalf("%s: the refused apply changed the state", what)
		}
	}
	refused("one address asked twice in one apply", pendingApply(wl("a", "n2", "10.128.0.10"), wl("b", "n2", "10.128.0.10")), CodeConflict,
		"ip 10.128.0.10 is requested by workload p/a too")
	refused("outside the cluster CIDR", pendingApply(wl("a", "n2", "192.168.7.7")), CodeInvalid,
		"ip 192.168.7.7 is outside the cluster CIDR 10.128.0.0/14")

	tf.mustApply(command.ApplyConfig, pendingApply(wl("a", "n2", "10.128.0.10")))
	r := tf.apply(command.ApplyConfig, &sdnv1.ApplyRequest{Workloads: []*sdnv1.Workload{wl("b", "n3", "10.128.0.10")}})
	if r.Err == nil || r.Err.Code != CodeConflict || !strings.Contains(r.Err.Error(), "ip 10.128.0.10 is requested by workload p/a too") {
		t.Fatalf("an address a waiting workload asked for: %v", r.Err)
	}

	// n1 registers first and gets the block holding a's address: a can
	// never have it on n2, and n1's allocator may hand it out.
	tf.mustApply(command.RegisterNode, register("n1", "198.18.0.1", 1500))
	tf.view(func(tx *state.Tx) {
		a, _ := tx.Workload("p", "a")
		if a.Ip != "" || !strings.Contains(a.Pending, "10.128.0.10 went to host n1's subnet 10.128.0.0/23") {
			t.Fatalf("a after n1 took the block of its address: %v", a)
		}
	})
	tf.mustApply(command.AttachWorkload, attachReq("pod", "n1", "10.128.0.10", ""))
	noAddressTwice(t, tf, "after n1 registered and handed out 10.128.0.10")
	refused("an address of a registered host's subnet, for a host not registered", pendingApply(wl("a", "n2", "10.128.0.10")), CodeConflict,
		"ip 10.128.0.10 is in host n1's subnet 10.128.0.0/23")

	// A waiting workload whose address its own host cannot give (here its
	// gateway) keeps waiting, showing no address.
	tf.mustApply(command.ApplyConfig, pendingApply(wl("a", "n2", "10.128.2.1"), wl("c", "n2", "10.128.2.9")))
	tf.mustApply(command.RegisterNode, register("n2", "198.18.0.2", 1500))
	tf.view(func(tx *state.Tx) {
		a, _ := tx.Workload("p", "a")
		c, _ := tx.Workload("p", "c")
		if a.Ip != "" || !strings.Contains(a.Pending, "10.128.2.1") || c.Pending != "" || c.Ip != "10.128.2.9" {
			t.Fatalf("after n2 registered: a %v, c %v", a, c)
		}
	})
	noAddressTwice(t, tf, "after n2 registered")
	// Applying it again says why, and changes nothing.
	if p := netip.MustParsePrefix("10.128.2.0/23"); !p.Contains(netip.MustParseAddr("10.128.2.1")) {
		t.Fatal("test setup: n2's subnet")
	}
	r = tf.apply(command.ApplyConfig, pendingApply(wl("a", "n2", "10.128.2.1"), wl("c", "n2", "10.128.2.9")))
	if r.Err == nil || !strings.Contains(r.Err.Error(), "10.128.2.1") {
		t.Fatalf("asking for n2's gateway again: %v", r.Err)
	}
	noAddressTwice(t, tf, "at the end")
}
