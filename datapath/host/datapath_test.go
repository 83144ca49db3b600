package host

import (
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

type reach struct {
	from, to string // workload names, or "host1"/"host2" for a host's namespace
	want     bool
}

// checkReach sends a UDP echo for every case, in parallel, and reports the
// ones whose outcome differs from want.
func (l *lab) checkReach(t *testing.T, cases []reach) {
	t.Helper()
	ns := func(name string) (string, netip.Addr) {
		for i, h := range l.hosts {
			if name == fmt.Sprintf("host%d", i+1) {
				return h.nsPath, netip.Addr{}
			}
		}
		for _, w := range l.wls {
			if w.w.Name == name {
				return w.nsPath, w.ip
			}
		}
		t.Fatalf("no workload %q", name)
		return "", netip.Addr{}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	for _, c := range cases {
		from, _ := ns(c.from)
		_, dst := ns(c.to)
		wg.Go(func() {
			got, err := udpReaches(from, dst, 300*time.Millisecond)
			if err != nil || got != c.want {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%s -> %s (%s): reached=%v, want %v (err %v)", c.from, c.to, dst, got, c.want, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("UDP reachability:\n  %s", strings.Join(bad, "\n  "))
		for _, h := range l.hosts {
			t.Logf("%s ovs/route/show:\n%s\ntnl/arp/show:\n%s", h.name, appctl(h, "ovs/route/show"), appctl(h, "tnl/arp/show"))
		}
	}
}

// TestTwoHosts realizes one desired state on two hosts and sends real
// packets: isolation by network, across the tunnel and on one host, TCP
// included; a second Realize changes nothing; flat mode opens all; a
// removed workload loses its port and flows.
func TestTwoHosts(t *testing.T) {
	t.Parallel()
	l := newLab(t, 2)
	h1, h2 := l.hosts[0], l.hosts[1]
	l.addWorkload(h1, "a", "a1", "10.128.0.2")
	l.addWorkload(h1, "b", "b1", "10.128.0.3")
	l.addWorkload(h1, "admin", "adm1", "10.128.0.4")
	l.addWorkload(h1, "a", "a1x", "10.128.0.5")
	a2 := l.addWorkload(h2, "a", "a2", "10.128.2.2")
	l.addWorkload(h2, "b", "b2", "10.128.2.3")
	l.addWorkload(h2, "admin", "adm2", "10.128.2.4")

	m := l.mirror(sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT)
	first := l.realize(m)
	for i, r := range first {
		if len(r.PortsAdded) == 0 || r.Flows.Added == 0 || r.Workloads == 0 {
			t.Errorf("host %d: first Realize did too little: %v", i+1, r)
		}
		t.Logf("host %d first Realize: %v", i+1, r)
	}

	t.Run("multitenant", func(t *testing.T) {
		l.checkReach(t, []reach{
			{"a1", "a1x", true}, {"a1x", "a1", true}, // same host, same network
			{"a1", "a2", true}, {"a2", "a1", true}, // across the tunnel
			{"b1", "a1", false}, {"a1", "b1", false}, {"b2", "a1", false}, {"b1", "a2", false}, {"a2", "b1", false},
			{"b1", "b2", true},
			{"adm1", "a1", true}, {"a1", "adm1", true}, {"adm1", "b2", true}, {"b2", "adm1", true},
			{"adm2", "a1", true}, {"b1", "adm2", true}, {"adm1", "adm2", true},
			{"host1", "a1", true}, {"host1", "a2", true}, {"host2", "b1", true}, {"host2", "adm2", true},
		})
		for _, c := range []struct{ from, to *testWorkload }{{l.wls[0], a2}, {a2, l.wls[0]}, {l.wls[0], l.wls[3]}} {
			if err := tcpEcho(c.from.nsPath, c.to.ip, 256<<10); err != nil {
				t.Errorf("TCP %s -> %s: %v", c.from.w.Name, c.to.w.Name, err)
			}
		}
		t.Logf("host 1 ovs/route/show:\n%s\ntnl/arp/show:\n%s", appctl(h1, "ovs/route/show"), appctl(h1, "tnl/arp/show"))
		if _, err := exec.LookPath("ping"); err == nil {
			// ICMP, and no duplicate replies: the host's kernel must not
			// answer for frames it sees on the underlay or a workload's veth.
			ns := "sdnh-" + l.id + "-h1-a1"
			for _, dst := range []string{a2.ip.String(), "10.128.0.1", "10.128.2.1"} {
				out, err := exec.Command("ip", "netns", "exec", ns, "ping", "-c", "2", "-i", "0.2", "-W", "1", dst).CombinedOutput()
				if err != nil || !strings.Contains(string(out), " 0% packet loss") || strings.Contains(string(out), "duplicates") {
					t.Errorf("ping a1 -> %s: %v\n%s", dst, err, out)
				}
			}
			out, err := exec.Command("ip", "netns", "exec", ns, "ip", "neigh", "show", "10.128.0.1").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "lladdr 0a:58:0a:80:00:01") {
				t.Errorf("a1's neighbour entry for its gateway: %v %s; want the gateway's MAC 0a:58:0a:80:00:01", err, out)
			}
		}
	})

	t.Run("realize again changes nothing", func(t *testing.T) {
		for i, r := range l.realize(m) {
			if r.Changed() || r.Flows.Unchanged != first[i].Flows.Added {
				t.Errorf("host %d: second Realize: %v; want no change and %d unchanged flows", i+1, r, first[i].Flows.Added)
			}
		}
	})

	t.Run("flat", func(t *testing.T) {
		rs := l.realize(l.mirror(sdnv1.IsolationMode_ISOLATION_MODE_FLAT))
		for i, r := range rs {
			if !r.Flows.Changed() || len(r.PortsAdded)+len(r.PortsDeleted)+len(r.Changes) > 0 {
				t.Errorf("host %d: switching to flat: %v; want flow changes only", i+1, r)
			}
		}
		l.checkReach(t, []reach{
			{"b1", "a1", true}, {"a1", "b1", true}, {"b2", "a1", true}, {"b1", "a2", true}, {"a2", "b1", true}, {"a1", "a2", true},
		})
	})

	t.Run("CNI plugs before the workload is desired", func(t *testing.T) {
		ctx := testCtx(t)
		flat := sdnv1.IsolationMode_ISOLATION_MODE_FLAT
		late := l.addWorkload(h2, "a", "late", "10.128.2.9")
		l.wls = l.wls[:len(l.wls)-1] // the mirror has not heard of it yet
		ifname := HostIfname(late.w)
		port, err := h2.dp.PlugWorkload(ctx, ifname)
		if again, err2 := h2.dp.PlugWorkload(ctx, ifname); err != nil || err2 != nil || port <= gatewayOFPort || again != port {
			t.Fatalf("PlugWorkload twice = %d, %v; %d, %v", port, err, again, err2)
		}
		if _, err := h2.dp.PlugWorkload(ctx, "eth0"); err == nil {
			t.Error("PlugWorkload(eth0): no error")
		}
		if r := l.realize(l.mirror(flat))[1]; r.Changed() {
			t.Errorf("Realize before the mirror has the plugged workload: %v; want its port kept and nothing changed", r)
		}
		l.wls = append(l.wls, late)
		r := l.realize(l.mirror(flat))[1]
		if len(r.PortsAdded)+len(r.PortsDeleted) > 0 || r.Flows.Added == 0 || r.Workloads != 4 {
			t.Errorf("Realize with the plugged workload: %v; want its flows added on its existing port", r)
		}
		l.checkReach(t, []reach{{"a1", "late", true}, {"late", "b1", true}})
		if err := h2.dp.UnplugWorkload(ctx, ifname); err != nil {
			t.Fatal(err)
		}
		if err := h2.dp.UnplugWorkload(ctx, ifname); err != nil {
			t.Errorf("second UnplugWorkload: %v", err)
		}
		l.wls = l.wls[:len(l.wls)-1]
		if r := l.realize(l.mirror(flat))[1]; r.Flows.Deleted == 0 || len(r.PortsAdded)+len(r.PortsDeleted) > 0 {
			t.Errorf("Realize after CNI DEL: %v; want the workload's flows deleted", r)
		}
	})

	t.Run("workload removed", func(t *testing.T) {
		gone := l.wls[3] // a1x
		l.wls = slices.Delete(slices.Clone(l.wls), 3, 4)
		rs := l.realize(l.mirror(sdnv1.IsolationMode_ISOLATION_MODE_FLAT))
		if r := rs[0]; len(r.PortsDeleted) != 1 || r.Flows.Deleted == 0 {
			t.Errorf("host 1 after removing a1x: %v; want its port and flows deleted", r)
		}
		if r := rs[1]; r.Changed() {
			t.Errorf("host 2 after removing a1x (on host 1): %v; want no change", r)
		}
		l.wls = append(l.wls, gone) // still a namespace with an echo server
		l.checkReach(t, []reach{{"a1", "a1x", false}, {"a1", "a2", true}})
	})
}
