package integration

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/integration/lab"
	"github.com/sdn-dev/sdn/model"
)

// servicesHCL declares the test's services in proj1: echo over app=echo
// (tcp 80 → 8080, node port 30081; udp 53 → 5353), sticky over the same
// workloads with client-IP affinity, and empty over nothing.
const servicesHCL = `
service "echo" {
  network  = "proj1"
  selector { match_labels = { app = "echo" } }
  port {
    name        = "http"
    port        = 80
    target_port = 8080
    node_port   = 30081
  }
  port {
    name        = "dns"
    port        = 53
    protocol    = "udp"
    target_port = 5353
  }
}

service "sticky" {
  network  = "proj1"
  selector { match_labels = { app = "echo" } }
  port {
    port        = 80
    target_port = 8080
  }
  session_affinity { timeout = "60s" }
}

service "empty" {
  network  = "proj1"
  selector { match_labels = { app = "nothing" } }
  port { port = 80 }
  port {
    port     = 53
    protocol = "udp"
  }
}
`

// svcLab is a 3-host lab with three echo endpoints on two hosts (ep1 on
// host1, ep2 and ep3 on host2), each answering its ID on tcp/8080 and
// udp/5353, a client on host3, and the services of servicesHCL.
type svcLab struct {
	l      *lab.Lab
	eps    map[string]*lab.Workload // by ID
	client *lab.Workload
	vips   map[string]string // service name → VIP
	gws    map[string]string // host → gateway
}

func newSvcLab(t *testing.T) *svcLab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, _ := upLab(ctx, t, "svc", 3)
	s := &svcLab{l: l, eps: map[string]*lab.Workload{}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	attach := func(host, wname string, labels map[string]string, serve bool) {
		defer wg.Done()
		w, err := l.Attach(host, "proj1", wname, labels)
		if err == nil && serve {
			var x *lab.Whoami
			if x, err = l.ServeWhoami(w, 8080); err == nil {
				t.Cleanup(x.Stop)
				x, err = l.ServeWhoami(w, 5353)
				if err == nil {
					t.Cleanup(x.Stop)
				}
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, err.Error())
			return
		}
		if serve {
			s.eps[w.ID()] = w
		} else {
			s.client = w
		}
	}
	wg.Add(4)
	go attach("host1", "ep1", map[string]string{"app": "echo"}, true)
	go attach("host2", "ep2", map[string]string{"app": "echo"}, true)
	go attach("host2", "ep3", map[string]string{"app": "echo"}, true)
	go attach("host3", "client", map[string]string{"app": "client"}, false)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("attach: %s", strings.Join(errs, "; "))
	}
	file := writeFile(t, t.TempDir(), "services.hcl", servicesHCL)
	if out, err := l.ApplyFile(file); err != nil {
		t.Fatalf("apply services: %v\n%s", err, out)
	}
	list, gws, err := l.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.vips, s.gws = map[string]string{}, gws
	for _, v := range list.GetServices() {
		s.vips[v.GetName()] = v.GetVip()
	}
	for _, n := range []string{"echo", "sticky", "empty"} {
		if s.vips[n] == "" {
			t.Fatalf("service %s has no VIP: %v", n, list.GetServices())
		}
	}
	return s
}

// connect runs count connections from the client (or from w) to VIP:port
// of service.
func (s *svcLab) connect(t *testing.T, from *lab.Workload, service string, port int, proto string, count int, interval time.Duration) lab.Connections {
	t.Helper()
	target := net.JoinHostPort(s.vips[service], strconv.Itoa(port))
	c, err := s.l.Connect(from, target, proto, "", count, 2*time.Second, interval)
	if err != nil {
		t.Fatalf("connect %s from %s: %v", target, from.ID(), err)
	}
	return c
}

func TestServices(t *testing.T) {
	if testing.Short() {
		t.Skip("brings up a 3-host lab")
	}
	s := newSvcLab(t)
	t.Run("spread", s.testSpread)
	t.Run("affinity", s.testAffinity)
	t.Run("udp", s.testUDP)
	t.Run("hairpin", s.testHairpin)
	t.Run("no endpoints", s.testNoEndpoints)
	t.Run("by name", s.testByName)
	t.Run("node port", s.testNodePort)
	t.Run("outside", s.testOutside)
	t.Run("host to VIP", s.testHostToVIP)
	t.Run("endpoint removed while looping", s.testRemoval)
	t.Run("endpoints' policy decides, node ports included", s.testPolicy)
}

