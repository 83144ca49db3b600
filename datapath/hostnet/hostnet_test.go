package hostnet

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/datapath/link"
)

func labConfig() Config {
	a := netip.MustParseAddr
	return Config{
		GatewayDev:  "sdn-gw0",
		GatewayIP:   a("10.128.0.1"),
		ClusterCIDR: netip.MustParsePrefix("10.128.0.0/14"),
		ServiceCIDR: netip.MustParsePrefix("172.30.0.0/16"),
		UnderlayIP:  a("198.18.0.1"),
		Subnet:      netip.MustParsePrefix("10.128.0.0/23"),
		NodePorts: []NodePort{
			{"tcp", 30080, a("172.30.0.10"), 80}, // has an endpoint
			{"udp", 30053, a("172.30.0.10"), 53},
			{"tcp", 30081, a("172.30.0.99"), 80}, // has none
			{"udp", 30054, a("172.30.0.99"), 53},
		},
		HostPorts: []HostPort{
			{"tcp", a("198.18.0.1"), 8080, a("10.128.0.5"), 9080},
			{"udp", a("198.18.0.1"), 8053, a("10.128.0.5"), 9053},
		},
	}
}

// TestHostNet drives one host namespace through Apply, a changed Config and
// Remove, with real packets from a workload, the host and the outside.
func TestHostNet(t *testing.T) {
	needRoot(t)
	l := newLab(t)
	ctx := context.Background()
	hostNS := link.NSPath(l.host)
	serveTCP(t, l.outside, "198.18.0.2:8080")
	serveTCP(t, l.ovs, "172.30.0.10:80")
	serveUDP(t, l.ovs, "172.30.0.10:53")
	serveTCP(t, l.ovs, "10.128.0.5:9080")
	serveUDP(t, l.ovs, "10.128.0.5:9053")

	res, err := Apply(ctx, hostNS, labConfig())
	if err != nil {
		t.Fatal(err)
	}
	if !res.ForwardingEnabled || len(res.Changes) != 4 { // ip_forward, accept_local, route, table
		t.Fatalf("first Apply = %+v; want forwarding enabled and 4 changes", res)
	}
	if res, err := Apply(ctx, hostNS, labConfig()); err != nil || res.ForwardingEnabled || len(res.Changes) != 0 {
		t.Fatalf("second Apply = %+v, %v; want no change", res, err)
	}

	t.Run("workload to the outside leaves as the host", func(t *testing.T) {
		wantAnswer(t, l.ovs, "tcp", "198.18.0.2:8080", "198.18.0.1")
	})
	t.Run("node port from the outside", func(t *testing.T) {
		wantAnswer(t, l.outside, "tcp", "198.18.0.1:30080", "10.128.0.1")
		wantAnswer(t, l.outside, "udp", "198.18.0.1:30053", "10.128.0.1")
	})
	t.Run("node port from the host itself", func(t *testing.T) {
		wantAnswer(t, l.host, "tcp", "198.18.0.1:30080", "10.128.0.1")
	})
	t.Run("host port from the outside keeps the client's address", func(t *testing.T) {
		wantAnswer(t, l.outside, "tcp", "198.18.0.1:8080", "198.18.0.2")
		wantAnswer(t, l.outside, "udp", "198.18.0.1:8053", "198.18.0.2")
	})
	t.Run("host port from the host itself", func(t *testing.T) {
		wantAnswer(t, l.host, "tcp", "198.18.0.1:8080", "198.18.0.1")
		wantAnswer(t, l.host, "udp", "198.18.0.1:8053", "198.18.0.1")
	})
	t.Run("host reaches a VIP through the gateway", func(t *testing.T) {
		wantAnswer(t, l.host, "tcp", "172.30.0.10:80", "10.128.0.1")
	})
	t.Run("VIP without endpoints is refused", func(t *testing.T) {
		wantRefused(t, l.ovs, "tcp", "172.30.0.99:80")
		wantRefused(t, l.ovs, "udp", "172.30.0.99:53")
		wantRefused(t, l.host, "tcp", "172.30.0.99:80")
		wantRefused(t, l.host, "udp", "172.30.0.99:53")
	})
	t.Run("node port without endpoints is refused", func(t *testing.T) {
		wantRefused(t, l.outside, "tcp", "198.18.0.1:30081")
		wantRefused(t, l.outside, "udp", "198.18.0.1:30054")
	})
	if t.Failed() {
		t.Logf("table:\n%s", nftIn(t, l.host, "list", "table", "inet", Table))
		return
	}

	// A changed Config: the workload's network stops masquerading, node
	// port 30080 and the host ports go. The outside routes the cluster CIDR to the host
	// now, so the workload's own address can get answers.
	c := labConfig()
	c.NoSNATSources, c.HostPorts = []netip.Addr{netip.MustParseAddr("10.128.0.5")}, nil
	c.NodePorts = c.NodePorts[1:]
	ip(t, "-n", l.outside, "route", "add", "10.128.0.0/14", "via", "198.18.0.1")
	if res, err := Apply(ctx, hostNS, c); err != nil || res.ForwardingEnabled || len(res.Changes) != 1 {
		t.Fatalf("Apply of a changed config = %+v, %v; want the table replaced, nothing else", res, err)
	}
	if table := nftIn(t, l.host, "list", "table", "inet", Table); strings.Contains(table, "30080") || strings.Contains(table, "9080") {
		t.Errorf("old rules stayed:\n%s", table)
	}
	wantAnswer(t, l.ovs, "tcp", "198.18.0.2:8080", "10.128.0.5")
	wantRefused(t, l.outside, "tcp", "198.18.0.1:30080") // no rule: the host's own closed port
	wantRefused(t, l.outside, "tcp", "198.18.0.1:8080")
	wantAnswer(t, l.outside, "udp", "198.18.0.1:30053", "10.128.0.1")

	testRemove(t, l)
}

