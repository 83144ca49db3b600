package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Services lists the lab's services with their endpoints (and the cluster
// settings, for the DNS domain), and the gateway address of each host
// (where its DNS server answers).
func (l *Lab) Services(ctx context.Context) (*sdnv1.ListResponse, map[string]string, error) {
	conn, err := l.Dial()
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	c := sdnv1.NewConfigServiceClient(conn)
	svcs, err := c.List(ctx, &sdnv1.ListRequest{Kind: "services"})
	if err != nil {
		return nil, nil, fmt.Errorf("list services: %w", err)
	}
	nodes, err := c.List(ctx, &sdnv1.ListRequest{Kind: "nodes"})
	if err != nil {
		return nil, nil, fmt.Errorf("list nodes: %w", err)
	}
	gws := map[string]string{}
	for _, n := range nodes.GetNodes() {
		gws[n.GetName()] = n.GetGatewayIp()
	}
	cl, err := c.List(ctx, &sdnv1.ListRequest{Kind: "cluster"})
	if err != nil {
		return nil, nil, fmt.Errorf("read the cluster settings: %w", err)
	}
	svcs.Cluster = cl.GetCluster()
	return svcs, gws, nil
}

// Whoami is `sdnprobe whoami` in a workload: every TCP connection and UDP
// datagram to port is answered with the workload's ID ("host2/proj1").
type Whoami struct{ s *Server }

// ServeWhoami starts `sdnprobe whoami` on port in w's namespace,
// answering w's ID.
func (l *Lab) ServeWhoami(w *Workload, port int) (*Whoami, error) {
	return l.ServeWhoamiIn(w.NS, port, w.ID())
}

// ServeWhoamiIn starts `sdnprobe whoami` on port in namespace ns,
// answering name ("@source": the client's address).
func (l *Lab) ServeWhoamiIn(ns string, port int, name string) (*Whoami, error) {
	cmd := exec.Command("ip", "netns", "exec", ns, filepath.Join(l.Bin, "sdnprobe"), "whoami",
		"-port", strconv.Itoa(port), "-token", name)
	s, err := startReady(cmd, &Workload{Host: ns, Name: name})
	if err != nil {
		return nil, err
	}
	return &Whoami{s: s}, nil
}

// Stop ends the server.
func (x *Whoami) Stop() { x.s.Stop() }

// Connections is what `sdnprobe connect` saw: how many connections each
// endpoint answered, and how each failed connection failed.
type Connections struct {
	By       map[string]int // endpoint ID → connections
	Failures map[string]int // "refused", "timeout", ... → connections
	List     []Conn         // one per connection, in order
}

// Conn is one connection: who answered (empty when it failed), how it
// failed, and when it started.
type Conn struct {
	By, Failure string
	At          time.Time
}

// Failed is how many connections failed.
func (c Connections) Failed() int {
	n := 0
	for _, v := range c.Failures {
		n += v
	}
	return n
}

// Connect makes count new connections from w to target ("ip:port" or
// "name:port", names resolved by the DNS server at dns when given), one
// every interval, each with timeout.
func (l *Lab) Connect(w *Workload, target, proto, dns string, count int, timeout, interval time.Duration) (Connections, error) {
	return l.ConnectIn(w.NS, target, proto, dns, count, timeout, interval)
}

// ConnectIn is Connect from namespace ns (a host's, the outside's).
func (l *Lab) ConnectIn(ns, target, proto, dns string, count int, timeout, interval time.Duration) (Connections, error) {
	args := []string{filepath.Join(l.Bin, "sdnprobe"), "connect", "-target", target, "-proto", proto,
		"-count", strconv.Itoa(count), "-timeout", timeout.String(), "-interval", interval.String()}
	if dns != "" {
		args = append(args, "-dns", dns)
	}
	out, err := l.Exec(ns, args...)
	if err != nil {
		return Connections{}, err
	}
	return parseConnections(out)
}

// parseConnections reads `sdnprobe connect`'s lines ("ok NAME MS", "fail:
// WHY MS", "summary ...").
func parseConnections(out string) (Connections, error) {
	c := Connections{By: map[string]int{}, Failures: map[string]int{}}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, "summary") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		ms, err := strconv.ParseInt(line[i+1:], 10, 64)
		if i < 0 || err != nil {
			return c, fmt.Errorf("sdnprobe connect: unreadable line %q", line)
		}
		x := Conn{At: time.UnixMilli(ms)}
		switch what := line[:i]; {
		case strings.HasPrefix(what, "ok "):
			x.By = strings.TrimPrefix(what, "ok ")
			c.By[x.By]++
		case strings.HasPrefix(what, "fail: "):
			x.Failure = strings.TrimPrefix(what, "fail: ")
			c.Failures[x.Failure]++
		default:
			return c, fmt.Errorf("sdnprobe connect: unreadable line %q", line)
		}
		c.List = append(c.List, x)
	}
	return c, nil
}

