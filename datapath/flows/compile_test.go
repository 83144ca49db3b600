package flows

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// sample is host1 of a two-host cluster: workloads of proj1 (VNID 1), proj2
// (VNID 2) and the admin network (VNID 0) on host1, host2 across the tunnel.
func sample(iso Isolation) *Host {
	return &Host{
		Isolation:   iso,
		Subnet:      netip.MustParsePrefix("10.128.0.0/23"),
		Gateway:     netip.MustParseAddr("10.128.0.1"),
		GatewayMAC:  mac("0a:58:0a:80:00:01"),
		ClusterCIDR: netip.MustParsePrefix("10.128.0.0/14"),
		TunnelPort:  1,
		GatewayPort: 2,
		Local: []Workload{
			{Name: "proj2/b", IP: netip.MustParseAddr("10.128.0.3"), MAC: mac("0a:58:0a:80:00:03"), VNID: 2, Port: 11},
			{Name: "proj1/a", IP: netip.MustParseAddr("10.128.0.2"), MAC: mac("0a:58:0a:80:00:02"), VNID: 1, Port: 10},
			{Name: "infra/m", IP: netip.MustParseAddr("10.128.0.4"), MAC: mac("0a:58:0a:80:00:04"), VNID: 0, Port: 12},
			{Name: "proj1/c", IP: netip.MustParseAddr("10.128.0.5"), MAC: mac("0a:58:0a:80:00:05"), VNID: 1, Port: 13},
		},
		Remote: []RemoteHost{{Name: "host2", Subnet: netip.MustParsePrefix("10.128.2.0/23"), UnderlayIP: netip.MustParseAddr("198.18.0.2")}},
	}
}

func render(h *Host) string {
	var b strings.Builder
	table := -1
	for _, f := range Compile(h) {
		if int(f.Table) != table {
			table = int(f.Table)
			fmt.Fprintf(&b, "# table %d: %s\n", table, Stages[table])
		}
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	for name, h := range map[string]*Host{
		"multitenant": sample(Multitenant),
		"flat":        sample(Flat),
		"policy":      sample(Policy),
		"empty":       {Isolation: Multitenant, Subnet: netip.MustParsePrefix("10.128.4.0/23"), Gateway: netip.MustParseAddr("10.128.4.1"), GatewayMAC: mac("0a:58:0a:80:04:01"), ClusterCIDR: netip.MustParsePrefix("10.128.0.0/14"), TunnelPort: 1, GatewayPort: 2},
	} {
		t.Run(name, func(t *testing.T) {
			got := render(h)
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./datapath/flows -update)", err)
			}
			if got != string(want) {
				t.Fatalf("flows differ from %s (review, then -update):\n%s", path, got)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	a := render(sample(Multitenant))
	h := sample(Multitenant)
	h.Local[0], h.Local[3] = h.Local[3], h.Local[0]
	if b := render(h); a != b {
		t.Fatal("input order changed the output")
	}
}

// TestFlowsGrowLinearly: flows grow with local workloads and remote hosts,
// not their product.
func TestFlowsGrowLinearly(t *testing.T) {
	count := func(local, remote int) int {
		h := sample(Multitenant)
		h.Local, h.Remote = nil, nil
		for i := 0; i < local; i++ {
			ip := netip.AddrFrom4([4]byte{10, 128, byte(i / 250), byte(2 + i%250)})
			h.Local = append(h.Local, Workload{IP: ip, MAC: mac(fmt.Sprintf("0a:58:0a:80:%02x:%02x", i/250, 2+i%250)), VNID: uint32(1 + i%10), Port: 10 + i})
		}
		for i := 0; i < remote; i++ {
			h.Remote = append(h.Remote, RemoteHost{Name: fmt.Sprint("h", i), Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 129, byte(i), 0}), 24), UnderlayIP: netip.AddrFrom4([4]byte{198, 18, byte(i / 250), byte(1 + i%250)})})
		}
		return len(Compile(h))
	}
	base := count(0, 0)
	perWorkload := count(1, 0) - base - 1 // one ingress flow per new VNID
	// Two flows per remote host: its workload block and its underlay
	// address (hostport.go), both through the tunnel.
	if got := count(100, 1000) - base; got != 100*perWorkload+10+2*1000 {
		t.Fatalf("100 workloads (10 networks) and 1000 hosts gave %d flows over the base, want %d", got, 100*perWorkload+10+2*1000)
	}
}

// TestOVSAcceptsFlows parses the compiled flows with the real ovs-ofctl, as
// the reconciler will.
func TestOVSAcceptsFlows(t *testing.T) {
	if _, err := exec.LookPath("ovs-ofctl"); err != nil {
		t.Skip("ovs-ofctl not installed")
	}
	var in strings.Builder
	for _, f := range Compile(sample(Multitenant)) {
		in.WriteString(f.String() + "\n")
	}
	cmd := exec.Command("ovs-ofctl", "-O", "OpenFlow15", "parse-flows", "-")
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ovs-ofctl rejected the flows: %v\n%s", err, out)
	}
}