// testSpread: 300 new connections from one client spread over all three
// endpoints, each taking between 20% and 47%.
func (s *svcLab) testSpread(t *testing.T) {
	c := s.connect(t, s.client, "echo", 80, "tcp", 300, 0)
	if c.Failed() > 0 {
		t.Fatalf("%d of 300 connections failed: %v", c.Failed(), c.Failures)
	}
	for id := range s.eps {
		share := float64(c.By[id]) / 300
		if share < 0.20 || share > 0.47 {
			t.Errorf("endpoint %s took %d of 300 connections (%.0f%%), want 20%%-47%%; all: %v", id, c.By[id], share*100, c.By)
		}
	}
	t.Logf("300 connections: %v", c.By)
}

// testAffinity: with client-IP affinity every connection of one client
// reaches one endpoint.
func (s *svcLab) testAffinity(t *testing.T) {
	c := s.connect(t, s.client, "sticky", 80, "tcp", 40, 0)
	if c.Failed() > 0 || len(c.By) != 1 {
		t.Fatalf("40 connections with affinity reached %v (failures %v), want one endpoint", c.By, c.Failures)
	}
}

// testUDP: the service's udp port reaches the endpoints' 5353.
func (s *svcLab) testUDP(t *testing.T) {
	c := s.connect(t, s.client, "echo", 53, "udp", 30, 0)
	if c.Failed() > 0 || len(c.By) < 2 {
		t.Fatalf("30 UDP exchanges: %v, failures %v; want answers from several endpoints", c.By, c.Failures)
	}
}

// testHairpin: an endpoint that reaches its own service lands on itself
// sometimes, and those connections work too.
func (s *svcLab) testHairpin(t *testing.T) {
	ep1 := s.eps["host1/ep1"]
	c := s.connect(t, ep1, "echo", 80, "tcp", 60, 0)
	if c.Failed() > 0 {
		t.Fatalf("%d of 60 connections from an endpoint to its service failed: %v (reached %v)", c.Failed(), c.Failures, c.By)
	}
	if c.By[ep1.ID()] == 0 {
		t.Fatalf("60 connections from %s never landed on itself: %v", ep1.ID(), c.By)
	}
}

// testNoEndpoints: a service without endpoints refuses at once (TCP reset,
// ICMP port unreachable), it does not time out.
func (s *svcLab) testNoEndpoints(t *testing.T) {
	for _, p := range []struct {
		proto string
		port  int
	}{{"tcp", 80}, {"udp", 53}} {
		start := time.Now()
		c := s.connect(t, s.client, "empty", p.port, p.proto, 3, 0)
		if c.Failures["refused"] != 3 {
			t.Errorf("%s to a service without endpoints: %v %v, want 3 refused", p.proto, c.By, c.Failures)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s refusals took %v: they waited for something", p.proto, d)
		}
	}
}

