package host

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/datapath/flows"
	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func cniOrigin(cid string) *sdnv1.Origin {
	return &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_CNI, ContainerId: cid, Ifname: "eth0"}
}

func testMirror() *model.Desired {
	m := model.NewDesired()
	m.Cluster = &sdnv1.ClusterSettings{Cidr: "10.128.0.0/14", HostPrefix: 23, Isolation: sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT}
	m.Nodes["n1"] = &sdnv1.Node{Name: "n1", UnderlayIp: "198.18.0.1", UnderlayMtu: 9000, Subnet: "10.128.0.0/23", GatewayIp: "10.128.0.1"}
	m.Nodes["n2"] = &sdnv1.Node{Name: "n2", UnderlayIp: "198.18.0.2", Subnet: "10.128.2.0/23"}
	m.Nodes["n3"] = &sdnv1.Node{Name: "n3", UnderlayIp: "198.18.0.3"} // no subnet yet
	m.Nodes["n4"] = &sdnv1.Node{Name: "n4", UnderlayIp: "nonsense", Subnet: "10.128.6.0/23"}
	for _, w := range []*sdnv1.Workload{
		{Name: "w1", Network: "a", Node: "n1", Ip: "10.128.0.5", Vnid: 1, Origin: cniOrigin("c1")},
		{Name: "w2", Network: "b", Node: "n1", Ip: "10.128.0.6", Mac: "02:00:00:00:00:06", Vnid: 2, Origin: cniOrigin("c2")},
		{Name: "remote", Network: "a", Node: "n2", Ip: "10.128.2.5", Vnid: 1, Origin: cniOrigin("c3")},
		{Name: "pending", Network: "a", Node: "n1", Pending: "no address yet", Origin: cniOrigin("c4")},
		{Name: "static", Network: "a", Node: "n1", Ip: "10.128.0.7", Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_HCL}},
		{Name: "outside", Network: "a", Node: "n1", Ip: "10.128.4.9", Origin: cniOrigin("c5")},
		{Name: "badmac", Network: "a", Node: "n1", Ip: "10.128.0.8", Mac: "zz", Origin: cniOrigin("c6")},
	} {
		m.Workloads[w.Network+"/"+w.Name] = w
	}
	return m
}

func TestDesiredState(t *testing.T) {
	d, warnings, err := desiredState(testMirror(), "n1")
	if err != nil {
		t.Fatal(err)
	}
	if d.subnet != netip.MustParsePrefix("10.128.0.0/23") || d.gateway != netip.MustParseAddr("10.128.0.1") ||
		d.gatewayMAC.String() != "0a:58:0a:80:00:01" || d.cluster != netip.MustParsePrefix("10.128.0.0/14") ||
		d.isolation != flows.Multitenant || d.vxlanPort != 4789 || d.mtu != 8950 || d.underlayIP != netip.MustParseAddr("198.18.0.1") {
		t.Errorf("desired = %+v", d)
	}
	var local []string
	for _, w := range d.local {
		local = append(local, w.Name+" "+w.MAC.String()+" "+w.ifname)
	}
	want := []string{
		"a/w1 0a:58:0a:80:00:05 " + link.HostVethName("c1", "eth0"),
		"b/w2 02:00:00:00:00:06 " + link.HostVethName("c2", "eth0"),
	}
	if !slices.Equal(local, want) {
		t.Errorf("local workloads:\n%s\nwant\n%s", strings.Join(local, "\n"), strings.Join(want, "\n"))
	}
	if len(d.remote) != 1 || d.remote[0] != (flows.RemoteHost{Name: "n2", Subnet: netip.MustParsePrefix("10.128.2.0/23"), UnderlayIP: netip.MustParseAddr("198.18.0.2")}) {
		t.Errorf("remote hosts = %+v; want only n2", d.remote)
	}
	if len(warnings) != 3 || !strings.Contains(strings.Join(warnings, "\n"), `a/outside: address "10.128.4.9" is not in this host's subnet`) {
		t.Errorf("warnings (want outside, badmac, n4):\n%s", strings.Join(warnings, "\n"))
	}

	// Ports: workloads without one (not plugged, or OVS could not open
	// the veth) get no flows.
	h := d.flowHost(map[string]int{link.HostVethName("c1", "eth0"): 7, link.HostVethName("c2", "eth0"): -1})
	if len(h.Local) != 1 || h.Local[0].Port != 7 || h.TunnelPort != 1 || h.GatewayPort != 2 {
		t.Errorf("flowHost = %+v", h)
	}
}

