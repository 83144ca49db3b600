package hostnet

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func testConfig() Config {
	a := netip.MustParseAddr
	return Config{
		GatewayDev:    "sdn-gw0",
		GatewayIP:     a("10.128.0.1"),
		ClusterCIDR:   netip.MustParsePrefix("10.128.0.0/14"),
		ServiceCIDR:   netip.MustParsePrefix("172.30.0.0/16"),
		UnderlayIP:    a("198.18.0.1"),
		Subnet:        netip.MustParsePrefix("10.128.0.0/23"),
		NoSNATSources: []netip.Addr{a("10.128.0.7"), a("10.128.0.5"), a("10.128.0.7")},
		NodePorts: []NodePort{
			{"udp", 30053, a("172.30.0.10"), 53},
			{"tcp", 30080, a("172.30.0.10"), 80},
			{"tcp", 30080, a("172.30.0.10"), 80},
		},
		HostPorts: []HostPort{
			{"tcp", a("198.18.0.1"), 8080, a("10.128.0.5"), 80},
			{"udp", a("127.0.0.1"), 5353, a("10.128.0.7"), 53},
			{"tcp", a("198.18.0.1"), 8080, a("10.128.0.5"), 80},
		},
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (run with -update after reviewing):\n%s", name, path, got)
	}
}

// TestDescribe pins the whole plan: sysctls, route and the ruleset, with
// sources and node ports sorted and duplicates dropped.
func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"full", func(*Config) {}},
		{"empty", func(c *Config) { c.NoSNATSources, c.NodePorts, c.HostPorts = nil, nil, nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			tc.edit(&c)
			p, err := Describe(c)
			if err != nil {
				t.Fatal(err)
			}
			if want := []Sysctl{{"ipv4/ip_forward", "1"}, {"ipv4/conf/sdn-gw0/accept_local", "1"}}; !slices.Equal(p.Sysctls, want) {
				t.Errorf("Sysctls = %v, want %v", p.Sysctls, want)
			}
			if p.GatewayDev != "sdn-gw0" || !slices.Equal(p.Routes, []netip.Prefix{c.ServiceCIDR}) {
				t.Errorf("routes %v through %q, want the service CIDR through sdn-gw0", p.Routes, p.GatewayDev)
			}
			golden(t, "ruleset-"+tc.name, p.Ruleset)
			if !strings.HasPrefix(p.Script(), "table inet sdn\ndelete table inet sdn\ntable inet sdn {\n") {
				t.Errorf("Script does not replace the table in one go:\n%s", p.Script())
			}
		})
	}
}

// TestDescribeState: the state digest follows the rules, not the order
// or repetition of the input.
func TestDescribeState(t *testing.T) {
	c := testConfig()
	p1, _ := Describe(c)
	slices.Reverse(c.NoSNATSources)
	slices.Reverse(c.NodePorts)
	p2, _ := Describe(c)
	c.NoSNATSources = c.NoSNATSources[:1]
	p3, _ := Describe(c)
	if p1.State != p2.State || p1.Ruleset != p2.Ruleset {
		t.Errorf("reordered input: state %s then %s", p1.State, p2.State)
	}
	if p3.State == p1.State {
		t.Errorf("one SNAT source fewer: state still %s", p3.State)
	}
	if !strings.Contains(p1.Ruleset, p1.State) {
		t.Errorf("ruleset does not carry its state %s", p1.State)
	}
}

func TestDescribeRefuses(t *testing.T) {
	a := netip.MustParseAddr
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.GatewayDev = "" }, "gateway device"},
		{func(c *Config) { c.GatewayDev = `gw"0` }, "gateway device"},
		{func(c *Config) { c.GatewayDev = "a-very-long-name0" }, "gateway device"},
		{func(c *Config) { c.ClusterCIDR = netip.MustParsePrefix("10.128.0.1/14") }, "cluster CIDR"},
		{func(c *Config) { c.ServiceCIDR = netip.Prefix{} }, "service CIDR"},
		{func(c *Config) { c.ServiceCIDR = netip.MustParsePrefix("10.130.0.0/16") }, "overlap"},
		{func(c *Config) { c.GatewayIP = a("10.0.0.1") }, "gateway address"},
		{func(c *Config) { c.UnderlayIP = netip.Addr{} }, "underlay address"},
		{func(c *Config) { c.UnderlayIP = a("10.128.0.9") }, "underlay address"},
		{func(c *Config) { c.NoSNATSources = []netip.Addr{a("10.128.4.1")} }, "no-SNAT source"},
		{func(c *Config) { c.Subnet = netip.MustParsePrefix("192.168.0.0/23") }, "host block"},
		{func(c *Config) { c.Subnet = netip.Prefix{} }, "host block"},
		{func(c *Config) { c.NodePorts[0].Protocol = "sctp" }, "protocol"},
		{func(c *Config) { c.NodePorts[0].NodePort = 0 }, "port 0"},
		{func(c *Config) { c.NodePorts[0].VIP = a("10.128.0.9") }, "VIP not in the service CIDR"},
		{func(c *Config) { c.NodePorts[2].Port = 8080 }, "leads to both"},
		{func(c *Config) { c.HostPorts[0].Protocol = "sctp" }, "protocol"},
		{func(c *Config) { c.HostPorts[0].HostPort = 0 }, "port 0"},
		{func(c *Config) { c.HostPorts[0].HostIP = a("10.128.0.9") }, "host address"},
		{func(c *Config) { c.HostPorts[0].IP = a("192.168.1.1") }, "workload address"},
		{func(c *Config) { c.HostPorts[2].IP = a("10.128.0.6") }, "leads to both"},
		{func(c *Config) { c.HostPorts[0].HostPort = 30080 }, "also node port"},
	} {
		c := testConfig()
		tc.edit(&c)
		if _, err := Describe(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Describe(%+v) = %v, want an error about %q", c, err, tc.want)
		}
	}
}
