package host

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/datapath/link"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// firstDatagramEchoed sends exactly one UDP datagram from the namespace at
// from to dst's echo server and reports whether its echo came back: the
// first packet in each direction must get through, with no retry.
func firstDatagramEchoed(from string, dst netip.Addr, wait time.Duration) (bool, error) {
	c, err := dialUDP(from, dst)
	if err != nil {
		return false, err
	}
	defer c.Close()
	msg := make([]byte, 16)
	rand.Read(msg)
	if _, err := c.Write(msg); err != nil {
		return false, err
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 64)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return false, nil // timeout, or an ICMP error
		}
		if bytes.Equal(buf[:n], msg) {
			return true, nil
		}
	}
}

// firstDatagrams sends one datagram between a workload on each pair of
// hosts (from the lower-numbered host if up, else the other way), one pair
// after the other, and returns the pairs whose first datagram got no echo.
func firstDatagrams(t *testing.T, wls []*testWorkload, up bool) []string {
	t.Helper()
	var lost []string
	for i := range wls {
		for j := i + 1; j < len(wls); j++ {
			from, to := wls[i], wls[j]
			if !up {
				from, to = to, from
			}
			ok, err := firstDatagramEchoed(from.nsPath, to.ip, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				lost = append(lost, fmt.Sprintf("%s -> %s", from.host.name, to.host.name))
			}
		}
	}
	return lost
}

func (l *lab) logTunnelNeighbors(t *testing.T) {
	t.Helper()
	for _, h := range l.hosts {
		t.Logf("%s tnl/arp/show:\n%s", h.name, appctl(h, "tnl/arp/show"))
	}
}

