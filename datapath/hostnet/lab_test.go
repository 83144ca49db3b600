package hostnet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/sdn-dev/sdn/datapath/link"
)

// The lab: three namespaces made by the test, nothing in the one it runs in.
//
//	outside (198.18.0.2, eth0) ── ul0 (198.18.0.1) host sdn-gw0 (10.128.0.1/23) ── ovs0 (10.128.0.5/23) "ovs"
//
// "ovs" stands for OVS and the workloads behind it: it holds the workload
// address 10.128.0.5 and, on lo, the VIP 172.30.0.10, as if OVS had
// translated it to an endpoint; it forwards anything else (the VIP
// 172.30.0.99, which has no endpoint) back to the host through ovs0, as OVS
// sends a packet it did not translate out of the gateway port.
type lab struct {
	host, ovs, outside string // namespace names
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) for network namespaces")
	}
	for _, bin := range []string{"nft", "nsenter", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (make test installs it): %v", bin, err)
		}
	}
}

func newLab(t *testing.T) *lab {
	t.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	id := hex.EncodeToString(b)
	l := &lab{host: "hnt-" + id + "-host", ovs: "hnt-" + id + "-ovs", outside: "hnt-" + id + "-out"}
	for _, name := range []string{l.host, l.ovs, l.outside} {
		if _, err := link.NewNS(name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := link.DeleteNS(name); err != nil {
				t.Errorf("DeleteNS(%s): %v", name, err)
			}
		})
	}
	for _, cmd := range []string{
		"-n " + l.host + " link add sdn-gw0 type veth peer name ovs0 netns " + l.ovs,
		"-n " + l.host + " link add ul0 type veth peer name eth0 netns " + l.outside,
		"-n " + l.host + " addr add 10.128.0.1/23 dev sdn-gw0",
		"-n " + l.host + " addr add 198.18.0.1/24 dev ul0",
		"-n " + l.host + " link set sdn-gw0 up",
		"-n " + l.host + " link set ul0 up",
		// datapath/host's route to every workload.
		"-n " + l.host + " route add 10.128.0.0/14 dev sdn-gw0 proto 83",
		"-n " + l.ovs + " addr add 10.128.0.5/23 dev ovs0",
		"-n " + l.ovs + " addr add 172.30.0.10/32 dev lo",
		"-n " + l.ovs + " link set ovs0 up",
		"-n " + l.ovs + " route add default via 10.128.0.1",
		"-n " + l.outside + " addr add 198.18.0.2/24 dev eth0",
		"-n " + l.outside + " link set eth0 up",
	} {
		ip(t, strings.Fields(cmd)...)
	}
	// OVS answers the host's ARP for every VIP (as for every workload);
	// the lab's "ovs" answers for its own 172.30.0.10 only.
	mac := strings.Fields(ip(t, "-n", l.ovs, "-br", "link", "show", "ovs0"))[2]
	ip(t, "-n", l.host, "neigh", "replace", "172.30.0.99", "lladdr", mac, "dev", "sdn-gw0", "nud", "permanent")
	// A host as Debian sets it up: strict reverse-path filtering.
	l.sysctl(t, l.host, "ipv4/conf/all/rp_filter", "1")
	// A new namespace may inherit forwarding from the root one.
	l.sysctl(t, l.host, "ipv4/ip_forward", "0")
	l.sysctl(t, l.ovs, "ipv4/ip_forward", "1")
	l.sysctl(t, l.ovs, "ipv4/conf/all/send_redirects", "0")
	l.sysctl(t, l.ovs, "ipv4/conf/ovs0/send_redirects", "0")
	return l
}

func ip(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (l *lab) sysctl(t *testing.T, ns, key, val string) {
	t.Helper()
	h, err := link.Open(link.NSPath(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.SetNetSysctl(key, val); err != nil {
		t.Fatal(err)
	}
}

func (l *lab) readSysctl(t *testing.T, ns, key string) string {
	t.Helper()
	h, err := link.Open(link.NSPath(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	v, err := h.NetSysctl(key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// nftIn runs nft with args in the named namespace.
func nftIn(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := nft(context.Background(), link.NSPath(ns), "", args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// inNS runs fn on a thread inside the named namespace. The thread stays
// locked and is thrown away afterwards; sockets made there keep the
// namespace and may be used from any goroutine.
func inNS(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.GetFromPath(link.NSPath(ns))
		if err != nil {
			errc <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// serveTCP listens on addr in ns and tells every client the address it
// saw the connection come from, then closes it.
func serveTCP(t *testing.T, ns, addr string) {
	t.Helper()
	var ln net.Listener
	if err := inNS(ns, func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s", c.RemoteAddr().(*net.TCPAddr).IP)
			c.Close()
		}
	}()
}

// serveUDP answers every datagram on addr in ns with its source address.
func serveUDP(t *testing.T, ns, addr string) {
	t.Helper()
	var pc net.PacketConn
	if err := inNS(ns, func() (err error) { pc, err = net.ListenPacket("udp4", addr); return err }); err != nil {
		t.Fatalf("listen on udp %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(from.(*net.UDPAddr).IP.String()), from)
		}
	}()
}

// ask connects from ns to dst over network (tcp or udp), sends a datagram
// if udp, and returns what came back: the source address the server saw.
// A refused connection comes back as an error wrapping ECONNREFUSED.
func ask(ns, network, dst string) (string, time.Duration, error) {
	var c net.Conn
	start := time.Now()
	if err := inNS(ns, func() (err error) { c, err = net.DialTimeout(network+"4", dst, 3*time.Second); return err }); err != nil {
		return "", time.Since(start), err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if network == "udp" {
		if _, err := c.Write([]byte("who am I")); err != nil {
			return "", time.Since(start), err
		}
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		return string(buf[:n]), time.Since(start), err
	}
	b, err := io.ReadAll(c)
	return string(b), time.Since(start), err
}

// wantAnswer asserts the server at dst answered a client in ns and saw
// the connection come from src.
func wantAnswer(t *testing.T, ns, network, dst, src string) {
	t.Helper()
	got, _, err := ask(ns, network, dst)
	if err != nil || got != src {
		t.Errorf("%s from %s to %s: got %q, %v; want an answer that saw source %s", network, ns, dst, got, err, src)
	}
}

// wantRefused asserts a client in ns is refused at once by dst: a TCP
// reset or an ICMP port unreachable, not a timeout.
func wantRefused(t *testing.T, ns, network, dst string) {
	t.Helper()
	got, took, err := ask(ns, network, dst)
	if !errors.Is(err, syscall.ECONNREFUSED) || took > time.Second {
		t.Errorf("%s from %s to %s: got %q, %v after %v; want connection refused at once", network, ns, dst, got, err, took)
	}
}
