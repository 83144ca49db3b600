package ovs

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/digitalocean/go-openvswitch/ovsdb"

	"github.com/sdn-dev/sdn/datapath/link"
)

// The ADD path's OVS work is adding a workload's port and learning its
// OpenFlow port. EnsurePort does it with two ovs-vsctl runs (add-port,
// which waits for ovs-vswitchd to take the change, then get ofport).
// BenchmarkPortAdd compares that with github.com/digitalocean/go-openvswitch's
// OVSDB JSON-RPC client on a connection kept open: one transaction
// inserting the Interface and Port, adding the port to the bridge and
// bumping next_cfg (what ovs-vsctl sends), then one holding a "wait" until
// OVS gave the interface its ofport, and a select of it. Both on the same
// userspace bridge, each port deleted (not timed) after it was measured.
// The figure is in docs/performance.md, "Attach (CNI ADD)".
func BenchmarkPortAdd(b *testing.B) {
	needOVS(b)
	inst := startTestInstance(b, "")
	mustBridge(b, inst, "br-bench")
	ctx := testCtx(b)
	veth := func(i int) string {
		name := fmt.Sprintf("bp%d", i)
		h, err := link.Open(link.NSPath(inst.NetNS))
		if err != nil {
			b.Fatal(err)
		}
		defer h.Close()
		if _, err := h.EnsureBridge(name, 1500); err != nil { // any system device will do
			b.Fatal(err)
		}
		return name
	}
	b.Run("ovs-vsctl", func(b *testing.B) {
		i := 0
		for b.Loop() {
			b.StopTimer()
			name := veth(i)
			i++
			b.StartTimer()
			if n, err := inst.EnsurePort(ctx, "br-bench", name, 0); err != nil || n <= 0 {
				b.Fatal(n, err)
			}
			b.StopTimer()
			cleanupPort(b, inst, name)
			b.StartTimer()
		}
	})
	b.Run("ovsdb-client", func(b *testing.B) {
		c, err := ovsdb.Dial("unix", filepath.Join(inst.RunDir, "db.sock"))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		i := 0
		for b.Loop() {
			b.StopTimer()
			name := veth(1000 + i)
			i++
			b.StartTimer()
			if n, err := addPortDB(ctx, c, "br-bench", name); err != nil || n <= 0 {
				b.Fatal(n, err)
			}
			b.StopTimer()
			cleanupPort(b, inst, name)
			b.StartTimer()
		}
	})
}

func cleanupPort(b *testing.B, inst *Instance, name string) {
	if err := inst.DeletePort(testCtx(b), "br-bench", name); err != nil {
		b.Fatal(err)
	}
	h, err := link.Open(link.NSPath(inst.NetNS))
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	if err := h.DeleteLink(name); err != nil {
		b.Fatal(err)
	}
}

// TestAddPort: AddPort plugs a port and returns its OpenFlow port, the one
// ovs-vsctl reports; again, it returns the same (through EnsurePort); a
// missing bridge is an error.
func TestAddPort(t *testing.T) {
	needOVS(t)
	inst := startTestInstance(t, "")
	mustBridge(t, inst, "br-ap")
	h, err := link.Open(link.NSPath(inst.NetNS))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.EnsureBridge("ap0", 1500); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	n, err := inst.AddPort(ctx, "br-ap", "ap0")
	if err != nil || n <= 0 {
		t.Fatalf("AddPort: %d, %v", n, err)
	}
	ports, err := inst.Ports(ctx, "br-ap")
	if err != nil || ports["ap0"] != n {
		t.Fatalf("ovs-vsctl sees ports %v (%v); AddPort returned %d", ports, err, n)
	}
	if again, err := inst.AddPort(ctx, "br-ap", "ap0"); err != nil || again != n {
		t.Fatalf("AddPort again: %d, %v; want %d", again, err, n)
	}
	if _, err := inst.AddPort(ctx, "br-none", "ap0"); err == nil {
		t.Fatal("AddPort to a missing bridge: no error")
	}
}
