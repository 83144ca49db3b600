package dns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestStartMoves: Start with the same address keeps the sockets; with
// another it moves there and the old one stops answering.
func TestStartMoves(t *testing.T) {
	s, _, _ := startDNS(t)
	first := s.Addr()
	if err := s.Start("127.0.0.1:0"); err != nil || s.Addr() != first {
		t.Fatalf("Start again with the same address: %v, now on %s (was %s)", err, s.Addr(), first)
	}
	if err := s.Start("127.0.0.2:0"); err != nil {
		t.Fatal(err)
	}
	if r := ask(t, "udp", s.Addr(), "web.proj1.sdn.local", mdns.TypeA); len(r.Answer) != 1 {
		t.Fatalf("on the new address: %v", r)
	}
	c := &mdns.Client{Net: "tcp", Timeout: time.Second}
	q := new(mdns.Msg)
	q.SetQuestion("web.proj1.sdn.local.", mdns.TypeA)
	if _, _, err := c.Exchange(q, first); err == nil {
		t.Fatalf("the old address %s still answers", first)
	}
	s.Close()
	if s.Addr() != "" {
		t.Fatalf("closed, still on %s", s.Addr())
	}
}

// TestListenBeforeTheAddress: in a namespace of its own, the server is
// started (by Run) on a gateway address the host does not have yet, and
// answers over UDP and TCP once the address is added, as when the agent
// starts before the gateway device has its address.
func TestListenBeforeTheAddress(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	b := make([]byte, 4)
	rand.Read(b)
	name := "sdndns-" + hex.EncodeToString(b)
	path, err := link.NewNS(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := link.DeleteNS(name); err != nil {
			t.Errorf("delete namespace %s: %v", name, err)
		}
	})
	const gw = "198.18.200.1"
	inNS(t, path, func() {
		d, n := newFakeDesired(), &fakeNames{}
		s := New(Config{Desired: d, Names: n, Upstreams: []string{}, Logger: discard})
		var addr atomic.Value
		addr.Store("")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		// Run's sockets are made on its goroutine's thread: in the namespace.
		go func() {
			defer close(done)
			inNS(t, path, func() { s.Run(ctx, func() string { return addr.Load().(string) }) })
		}()
		defer func() { cancel(); <-done }()
		addr.Store(gw + ":53")
		waitFor(t, func() bool { return s.Addr() == gw+":53" })
		addLoopbackAddr(t, gw)
		for _, netw := range []string{"udp", "tcp"} {
			if r := ask(t, netw, gw+":53", "web.proj1.sdn.local", mdns.TypeA); !slices.Equal(addresses(r.Answer), []string{"172.30.0.10"}) {
				t.Errorf("over %s on %s: %v", netw, gw, r)
			}
		}
	})
}

// inNS runs fn on a thread in the namespace at path (sockets made there
// stay there).
func inNS(t *testing.T, path string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	h, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic("cannot return to the test's namespace: " + err.Error())
		}
	}()
	fn()
}

// addLoopbackAddr adds ip/32 to lo in the current thread's namespace.
func addLoopbackAddr(t *testing.T, ip string) {
	t.Helper()
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(ip), Mask: net.CIDRMask(32, 32)}}); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
	}
}

// TestGatewayAddr: the host's gateway from the desired state, once known.
func TestGatewayAddr(t *testing.T) {
	d := newFakeDesired()
	addr := GatewayAddr(d, "host1")
	if a := addr(); a != "" {
		t.Fatalf("before the host registers: %q", a)
	}
	d.change(func(m *model.Desired) { m.Nodes["host1"] = &sdnv1.Node{Name: "host1", GatewayIp: "10.128.0.1"} })
	if a := addr(); a != "10.128.0.1:53" {
		t.Fatalf("registered: %q", a)
	}
}