func TestDesiredStateSettings(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(m *model.Desired)
		node  string
		err   string
		check func(t *testing.T, d *desired)
	}{
		{name: "no cluster", edit: func(m *model.Desired) { m.Cluster = nil }, err: "no cluster settings"},
		{name: "unknown node", node: "nx", err: `node "nx" is not in the desired state`},
		{name: "no subnet", node: "n3", err: `node "n3" has no usable subnet`},
		{name: "flat, declared MTU, port", edit: func(m *model.Desired) {
			m.Cluster.Isolation = sdnv1.IsolationMode_ISOLATION_MODE_FLAT
			m.Cluster.Mtu, m.Cluster.VxlanPort = 1400, 8472
		}, check: func(t *testing.T, d *desired) {
			if d.isolation != flows.Flat || d.mtu != 1400 || d.vxlanPort != 8472 {
				t.Errorf("isolation %v, mtu %d, port %d", d.isolation, d.mtu, d.vxlanPort)
			}
		}},
		{name: "effective MTU wins; unset isolation is multitenant; gateway derived", edit: func(m *model.Desired) {
			m.Cluster.Isolation = sdnv1.IsolationMode_ISOLATION_MODE_UNSPECIFIED
			m.Cluster.Mtu, m.Cluster.EffectiveMtu = 1400, 1450
			m.Nodes["n1"].GatewayIp = ""
		}, check: func(t *testing.T, d *desired) {
			if d.isolation != flows.Multitenant || d.mtu != 1450 || d.gateway != netip.MustParseAddr("10.128.0.1") {
				t.Errorf("isolation %v, mtu %d, gateway %v", d.isolation, d.mtu, d.gateway)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := testMirror()
			if tc.edit != nil {
				tc.edit(m)
			}
			node := tc.node
			if node == "" {
				node = "n1"
			}
			d, _, err := desiredState(m, node)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v; want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, d)
		})
	}
}

func TestHostIfname(t *testing.T) {
	for _, tc := range []struct {
		o    *sdnv1.Origin
		want string
	}{
		{cniOrigin("abc"), link.HostVethName("abc", "eth0")},
		{&sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_CNI, Ifname: "eth0"}, ""},
		{&sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_HCL, ContainerId: "abc", Ifname: "eth0"}, ""},
		{nil, ""},
	} {
		if got := HostIfname(&sdnv1.Workload{Origin: tc.o}); got != tc.want {
			t.Errorf("HostIfname(%v) = %q, want %q", tc.o, got, tc.want)
		}
	}
	if n := link.HostVethName("x", "eth0"); !link.IsHostVethName(n) {
		t.Errorf("link.IsHostVethName(%q) = false", n)
	}
	for _, n := range []string{"sdn-gw0", "sdn-tun0", "sdn0123456789", "sdn0123456789ab", "SDN0123456789a", "sdn0123456789g"} {
		if link.IsHostVethName(n) {
			t.Errorf("link.IsHostVethName(%q) = true", n)
		}
	}
}

func TestNextGeneration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "generation")
	for want := uint16(1); want <= 3; want++ {
		if g, err := NextGeneration(path); err != nil || g != want {
			t.Fatalf("NextGeneration = %d, %v; want %d", g, err, want)
		}
	}
	if err := os.WriteFile(path, []byte("65535\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if g, err := NextGeneration(path); err != nil || g != 1 {
		t.Errorf("after 65535: %d, %v; want 1 (0 is never used)", g, err)
	}
	if err := os.WriteFile(path, []byte("seven"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NextGeneration(path); err == nil || !strings.Contains(err.Error(), "fix or remove the file") {
		t.Errorf("garbage: err = %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("files left in the state directory: %v", ents)
	}
}

func TestNewChecksConfig(t *testing.T) {
	_, err := New(t.Context(), Config{DatapathType: "dpdk"})
	for _, want := range []string{"no OVS instance", `datapath type "dpdk"`, "no node name", "no underlay interface"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(bad config) = %v; want it to say %q", err, want)
		}
	}
	if err := sameNetNS("", ""); err != nil {
		t.Errorf("sameNetNS(current, current) = %v", err)
	}
	if err := sameNetNS("/proc/1/ns/net", "no-such-netns-here"); err == nil {
		t.Error("sameNetNS with a missing OVS namespace: no error")
	}
}