// ServiceDemo shows each service of the lab next to the matrix: its VIP,
// ports and endpoints, then (while whoami servers answer on the first
// port's target port in the endpoints) connections by name from a
// workload of the service's network on a host with no endpoint (or, when
// every host has one, another host than the first endpoint's). It returns
// an error when a connection by name fails.
func (l *Lab) ServiceDemo(ctx context.Context, w io.Writer, ws []*Workload) error {
	list, gws, err := l.Services(ctx)
	if err != nil {
		return err
	}
	eps := map[string]*sdnv1.ServiceEndpoints{}
	for _, e := range list.GetServiceEndpoints() {
		eps[e.GetService()] = e
	}
	byKey := map[string]*Workload{}
	for _, x := range ws {
		byKey[x.Key()] = x
	}
	var errs []string
	for _, v := range list.GetServices() {
		if err := l.showService(w, v, eps[model.ServiceKey(v)], byKey, ws, gws, model.DNSDomain(list.GetCluster())); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("services: %s", strings.Join(errs, "; "))
	}
	return nil
}

// showService prints one service and connects to it by name.
func (l *Lab) showService(w io.Writer, v *sdnv1.Service, eps *sdnv1.ServiceEndpoints, byKey map[string]*Workload, ws []*Workload, gws map[string]string, domain string) error {
	key := model.ServiceKey(v)
	var ports []string
	for _, p := range v.GetPorts() {
		ports = append(ports, model.ServicePortText(p))
	}
	fmt.Fprintf(w, "\nservice %s: vip %s, ports %s\n", key, v.GetVip(), strings.Join(ports, ", "))
	var endpoints []*Workload
	hosts := map[string]bool{}
	for _, ep := range eps.GetEndpoints() {
		x := byKey[ep.GetWorkload()]
		name := ep.GetWorkload()
		if x != nil {
			name = x.ID()
			endpoints = append(endpoints, x)
		}
		hosts[ep.GetNode()] = true
		fmt.Fprintf(w, "  endpoint %-14s %s on %s\n", name, ep.GetIp(), ep.GetNode())
	}
	if len(endpoints) == 0 || len(v.GetPorts()) == 0 || eps.GetEndpoints()[0].GetPorts()[0] == 0 {
		fmt.Fprintf(w, "  no endpoints among the lab's workloads: clients are refused\n")
		return nil
	}
	client := pickClient(v.GetNetwork(), ws, hosts, endpoints[0].Host)
	if client == nil {
		return nil
	}
	port, target := int(eps.GetEndpoints()[0].GetPorts()[0]), v.GetPorts()[0]
	var servers []*Whoami
	defer func() {
		for _, s := range servers {
			s.Stop()
		}
	}()
	for _, x := range endpoints {
		s, err := l.ServeWhoami(x, port)
		if err != nil {
			return err
		}
		servers = append(servers, s)
	}
	name := fmt.Sprintf("%s.%s.%s", v.GetName(), v.GetNetwork(), domain)
	dns := net.JoinHostPort(gws[client.Host], "53")
	const n = 6
	c, err := l.Connect(client, net.JoinHostPort(name, strconv.Itoa(int(target.GetPort()))), target.GetProtocol(), dns, n, 2*time.Second, 50*time.Millisecond)
	if err != nil {
		return fmt.Errorf("%s: connect by name from %s: %w", key, client.ID(), err)
	}
	fmt.Fprintf(w, "  by name from %s (DNS %s): %s:%d, %d new connections: %s\n", client.ID(), dns, name, target.GetPort(), n, countsText(c))
	if c.Failed() > 0 {
		return fmt.Errorf("%s: %d of %d connections by name from %s failed (%v)", key, c.Failed(), n, client.ID(), c.Failures)
	}
	return nil
}

// pickClient is a workload of network on a host without an endpoint, else
// one on another host than avoid's.
func pickClient(network string, ws []*Workload, endpointHosts map[string]bool, avoid string) *Workload {
	var fallback *Workload
	for _, x := range ws {
		if x.Network != network {
			continue
		}
		if !endpointHosts[x.Host] {
			return x
		}
		if fallback == nil && x.Host != avoid {
			fallback = x
		}
	}
	return fallback
}

// countsText renders connection counts: "host2/proj1 3, host3/proj1 3".
func countsText(c Connections) string {
	var parts []string
	for k, v := range c.By {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	for k, v := range c.Failures {
		parts = append(parts, fmt.Sprintf("failed (%s) %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
