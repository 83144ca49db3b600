package host

import (
	"bytes"
	"maps"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// withPolicies adds policies to m and the address groups their peers
// stand for, computed from the lab's workloads as the servers would.
func (l *lab) withPolicies(m *model.Desired, pols ...*sdnv1.Policy) *model.Desired {
	for _, p := range pols {
		m.Policies[model.PolicyKey(p)] = p
	}
	for _, p := range m.Policies {
		for name, g := range policy.Groups(p) {
			ag := &sdnv1.AddressGroup{Name: name, Selector: g.Key()}
			for _, w := range l.wls {
				if g.Matches(w.w, m.Networks[w.w.Network]) {
					ag.Members = append(ag.Members, &sdnv1.GroupMember{Ip: w.w.Ip, Workload: w.w.Network + "/" + w.w.Name, Vnid: w.w.Vnid, Ports: w.w.NamedPorts})
				}
			}
			m.AddressGroups[name] = ag
		}
	}
	return m
}

func labels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// echoes reports whether a datagram on c comes back within timeout.
func echoes(c *net.UDPConn, timeout time.Duration) bool {
	msg := []byte(randHex(8))
	buf := make([]byte, 64)
	for range 3 {
		if _, err := c.Write(msg); err != nil {
			return false
		}
		_ = c.SetReadDeadline(time.Now().Add(timeout))
		n, err := c.Read(buf)
		if err == nil && bytes.Equal(buf[:n], msg) {
			return true
		}
	}
	return false
}

// TestPolicyTraffic realizes a label policy on two hosts and sends real
// packets: the rule's peers get in (TCP and UDP, across the tunnel and on
// one host), others do not, replies pass into an isolated client, an
// unrelated policy change keeps an established flow going and removing the
// allowing rule stops it; Trace and RuleCounters agree with the packets.
func TestPolicyTraffic(t *testing.T) {
	t.Parallel()
	l := newLab(t, 2)
	h1, h2 := l.hosts[0], l.hosts[1]
	c1 := l.addWorkload(h1, "a", "c1", "10.128.0.2")
	x1 := l.addWorkload(h1, "a", "x1", "10.128.0.3")
	srv := l.addWorkload(h2, "a", "srv", "10.128.2.2")
	c2 := l.addWorkload(h2, "a", "c2", "10.128.2.3")
	l.addWorkload(h2, "a", "y2", "10.128.2.4")
	c1.w.Labels, c2.w.Labels = labels("role", "client"), labels("role", "client")
	srv.w.Labels = labels("app", "server")
	srv.w.NamedPorts = []*sdnv1.NamedPort{{Name: "echo", Protocol: "udp", Port: echoPort}}

	server := &sdnv1.Policy{Name: "srv", Network: "a", Workloads: &sdnv1.LabelSelector{MatchLabels: labels("app", "server")},
		Priority: 1000, Isolate: []string{"ingress"},
		Ingress: []*sdnv1.PolicyRule{{Name: "clients",
			Peers: []*sdnv1.PolicyPeer{{Workloads: &sdnv1.LabelSelector{MatchLabels: labels("role", "client")}}},
			Ports: []*sdnv1.PolicyPort{{Protocol: "tcp", Port: echoPort}, {Protocol: "udp", Name: "echo"}}}}}
	// The clients take no connections: replies must still reach them.
	clients := &sdnv1.Policy{Name: "clients", Network: "a", Workloads: &sdnv1.LabelSelector{MatchLabels: labels("role", "client")},
		Priority: 1000, Isolate: []string{"ingress"}}
	flat := sdnv1.IsolationMode_ISOLATION_MODE_FLAT
	l.realize(l.withPolicies(l.mirror(flat), server, clients))

	l.checkReach(t, []reach{
		{"c1", "srv", true}, {"c2", "srv", true}, // across the tunnel, on one host
		{"x1", "srv", false}, {"y2", "srv", false},
		{"srv", "c1", false}, {"srv", "c2", false}, {"x1", "c1", false}, // the clients are isolated
		{"srv", "x1", true}, {"c1", "x1", true}, {"y2", "x1", true}, // x1 is not
		{"host2", "srv", true}, // its own host
	})
	for _, c := range []struct {
		from *testWorkload
		ok   bool
	}{{c1, true}, {c2, true}, {x1, false}} {
		if err := tcpEcho(c.from.nsPath, srv.ip, 4096); (err == nil) != c.ok {
			t.Errorf("TCP %s -> srv: %v; want allowed=%v", c.from.w.Name, err, c.ok)
		}
	}

	t.Run("trace", func(t *testing.T) {
		ctx := testCtx(t)
		cases := []struct {
			host    *testHost
			p       TracePacket
			outcome string
			says    string
		}{
			{h1, TracePacket{InWorkload: "a/c1", Dst: srv.ip, Protocol: "tcp", Port: echoPort}, OutcomeForwarded, "to h2 over the tunnel"},
			{h2, TracePacket{TunnelVNID: 1, Src: c1.ip, Dst: srv.ip, Protocol: "tcp", Port: echoPort}, OutcomeAllowed, "allowed by policy a/srv rule clients"},
			{h2, TracePacket{InWorkload: "a/c2", Dst: srv.ip, Protocol: "udp", Port: echoPort}, OutcomeAllowed, "allowed by policy a/srv rule clients"},
			{h2, TracePacket{InWorkload: "a/y2", Dst: srv.ip, Protocol: "tcp", Port: echoPort}, OutcomeDenied, "a/srv isolates a/srv; no rule matched: dropped"},
			{h2, TracePacket{TunnelVNID: 1, Src: c1.ip, Dst: srv.ip, Protocol: "tcp", Port: 80}, OutcomeDenied, "a/srv isolates a/srv"},
		}
		for _, c := range cases {
			tr, err := c.host.dp.Trace(ctx, c.p)
			if err != nil {
				t.Fatalf("Trace %+v: %v", c.p, err)
			}
			var text []string
			for _, s := range tr.Steps {
				text = append(text, s.Stage+": "+s.Text)
			}
			all := strings.Join(text, "\n  ")
			if tr.Outcome != c.outcome || !strings.Contains(all, c.says) {
				t.Errorf("Trace %+v on %s: outcome %q, steps:\n  %s\nwant %q and a step saying %q\nraw:\n%s", c.p, c.host.name, tr.Outcome, all, c.outcome, c.says, tr.Raw)
			} else {
				t.Logf("Trace %+v on %s: %s\n  %s", c.p, c.host.name, tr.Outcome, all)
			}
		}
	})

	t.Run("counters", func(t *testing.T) {
		cs, err := h2.dp.RuleCounters(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]*sdnv1.RuleCounters{}
		for _, p := range cs {
			for _, c := range p.Counters {
				got[p.Policy+" "+c.Direction+" "+c.Rule+" "+c.Action] = c
			}
		}
		allow, iso := got["a/srv ingress clients allow"], got["a/srv ingress isolation deny"]
		if allow == nil || iso == nil || allow.Packets == 0 || allow.Connections == 0 || allow.Connections > allow.Packets || iso.Packets == 0 {
			t.Errorf("counters on h2: %v; want packets and connections for a/srv's rule clients and its isolation", slices.Sorted(maps.Keys(got)))
		}
		for k, c := range got {
			t.Logf("%s: %d packets, %d connections", k, c.Packets, c.Connections)
		}
	})

	t.Run("established flows and policy changes", func(t *testing.T) {
		conn, err := dialUDP(c1.nsPath, srv.ip)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if !echoes(conn, 300*time.Millisecond) {
			t.Fatal("no echo from srv before any change")
		}
		unrelated := &sdnv1.Policy{Name: "other", Network: "b", Priority: 5, Isolate: []string{"ingress"},
			Ingress: []*sdnv1.PolicyRule{{Name: "any", Peers: []*sdnv1.PolicyPeer{{Cidr: "10.0.0.0/8"}}}}}
		l.realize(l.withPolicies(l.mirror(flat), server, clients, unrelated))
		if !echoes(conn, 300*time.Millisecond) {
			t.Error("an unrelated policy change stopped an established flow")
		}
		closed := &sdnv1.Policy{Name: "srv", Network: "a", Workloads: server.Workloads, Priority: 1000, Isolate: []string{"ingress"}}
		l.realize(l.withPolicies(l.mirror(flat), closed, clients, unrelated))
		if echoes(conn, 300*time.Millisecond) {
			t.Error("removing the rule that allowed an established flow did not stop it")
		}
		l.checkReach(t, []reach{{"c1", "srv", false}, {"c2", "srv", false}, {"srv", "x1", true}})

		// Realized means enforced: the datapath's flow cache may still
		// hold the old decision for a moment after the bundle, so the
		// very next packet after Apply returns must already be dropped.
		for round := range 8 {
			l.realize(l.withPolicies(l.mirror(flat), server, clients, unrelated))
			if !echoes(conn, 300*time.Millisecond) {
				t.Fatalf("round %d: no echo with the rule back", round)
			}
			l.realize(l.withPolicies(l.mirror(flat), closed, clients, unrelated))
			if echoOnce(conn, 300*time.Millisecond) {
				t.Fatalf("round %d: the first packet after the rule was removed still got through (a cached datapath flow outlived the realize)", round)
			}
		}
	})
}

// echoOnce sends one datagram and reports whether it came back.
func echoOnce(c *net.UDPConn, timeout time.Duration) bool {
	msg := []byte(randHex(8))
	buf := make([]byte, 64)
	if _, err := c.Write(msg); err != nil {
		return false
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	n, err := c.Read(buf)
	return err == nil && bytes.Equal(buf[:n], msg)
}