// kernelNeighbors returns a host's neighbour entries on br-phy.
func kernelNeighbors(t *testing.T, h *testHost) map[netip.Addr]link.Neighbor {
	t.Helper()
	lh, err := link.Open(h.nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lh.Close()
	ns, err := lh.Neighbors(UnderlayBridge)
	if err != nil {
		t.Fatal(err)
	}
	m := map[netip.Addr]link.Neighbor{}
	for _, n := range ns {
		m[n.IP] = n
	}
	return m
}

// TestFirstPacketToNewHost: once every host has realized the desired
// state, the very first datagram between workloads on two hosts that have
// never exchanged a packet gets through and is answered. Four hosts give
// six such pairs, tried one after the other, so every pair is fresh: with
// the userspace datapath, a host whose OVS has not learned the other's MAC
// drops the datagram (and the other host the echo). Then: a second Realize
// changes nothing; OVS losing its cache is repaired by the next Realize;
// a node leaving takes its kernel neighbour entry with it.
func TestFirstPacketToNewHost(t *testing.T) {
	t.Parallel()
	const n = 4
	l := newLab(t, n)
	var wls []*testWorkload
	for i, h := range l.hosts {
		wls = append(wls, l.addWorkload(h, "a", fmt.Sprintf("w%d", i+1), h.subnet.Addr().Next().Next().String()))
	}
	m := l.mirror(sdnv1.IsolationMode_ISOLATION_MODE_FLAT)
	start := time.Now()
	rs := l.realize(m)
	t.Logf("first Realize of %d hosts: %v", n, time.Since(start).Round(time.Millisecond))
	if lost := firstDatagrams(t, wls, true); len(lost) > 0 {
		t.Errorf("the first datagram between fresh pairs of hosts got no echo: %v", lost)
		l.logTunnelNeighbors(t)
	}
	for i, h := range l.hosts {
		kernel := kernelNeighbors(t, h)
		for _, o := range l.hosts {
			if o == h {
				continue
			}
			if k := kernel[o.underlay]; !k.Resolved() || !k.Managed {
				t.Errorf("%s: kernel neighbour entry for %s on %s: %+v (%s); want it resolved and managed", h.name, o.name, UnderlayBridge, k, k.StateString())
			}
		}
		if !strings.Contains(strings.Join(rs[i].Changes, "; "), "keep neighbour") {
			t.Errorf("%s: first Realize: %v; want neighbour entries among the changes", h.name, rs[i])
		}
	}

	t.Run("realize again changes nothing", func(t *testing.T) {
		for i, r := range l.realize(m) {
			if r.Changed() {
				t.Errorf("host %d: %v", i+1, r)
			}
		}
	})

	t.Run("OVS lost its cache", func(t *testing.T) {
		// The kernel's entries stay reachable, so the kernel does not
		// ARP; OVS may still learn a next hop again by itself (it snoops
		// ARP that takes its slow path, as every packet does once a
		// reconcile purged the datapath's flow cache). Whatever OVS did not
		// relearn, Realize copies from the kernel: afterwards OVS knows
		// every next hop, with the kernel's MAC.
		for _, h := range l.hosts {
			appctl(h, "tnl/arp/flush")
		}
		for i, r := range l.realize(m) {
			h := l.hosts[i]
			cache, err := h.dp.tunnelNeighbors(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			kernel := kernelNeighbors(t, h)
			for _, o := range l.hosts {
				if o == h {
					continue
				}
				if c, ok := cache[o.underlay]; !ok || c.stale || c.mac.String() != kernel[o.underlay].MAC.String() {
					t.Errorf("host %d after tnl/arp/flush and Realize (%v): OVS's entry for %s is %+v (in cache: %v), want %s", i+1, r, o.underlay, c, ok, kernel[o.underlay].MAC)
				}
			}
		}
		if lost := firstDatagrams(t, wls, false); len(lost) > 0 {
			t.Errorf("first datagram after OVS lost its cache got no echo: %v", lost)
			l.logTunnelNeighbors(t)
		}
	})

	t.Run("node removed", func(t *testing.T) {
		h4 := l.hosts[n-1]
		less := l.mirror(sdnv1.IsolationMode_ISOLATION_MODE_FLAT)
		delete(less.Nodes, h4.name)
		delete(less.Workloads, "a/"+wls[n-1].w.Name)
		for i, h := range l.hosts[:n-1] {
			r, err := h.dp.Apply(testCtx(t), less)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(r.Changes, "; "), "neighbour "+h4.underlay.String()+" no longer kept") {
				t.Errorf("host %d after %s left: %v; want its neighbour entry deleted", i+1, h4.name, r)
			}
			if k, ok := kernelNeighbors(t, h)[h4.underlay]; ok {
				t.Errorf("%s: neighbour entry for %s after it left: %+v", h.name, h4.name, k)
			}
		}
	})
}

// TestTunnelNeighborsOutliveAging: OVS forgets a tunnel neighbour not used
// for tnl/neigh/aging seconds (900 by default; 2 here, set before the
// first Realize so the refresher paces itself on it). Idle for more than
// twice that, the first datagram between two hosts still gets through:
// the refresher kept OVS's entries.
func TestTunnelNeighborsOutliveAging(t *testing.T) {
	t.Parallel()
	l := newLab(t, 2)
	var wls []*testWorkload
	for i, h := range l.hosts {
		if out := appctl(h, "tnl/neigh/aging", "2"); out != "OK" {
			t.Fatalf("%s: tnl/neigh/aging 2: %s", h.name, out)
		}
		wls = append(wls, l.addWorkload(h, "a", fmt.Sprintf("w%d", i+1), h.subnet.Addr().Next().Next().String()))
	}
	l.realize(l.mirror(sdnv1.IsolationMode_ISOLATION_MODE_FLAT))
	time.Sleep(5 * time.Second)
	for _, up := range []bool{true, false} {
		if lost := firstDatagrams(t, wls, up); len(lost) > 0 {
			t.Errorf("first datagram after 5 s idle (OVS aging 2 s) got no echo: %v", lost)
			l.logTunnelNeighbors(t)
		}
	}
}

func TestParseTunnelNeighbors(t *testing.T) {
	out := `IP                                            MAC                 Bridge
==========================================================================
198.18.0.2                                    5e:0b:56:6c:65:f2   br-phy
198.18.0.3                                    82:f7:de:7c:c8:12   br-phy STALE
198.18.0.4                                    a2:a0:32:b7:a6:9f   br-other
2001:db8::1                                   a2:a0:32:b7:a6:9e   br-phy
garbage
`
	got := parseTunnelNeighbors(out, "br-phy")
	want := map[string]string{"198.18.0.2": "5e:0b:56:6c:65:f2 false", "198.18.0.3": "82:f7:de:7c:c8:12 true"}
	if len(got) != len(want) {
		t.Errorf("got %d entries %v, want %v", len(got), got, want)
	}
	for ip, w := range want {
		if g := got[netip.MustParseAddr(ip)]; fmt.Sprintf("%s %v", g.mac, g.stale) != w {
			t.Errorf("%s: got %s %v, want %s", ip, g.mac, g.stale, w)
		}
	}
}
