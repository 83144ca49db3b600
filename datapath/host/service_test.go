package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/datapath/flows"
	"github.com/sdn-dev/sdn/datapath/ovs"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Every workload of the service tests answers its own name: over TCP on
// namePort (then closes), over UDP on nameUDPPort.
const (
	namePort    = 8080
	nameUDPPort = 5353
)

func startNamed(t *testing.T, w *testWorkload) {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	err := inNS(w.nsPath, func() error {
		var err error
		if ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", namePort)); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", nameUDPPort))
		return err
	})
	if err != nil {
		t.Fatalf("name server of %s: %v", w.w.Name, err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); pc.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(w.w.Name))
			c.Close()
		}
	})
	wg.Go(func() {
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(w.w.Name), from)
		}
	})
}

// askTCP opens n connections one after the other from the namespace at
// from to dst and returns who answered each ("" and the error for a
// connection that failed). Every answer must come from dst itself: the
// client connected to the VIP and its replies come back from it.
func askTCP(from string, dst netip.AddrPort, n int) answers {
	var names []string
	var errs []error
	err := inNS(from, func() error {
		for range n {
			name, err := askOnce(dst)
			names, errs = append(names, name), append(errs, err)
		}
		return nil
	})
	if err != nil {
		return answers{errs: []error{err}}
	}
	return answers{names, errs}
}

// answers are who answered each connection, and how each failed.
type answers struct {
	names []string
	errs  []error
}

