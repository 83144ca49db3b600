package link

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNewNSDeleteNS(t *testing.T) {
	needRoot(t)
	t.Parallel()
	path := testNS(t, "ns")
	name := filepath.Base(path)
	if path != NSPath(name) {
		t.Errorf("NewNS returned %s, want %s", path, NSPath(name))
	}
	if _, err := NewNS(name); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("NewNS of an existing name: %v, want an error saying it already exists", err)
	}
	h := openT(t, path)
	if lo := mustLink(t, h, "lo"); lo.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("lo is down in a new namespace")
	}
	names, err := h.LinkNames("")
	if err != nil || strings.Join(names, ",") != "lo" {
		t.Errorf("LinkNames in a new namespace: %v, %v; want [lo]", names, err)
	}
	if _, err := h.EnsureBridge("lo", 0); err == nil {
		t.Errorf("EnsureBridge over lo: nil error")
	}
	idx, err := h.EnsureBridge("br-t", 1400)
	if err != nil {
		t.Fatal(err)
	}
	if idx2, err := h.EnsureBridge("br-t", 1400); err != nil || idx2 != idx {
		t.Errorf("second EnsureBridge: %d, %v; want %d", idx2, err, idx)
	}
	if err := h.DeleteLink("br-t"); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteLink("br-t"); err != nil {
		t.Errorf("DeleteLink of a missing link: %v", err)
	}

	other := "sdnt-" + randHex(4) + "-del"
	if _, err := NewNS(other); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := DeleteNS(other); err != nil {
			t.Fatalf("DeleteNS: %v", err)
		}
	}
	if _, err := os.Stat(NSPath(other)); !os.IsNotExist(err) {
		t.Errorf("%s still exists after DeleteNS (%v)", NSPath(other), err)
	}
	if _, err := NewNS("../etc"); err == nil {
		t.Errorf("NewNS(../etc): nil error")
	}
}

func TestHostVethName(t *testing.T) {
	a := HostVethName("0123456789abcdef", "eth0")
	if len(a) != 14 || !strings.HasPrefix(a, "sdn") || validIfname(a) != nil {
		t.Errorf("HostVethName = %q: want sdn + 11 hex digits", a)
	}
	if HostVethName("0123456789abcdef", "eth0") != a {
		t.Errorf("HostVethName is not deterministic")
	}
	if HostVethName("0123456789abcdef", "eth1") == a || HostVethName("0123456789abcdeF", "eth0") == a {
		t.Errorf("HostVethName collides for different inputs")
	}
}

func TestValidate(t *testing.T) {
	good := WorkloadIface{
		HostName: "sdn0123456789a", ContainerIfname: "eth0", NetNSPath: "/run/netns/x",
		MAC: net.HardwareAddr{0x0a, 0x58, 10, 128, 0, 5}, Addr: netip.MustParsePrefix("10.128.0.5/23"),
		Gateway: netip.MustParseAddr("10.128.0.1"), MTU: 1450,
	}
	if err := good.validate(); err != nil {
		t.Fatalf("valid spec: %v", err)
	}
	for _, c := range []struct {
		name string
		edit func(*WorkloadIface)
		want string
	}{
		{"long host name", func(s *WorkloadIface) { s.HostName = "sdn0123456789abc" }, "host end: invalid interface name"},
		{"slash", func(s *WorkloadIface) { s.ContainerIfname = "eth/0" }, "container end: invalid interface name"},
		{"no netns", func(s *WorkloadIface) { s.NetNSPath = "" }, "no network namespace path"},
		{"no address", func(s *WorkloadIface) { s.Addr = netip.Prefix{} }, "want an IPv4 or IPv6 address"},
		{"gateway family", func(s *WorkloadIface) { s.Gateway = netip.MustParseAddr("fd00::1") }, "not in the address family"},
		{"gateway is self", func(s *WorkloadIface) { s.Gateway = s.Addr.Addr() }, "workload's own address"},
		{"multicast MAC", func(s *WorkloadIface) { s.MAC = net.HardwareAddr{1, 0, 0x5e, 0, 0, 1} }, "unicast"},
		{"MTU", func(s *WorkloadIface) { s.MTU = 40 }, "MTU 40 out of range"},
	} {
		s := good
		c.edit(&s)
		if err := s.validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
}