// testByName: echo.proj1.<domain> resolves through the client's host's DNS
// and the connection by name works.
func (s *svcLab) testByName(t *testing.T) {
	dns := net.JoinHostPort(s.gws[s.client.Host], "53")
	target := net.JoinHostPort("echo.proj1."+model.DefaultDNSDomain, "80")
	c, err := s.l.Connect(s.client, target, "tcp", dns, 10, 2*time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Failed() > 0 {
		log, _ := os.ReadFile(filepath.Join(s.l.HostDir(3), "sdnd.log"))
		var dnsLines []string
		for _, line := range strings.Split(string(log), "\n") {
			if strings.Contains(line, "dns") || strings.Contains(line, "DNS") {
				dnsLines = append(dnsLines, line)
			}
		}
		t.Fatalf("connections by name failed: %v %+v\nhost3's DNS log:\n%s", c.Failures, c.List, strings.Join(dnsLines, "\n"))
	}
	// A workload by name too.
	ep := s.eps["host2/ep2"]
	target = net.JoinHostPort(ep.SDNName()+".proj1."+model.DefaultDNSDomain, "8080")
	if c, err = s.l.Connect(s.client, target, "tcp", dns, 2, 2*time.Second, 0); err != nil || c.By[ep.ID()] != 2 {
		t.Fatalf("connections to workload %s by name: %v %v (%v)", ep.SDNName(), c.By, c.Failures, err)
	}
}

// testNodePort: port 30081 of host1's underlay address, from host3's
// namespace (another host's underlay), reaches the endpoints.
func (s *svcLab) testNodePort(t *testing.T) {
	target := net.JoinHostPort(s.l.HostIP(1).String(), "30081")
	c, err := s.l.ConnectIn(s.l.HostNS(3), target, "tcp", "", 30, 2*time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Failed() > 0 || len(c.By) < 2 {
		t.Fatalf("node port from host3: %v, failures %v; want every connection answered, by several endpoints", c.By, c.Failures)
	}
}

// testOutside: a workload reaches a host outside the cluster, which sees
// the workload's host's underlay address as the source.
func (s *svcLab) testOutside(t *testing.T) {
	ns, ip, err := s.l.AddOutside()
	if err != nil {
		t.Fatal(err)
	}
	x, err := s.l.ServeWhoamiIn(ns, 9000, "@source")
	if err != nil {
		t.Fatal(err)
	}
	defer x.Stop()
	c, err := s.l.Connect(s.client, net.JoinHostPort(ip.String(), "9000"), "tcp", "", 3, 2*time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := s.l.HostIP(3).String()
	if c.By[want] != 3 {
		t.Fatalf("the outside saw %v (failures %v); want every connection from %s, host3's underlay address", c.By, c.Failures, want)
	}
}

// testRemoval: while the client connects in a loop, ep3 leaves the
// service (relabelled); no connection fails, and none that starts after
// the change is realized on every host reaches ep3.
func (s *svcLab) testRemoval(t *testing.T) {
	ep3 := s.eps["host2/ep3"]
	var (
		c    lab.Connections
		cerr error
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		c, cerr = s.l.Connect(s.client, net.JoinHostPort(s.vips["echo"], "80"), "tcp", "", 200, 2*time.Second, 20*time.Millisecond)
	}()
	// Two seconds of the loop before the change: the prober's own start
	// (a process in the client's namespace) can take most of the first
	// under load.
	time.Sleep(2 * time.Second)
	changed := time.Now()
	if out, err := s.l.Sdnctl("label", "workload", "proj1/"+ep3.SDNName(), "app-", "--wait"); err != nil {
		t.Fatalf("relabel: %v\n%s", err, out)
	}
	realized := time.Now()
	<-done
	if cerr != nil {
		t.Fatal(cerr)
	}
	if c.Failed() > 0 {
		t.Fatalf("%d connections failed while an endpoint left: %v", c.Failed(), c.Failures)
	}
	before, after := 0, 0
	for _, x := range c.List {
		switch {
		case x.At.Before(changed) && x.By == ep3.ID():
			before++
		case x.At.After(realized) && x.By == ep3.ID():
			after++
		}
	}
	if after > 0 {
		t.Fatalf("%d connections started after the change was realized reached the removed endpoint %s", after, ep3.ID())
	}
	if before == 0 {
		t.Fatalf("no connection reached %s before it left (the loop started too late?): %v", ep3.ID(), c.By)
	}
	t.Logf("ep3 answered %d connections before it left and none after; all: %v", before, c.By)
}

// testHostToVIP: a host reaches a VIP through its gateway port.
func (s *svcLab) testHostToVIP(t *testing.T) {
	target := net.JoinHostPort(s.vips["echo"], "80")
	c, err := s.l.ConnectIn(s.l.HostNS(3), target, "tcp", "", 20, 2*time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Failed() > 0 || len(c.By) < 2 {
		t.Fatalf("host3 to the VIP: %v, failures %v; want every connection answered, by several endpoints", c.By, c.Failures)
	}
}

// denyEchoHCL isolates the echo endpoints' ingress with no rule.
const denyEchoHCL = `
policy "deny-echo" {
  network = "proj1"
  workloads {
    match_labels = { app = "echo" }
  }
  isolate = ["ingress"]
}
`

// testPolicy: with the endpoints isolated, nothing gets through the
// service: not from a workload, not through a node port, also not to the
// endpoint on the node port's own host (a host's exemption from its
// workloads' policies covers its direct connections, not a service's).
func (s *svcLab) testPolicy(t *testing.T) {
	file := writeFile(t, t.TempDir(), "deny.hcl", denyEchoHCL)
	if out, err := s.l.ApplyFile(file); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	defer func() {
		if out, err := s.l.Sdnctl("delete", "policy", "proj1/deny-echo"); err != nil {
			t.Errorf("delete the policy: %v\n%s", err, out)
		}
	}()
	c := s.connect(t, s.client, "echo", 80, "tcp", 6, 0)
	if len(c.By) > 0 {
		t.Errorf("a workload reached isolated endpoints through the service: %v", c.By)
	}
	// host1's node port: ep1 is on host1 itself.
	target := net.JoinHostPort(s.l.HostIP(1).String(), "30081")
	c, err := s.l.ConnectIn(s.l.HostNS(3), target, "tcp", "", 12, 300*time.Millisecond, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.By) > 0 {
		t.Errorf("the node port reached isolated endpoints: %v", c.By)
	}
}
