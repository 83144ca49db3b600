package host

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/datapath/ovs"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func TestMain(m *testing.M) {
	// Detached OVS daemons are orphans; as a child subreaper this process
	// adopts them, so Stop can reap them instead of leaving zombies.
	const prSetChildSubreaper = 36
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	os.Exit(m.Run())
}

// needOVS skips a test that cannot run here: no OVS, or not root.
func needOVS(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"ovs-vswitchd", "ovsdb-server", "ovsdb-tool", "ovs-vsctl", "ovs-ofctl", "ovs-appctl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs Open vSwitch (%s not found)", bin)
		}
	}
	if _, err := os.Stat(ovs.DefaultSchema); err != nil {
		t.Skipf("needs the OVS schema: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and OVS daemons")
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// The lab: hosts are network namespaces, each with its own OVS instance
// (two netdev instances cannot share a namespace) and an underlay veth
// "ul0" into a shared underlay namespace, bridged there. Workloads are
// namespaces whose host veth ends sit in their host's namespace. Addresses:
// underlay 198.18.0.0/24, workloads 10.128.0.0/14, all inside namespaces
// the test made; nothing is configured in the namespace the test runs in.
type lab struct {
	t     *testing.T
	id    string
	ulNS  string // path
	hosts []*testHost
	wls   []*testWorkload
}

type testHost struct {
	name     string // node name
	ns       string // namespace name
	nsPath   string
	underlay netip.Addr
	subnet   netip.Prefix
	ovs      *ovs.Instance
	dp       *Datapath
}

type testWorkload struct {
	w      *sdnv1.Workload
	host   *testHost
	nsPath string
	ip     netip.Addr
}

var vnids = map[string]uint32{"admin": 0, "a": 1, "b": 2}

func (l *lab) newNS(role string) (name, path string) {
	l.t.Helper()
	name = "sdnh-" + l.id + "-" + role
	path, err := link.NewNS(name)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() {
		if err := link.DeleteNS(name); err != nil {
			l.t.Errorf("delete namespace: %v", err)
		}
	})
	return name, path
}

// newLab makes the underlay and n hosts, each with OVS started and a
// Datapath of generation 1.
func newLab(t *testing.T, n int) *lab {
	t.Helper()
	needOVS(t)
	l := &lab{t: t, id: randHex(3)}
	_, l.ulNS = l.newNS("ul")
	ul, err := link.Open(l.ulNS)
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	if _, err := ul.EnsureBridge("br0", 1500); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		h := &testHost{
			name:     fmt.Sprintf("h%d", i),
			underlay: netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}),
			subnet:   netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 128, byte(2 * (i - 1)), 0}), 23),
		}
		h.ns, h.nsPath = l.newNS(h.name)
		_, err := link.SetupWorkload(link.WorkloadIface{
			HostName: h.name, HostNSPath: l.ulNS, ContainerIfname: "ul0", NetNSPath: h.nsPath,
			Addr: netip.PrefixFrom(h.underlay, 24), MTU: 1500, TxChecksumOff: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := ul.SetMaster(h.name, "br0"); err != nil {
			t.Fatal(err)
		}
		h.ovs, err = ovs.StartInstance(testCtx(t), ovs.InstanceConfig{RunDir: t.TempDir(), NetNS: h.ns, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := h.ovs.Stop(); err != nil {
				t.Error(err)
			}
		})
		h.dp = l.newDatapath(h, h.ovs, 1)
		l.hosts = append(l.hosts, h)
	}
	return l
}

func (l *lab) newDatapath(h *testHost, inst *ovs.Instance, gen uint16) *Datapath {
	l.t.Helper()
	dp, err := New(testCtx(l.t), Config{
		OVS: inst, DatapathType: "netdev", NodeName: h.name, UnderlayIface: "ul0",
		HostNSPath: h.nsPath, Generation: gen, Logger: testLogger(l.t),
	})
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { _ = dp.Close() })
	return dp
}

// addWorkload makes workload network/name with address ip on host h: its
// namespace, its veth pair (as CNI ADD would) and UDP and TCP echo servers.
func (l *lab) addWorkload(h *testHost, network, name, ip string) *testWorkload {
	l.t.Helper()
	addr := netip.MustParseAddr(ip)
	_, path := l.newNS(h.name + "-" + name)
	cid := l.id + "-" + name
	_, err := link.SetupWorkload(link.WorkloadIface{
		HostName: link.HostVethName(cid, "eth0"), HostNSPath: h.nsPath,
		ContainerIfname: "eth0", NetNSPath: path,
		MAC: model.MACForIP(addr), Addr: netip.PrefixFrom(addr, h.subnet.Bits()), Gateway: h.subnet.Addr().Next(),
		MTU: 1450, TxChecksumOff: true,
	})
	if err != nil {
		l.t.Fatal(err)
	}
	startEcho(l.t, path)
	w := &testWorkload{host: h, nsPath: path, ip: addr, w: &sdnv1.Workload{
		Name: name, Network: network, Node: h.name, Ip: ip, Mac: model.MACForIP(addr).String(), Vnid: vnids[network],
		Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_CNI, ContainerId: cid, Ifname: "eth0", Netns: path},
	}}
	l.wls = append(l.wls, w)
	return w
}

// mirror is the desired state of the whole lab, as a server would send it.
func (l *lab) mirror(iso sdnv1.IsolationMode) *model.Desired {
	m := model.NewDesired()
	m.Revision = 7
	m.Cluster = &sdnv1.ClusterSettings{Cidr: "10.128.0.0/14", HostPrefix: 23, VxlanPort: 4789, Isolation: iso, EffectiveMtu: 1450}
	for name, v := range vnids {
		m.Networks[name] = &sdnv1.Network{Name: name, Vnid: v, Admin: v == 0}
	}
	for _, h := range l.hosts {
		m.Nodes[h.name] = &sdnv1.Node{Name: h.name, UnderlayIp: h.underlay.String(), UnderlayMtu: 1500,
			Subnet: h.subnet.String(), GatewayIp: h.subnet.Addr().Next().String()}
	}
	for _, w := range l.wls {
		m.Workloads[w.w.Network+"/"+w.w.Name] = w.w
	}
	return m
}

// realize applies m on every host and returns the results.
func (l *lab) realize(m *model.Desired) []Result {
	l.t.Helper()
	var rs []Result
	for _, h := range l.hosts {
		r, err := h.dp.Apply(testCtx(l.t), m)
		if err != nil {
			l.t.Fatalf("%s: %v", h.name, err)
		}
		rs = append(rs, r)
	}
	return rs
}

// appctl runs ovs-appctl against a host's ovs-vswitchd, for diagnostics.
func appctl(h *testHost, args ...string) string {
	out, err := h.ovs.Appctl(context.Background(), "ovs-vswitchd", args...)
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(out)
}