func testRemove(t *testing.T, l *lab) {
	t.Helper()
	ctx := context.Background()
	hostNS := link.NSPath(l.host)
	changes, err := Remove(ctx, hostNS, "sdn-gw0")
	if err != nil || len(changes) != 3 { // table, route, accept_local
		t.Fatalf("Remove = %q, %v; want 3 changes", changes, err)
	}
	if rs := strings.TrimSpace(nftIn(t, l.host, "list", "ruleset")); rs != "" {
		t.Errorf("after Remove the ruleset holds:\n%s", rs)
	}
	if rs := strings.TrimSpace(ip(t, "-n", l.host, "route", "show", "proto", "84")); rs != "" {
		t.Errorf("after Remove routes of proto 84 remain: %s", rs)
	}
	if rs := ip(t, "-n", l.host, "route", "show", "proto", "83"); !strings.Contains(rs, "10.128.0.0/14") {
		t.Errorf("Remove took datapath/host's route too: %q", rs)
	}
	if v := l.readSysctl(t, l.host, "ipv4/conf/sdn-gw0/accept_local"); v != "0" {
		t.Errorf("after Remove accept_local = %s, want 0", v)
	}
	if v := l.readSysctl(t, l.host, "ipv4/ip_forward"); v != "1" {
		t.Errorf("after Remove ip_forward = %s; Remove leaves it on (doc.go says why)", v)
	}
	if changes, err := Remove(ctx, hostNS, "sdn-gw0"); err != nil || len(changes) != 0 {
		t.Errorf("second Remove = %q, %v; want nothing to do", changes, err)
	}
}

// TestOwnsOnlyItsTable: another table in the host's firewall survives
// Apply and Remove unchanged, and bad input or a missing gateway device
// changes nothing.
func TestOwnsOnlyItsTable(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	name := newLab(t).host // only its host namespace is used here
	hostNS := link.NSPath(name)
	ip(t, "-n", name, "link", "del", "sdn-gw0")
	if _, err := nft(ctx, hostNS, "table ip filter {\n\tchain FORWARD {\n\t\ttype filter hook forward priority filter; policy drop;\n\t}\n}\n", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	before := nftIn(t, name, "list", "ruleset")

	bad := labConfig()
	bad.NodePorts[0].VIP = netip.MustParseAddr("10.128.0.9")
	if _, err := Apply(ctx, hostNS, bad); err == nil || !strings.Contains(err.Error(), "VIP not in the service CIDR") {
		t.Errorf("Apply of a bad config = %v, want the VIP refused", err)
	}
	if _, err := Apply(ctx, hostNS, labConfig()); err == nil || !strings.Contains(err.Error(), "sdn-gw0") {
		t.Errorf("Apply without the gateway device = %v, want an error naming it", err)
	}
	if got := nftIn(t, name, "list", "ruleset"); got != before {
		t.Errorf("failed Applies changed the ruleset:\n%s", got)
	}

	ip(t, "-n", name, "link", "add", "sdn-gw0", "type", "veth", "peer", "name", "gw-peer")
	ip(t, "-n", name, "link", "set", "sdn-gw0", "up")
	if _, err := Apply(ctx, hostNS, labConfig()); err != nil {
		t.Fatal(err)
	}
	if got := nftIn(t, name, "list", "table", "ip", "filter"); !strings.Contains(before, got) {
		t.Errorf("Apply changed table ip filter:\n%s", got)
	}
	if _, err := Remove(ctx, hostNS, "sdn-gw0"); err != nil {
		t.Fatal(err)
	}
	if got := nftIn(t, name, "list", "ruleset"); got != before {
		t.Errorf("after Remove the ruleset is\n%s\nwant what was there before\n%s", got, before)
	}
}
