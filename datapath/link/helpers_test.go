package link

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Test addresses: workloads in 10.128.0.0/14, only inside namespaces the
// test created. Nothing is configured in the namespace the test runs in.

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to create network namespaces")
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// testNS creates a uniquely named namespace, deleted when the test ends.
func testNS(t *testing.T, role string) string {
	t.Helper()
	name := "sdnt-" + randHex(4) + "-" + role
	path, err := NewNS(name)
	if err != nil {
		t.Fatalf("NewNS: %v", err)
	}
	t.Cleanup(func() {
		if err := DeleteNS(name); err != nil {
			t.Errorf("DeleteNS(%q): %v", name, err)
		}
	})
	return path
}

func openT(t *testing.T, path string) *Handle {
	t.Helper()
	h, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// workloadSpec returns a spec for a workload at addr in a fresh namespace,
// with its host end in hostNS. The pair is torn down when the test ends.
func workloadSpec(t *testing.T, hostNS, addr string) WorkloadIface {
	t.Helper()
	p := netip.MustParsePrefix(addr)
	a := p.Addr().As4()
	s := WorkloadIface{
		HostName:        HostVethName("ctr-"+randHex(8), "eth0"),
		HostNSPath:      hostNS,
		ContainerIfname: "eth0",
		NetNSPath:       testNS(t, "wl"),
		MAC:             net.HardwareAddr{0x0a, 0x58, a[0], a[1], a[2], a[3]},
		Addr:            p,
		Gateway:         netip.MustParseAddr("10.128.0.1"),
		MTU:             1450,
		TxChecksumOff:   true,
	}
	t.Cleanup(func() {
		if err := TeardownWorkload(s.HostNSPath, s.HostName); err != nil {
			t.Errorf("TeardownWorkload: %v", err)
		}
	})
	return s
}

func setup(t *testing.T, s WorkloadIface) int {
	t.Helper()
	idx, err := SetupWorkload(s)
	if err != nil {
		t.Fatalf("SetupWorkload: %v", err)
	}
	return idx
}

func mustLink(t *testing.T, h *Handle, name string) netlink.Link {
	t.Helper()
	l, err := h.linkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// snapshot renders what a user could observe of a link: attributes, IPv4
// addresses and routes, checksum offload.
func snapshot(t *testing.T, h *Handle, name string) string {
	t.Helper()
	l := mustLink(t, h, name)
	a := l.Attrs()
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s %s mtu=%d mac=%s flags=%v master=%d\n", a.Index, a.Name, l.Type(), a.MTU, a.HardwareAddr, a.Flags, a.MasterIndex)
	addrs, err := h.addrs(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, ad := range addrs {
		fmt.Fprintf(&b, "addr %s\n", ad.IPNet)
	}
	routes, err := h.routes(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var rs []string
	for _, r := range routes {
		rs = append(rs, fmt.Sprintf("route %s proto %d scope %d", keyOf(r), r.Protocol, r.Scope))
	}
	slices.Sort(rs)
	b.WriteString(strings.Join(rs, "\n"))
	on, err := h.TxChecksum(name)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "\ntx-csum=%v", on)
	return b.String()
}

// waitOperUp waits until the kernel reports the link's operational state up
// (carrier changes reach userspace asynchronously, via linkwatch).
func waitOperUp(t *testing.T, h *Handle, name string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l := mustLink(t, h, name)
		if l.Attrs().OperState == netlink.OperUp {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s in %s: operstate %v, want up", name, h.where(), l.Attrs().OperState)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping sends count ICMP echo requests from inside the namespace at nsPath to
// dst, waiting up to timeout for each reply, like `ping -c count -W timeout`
// (this machine has no ping binary). It returns how many replies came back.
func ping(nsPath string, dst netip.Addr, count int, timeout time.Duration) (int, error) {
	h, err := Open(nsPath)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	fd := -1
	if err := runInNS(h.ns, func() error {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		return err
	}); err != nil {
		return 0, fmt.Errorf("raw ICMP socket in %s: %w", nsPath, err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return 0, err
	}
	to := &unix.SockaddrInet4{Addr: dst.As4()}
	var idb [2]byte
	rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	replies := 0
	buf := make([]byte, 1500)
	for seq := uint16(1); seq <= uint16(count); seq++ {
		msg := []byte{8, 0, 0, 0, idb[0], idb[1], byte(seq >> 8), byte(seq), 's', 'd', 'n', '!'}
		binary.BigEndian.PutUint16(msg[2:], icmpChecksum(msg))
		if err := unix.Sendto(fd, msg, 0, to); err != nil {
			return replies, fmt.Errorf("send echo request to %s: %w", dst, err)
		}
		for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
			n, from, err := unix.Recvfrom(fd, buf, 0)
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return replies, err
			}
			f, ok := from.(*unix.SockaddrInet4)
			if !ok || f.Addr != to.Addr || n < 20 {
				continue
			}
			icmp := buf[int(buf[0]&0x0f)*4 : n]
			if len(icmp) >= 8 && icmp[0] == 0 && binary.BigEndian.Uint16(icmp[4:]) == id &&
				binary.BigEndian.Uint16(icmp[6:]) == seq {
				replies++
				break
			}
		}
	}
	return replies, nil
}

func icmpChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