func askOnce(dst netip.AddrPort) (string, error) {
	c, err := net.DialTimeout("tcp4", dst.String(), 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if got := c.RemoteAddr().(*net.TCPAddr).AddrPort(); got != dst {
		return "", fmt.Errorf("connected to %s, not %s", got, dst)
	}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	if err == nil && len(b) == 0 {
		err = errors.New("no answer")
	}
	return string(b), err
}

func tally(t *testing.T, a answers) map[string]int {
	names, errs := a.names, a.errs
	if len(errs) > len(names) {
		t.Fatalf("could not open connections: %v", errs)
	}
	t.Helper()
	counts := map[string]int{}
	for i, n := range names {
		if errs[i] != nil {
			t.Errorf("connection %d failed: %v", i, errs[i])
			continue
		}
		counts[n]++
	}
	return counts
}

// svcLab is two hosts: client c and endpoint e1 on h1, endpoints e2 and
// e3 on h2, all in network a.
type svcLab struct {
	*lab
	c, e1, e2, e3 *testWorkload
}

func newSvcLab(t *testing.T) *svcLab {
	l := newLab(t, 2)
	s := &svcLab{lab: l,
		c:  l.addWorkload(l.hosts[0], "a", "c", "10.128.0.10"),
		e1: l.addWorkload(l.hosts[0], "a", "e1", "10.128.0.11"),
		e2: l.addWorkload(l.hosts[1], "a", "e2", "10.128.2.11"),
		e3: l.addWorkload(l.hosts[1], "a", "e3", "10.128.2.12"),
	}
	for _, w := range []*testWorkload{s.c, s.e1, s.e2, s.e3} {
		startNamed(t, w)
	}
	return s
}

// service adds service a/name at vip with its endpoints to m; ports are
// "tcp/80" (to namePort) and "udp/53" (to nameUDPPort).
func service(m *model.Desired, name, vip string, affinity uint32, eps ...*testWorkload) {
	s := &sdnv1.Service{Name: name, Network: "a", Vip: vip, Ports: []*sdnv1.ServicePort{
		{Name: "http", Protocol: "tcp", Port: 80, TargetPort: namePort},
		{Name: "dns", Protocol: "udp", Port: 53, TargetPort: nameUDPPort},
	}}
	if affinity > 0 {
		s.SessionAffinity = &sdnv1.SessionAffinity{TimeoutSeconds: affinity}
	}
	se := &sdnv1.ServiceEndpoints{Service: "a/" + name}
	for _, w := range eps {
		se.Endpoints = append(se.Endpoints, &sdnv1.ServiceEndpoint{Workload: "a/" + w.w.Name, Ip: w.ip.String(), Node: w.host.name,
			Ports: []uint32{namePort, nameUDPPort}})
	}
	m.Services["a/"+name] = s
	m.ServiceEndpoints["a/"+name] = se
}

var (
	webVIP    = netip.MustParseAddr("172.30.0.10")
	stickyVIP = netip.MustParseAddr("172.30.0.11")
	selfVIP   = netip.MustParseAddr("172.30.0.12")
	noneVIP   = netip.MustParseAddr("172.30.0.14")
)

func (s *svcLab) model() *model.Desired {
	m := s.mirror(sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT)
	service(m, "web", webVIP.String(), 0, s.e1, s.e2, s.e3)
	service(m, "sticky", stickyVIP.String(), 60, s.e1, s.e2, s.e3)
	service(m, "self", selfVIP.String(), 0, s.c)
	service(m, "none", noneVIP.String(), 0)
	return m
}

func TestServices(t *testing.T) {
	s := newSvcLab(t)
	m := s.model()
	s.realize(m)
	web := netip.AddrPortFrom(webVIP, 80)

	t.Run("300 connections spread over three endpoints on two hosts", func(t *testing.T) {
		counts := tally(t, askTCP(s.c.nsPath, web, 300))
		for _, e := range []string{"e1", "e2", "e3"} {
			if counts[e] < 60 || counts[e] > 141 {
				t.Errorf("%s answered %d of 300; want 20–47%% (all: %v)", e, counts[e], counts)
			}
		}
		t.Logf("spread: %v", counts)
	})

	t.Run("session affinity keeps a client on one endpoint", func(t *testing.T) {
		// OVS performs a learn action when it pushes the datapath flow's
		// statistics (at once for the upcall, else within its
		// revalidation interval): give the first connection that long.
		first := tally(t, askTCP(s.c.nsPath, netip.AddrPortFrom(stickyVIP, 80), 1))
		time.Sleep(1200 * time.Millisecond)
		counts := tally(t, askTCP(s.c.nsPath, netip.AddrPortFrom(stickyVIP, 80), 30))
		if len(counts) != 1 || maps1(counts) != maps1(first) {
			t.Errorf("the first connection went to %v, the next 30 to %v; want all to one endpoint", first, counts)
		}
		learned := affinityFlows(t, s.hosts[0])
		if len(learned) == 0 {
			out, _ := s.hosts[0].ovs.Ofctl(testCtx(t), "-O", "OpenFlow15", "dump-flows", "unix:"+s.hosts[0].ovs.RunDir+"/br-int.mgmt")
			gr, _ := s.hosts[0].ovs.Ofctl(testCtx(t), "-O", "OpenFlow15", "dump-groups", "unix:"+s.hosts[0].ovs.RunDir+"/br-int.mgmt")
			lg, _ := exec.Command("sh", "-c", "grep -v INFO "+s.hosts[0].ovs.RunDir+"/*.log | tail -20").CombinedOutput()
			t.Fatalf("no learned affinity flow on h1:\n%s\n%s\n%s", out, gr, lg)
		}
		// A reconcile that changes flows leaves the learned flows alone.
		m2 := s.model()
		service(m2, "other", "172.30.0.20", 0, s.e2)
		s.realize(m2)
		if got := affinityFlows(t, s.hosts[0]); len(got) != len(learned) {
			t.Errorf("learned flows after a reconcile: %v; before: %v", got, learned)
		}
		counts2 := tally(t, askTCP(s.c.nsPath, netip.AddrPortFrom(stickyVIP, 80), 10))
		if len(counts2) != 1 || maps1(counts2) != maps1(counts) {
			t.Errorf("after the reconcile the client went to %v; before to %v", counts2, counts)
		}
		s.realize(m)
	})

	t.Run("hairpin: a client reaching itself through its service", func(t *testing.T) {
		a := askTCP(s.c.nsPath, netip.AddrPortFrom(selfVIP, 80), 5)
		names, errs := a.names, a.errs
		for i := range names {
			if errs[i] != nil || names[i] != "c" {
				t.Errorf("connection %d: %q, %v; want c's own answer", i, names[i], errs[i])
			}
		}
	})

	t.Run("a VIP:port without endpoints goes out through the gateway", func(t *testing.T) {
		// Stand in for the host's nftables reject: the host answers on the
		// VIP itself, which shows the packet came out of the gateway port
		// and the host's reply came back to the client.
		h1 := s.hosts[0]
		ipNS(t, h1.ns, "addr", "add", noneVIP.String()+"/32", "dev", "lo")
		var ln net.Listener
		if err := inNS(h1.nsPath, func() (err error) { ln, err = net.Listen("tcp4", noneVIP.String()+":80"); return }); err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write([]byte("host"))
				c.Close()
			}
		}()
		a := askTCP(s.c.nsPath, netip.AddrPortFrom(noneVIP, 80), 3)
		names, errs := a.names, a.errs
		for i := range names {
			if errs[i] != nil || names[i] != "host" {
				t.Errorf("connection %d to a service without endpoints: %q, %v; want the host's answer", i, names[i], errs[i])
			}
		}
	})

	t.Run("removing an endpoint under load: no failure, none reaches it after realize", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var names []string
		var errs []error
		var mu sync.Mutex
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = inNS(s.c.nsPath, func() error {
				for ctx.Err() == nil {
					n, err := askOnce(web)
					mu.Lock()
					names, errs = append(names, n), append(errs, err)
					mu.Unlock()
				}
				return nil
			})
		}()
		time.Sleep(300 * time.Millisecond)
		m2 := s.model()
		service(m2, "web", webVIP.String(), 0, s.e1, s.e2)
		rs := s.realize(m2)
		mu.Lock()
		mark := len(names)
		mu.Unlock()
		time.Sleep(500 * time.Millisecond)
		cancel()
		<-done
		for i, r := range rs {
			f := r.Flows
			if f.Added+f.Modified+f.Deleted != 0 || f.GroupsModified != 2 || f.GroupsAdded+f.GroupsDeleted != 0 {
				t.Errorf("h%d: one endpoint leaving changed %v; want two groups (its tcp and udp ports) modified and no flow", i+1, f)
			}
		}
		counts := tally(t, answers{names, errs})
		after := tally(t, answers{names[mark:], errs[mark:]})
		if after["e3"] != 0 || len(names)-mark < 10 {
			t.Errorf("after realize: %v over %d connections; want none to e3", after, len(names)-mark)
		}
		t.Logf("during the change: %v; after realize: %v", counts, after)
		s.realize(m)
	})

	t.Run("a UDP client moves at once when its endpoint leaves", func(t *testing.T) {
		c, err := dialUDPPort(s.c.nsPath, netip.AddrPortFrom(webVIP, 53))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		first, err := udpAsk(c)
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := udpAsk(c); again != first {
			t.Fatalf("one UDP flow answered by %q then %q", first, again)
		}
		var rest []*testWorkload
		for _, w := range []*testWorkload{s.e1, s.e2, s.e3} {
			if w.w.Name != first {
				rest = append(rest, w)
			}
		}
		m2 := s.model()
		service(m2, "web", webVIP.String(), 0, rest...)
		s.realize(m2)
		t.Log(appctl(s.hosts[0], "dpctl/dump-conntrack", "zone=1"))
		now, err := udpAsk(c)
		if err != nil || now == first || now == "" {
			t.Errorf("after %s left, the same UDP socket got %q, %v; want another endpoint at once", first, now, err)
		}
		s.realize(m)
	})

	t.Run("trace names the services stage", func(t *testing.T) {
		tr, err := s.hosts[0].dp.Trace(testCtx(t), TracePacket{InWorkload: "a/c", Dst: webVIP, Protocol: "tcp", Port: 80})
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, st := range tr.Steps {
			if st.Stage == string(flows.Services) && strings.Contains(st.Text, "service a/web") {
				found = true
			}
		}
		if !found {
			t.Errorf("trace has no services step naming a/web: %v", tr.Steps)
		}
	})
}

func maps1(m map[string]int) string {
	for k := range m {
		return k
	}
	return ""
}

// affinityFlows returns h's learned flows (AffinityCookie's tag).
func affinityFlows(t *testing.T, h *testHost) []ovs.Flow {
	t.Helper()
	fs, err := h.ovs.DumpFlows(testCtx(t), IntegrationBridge, flows.AffinityCookie, ovs.TagMask)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func ipNS(t *testing.T, ns string, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("ip %v: %v: %s", args, err, out)
	}
}

func dialUDPPort(from string, dst netip.AddrPort) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := inNS(from, func() (err error) {
		c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(dst))
		return err
	})
	return c, err
}

// udpAsk sends one datagram and returns the name that answers (one
// second, one try).
func udpAsk(c *net.UDPConn) (string, error) {
	if _, err := c.Write([]byte("who")); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	return string(buf[:n]), err
}
