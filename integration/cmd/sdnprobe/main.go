// Command sdnprobe crafts and counts packets inside a workload's network
// namespace for the integration tests: it sends UDP and ARP frames with
// chosen (possibly forged) source addresses through an AF_PACKET socket,
// and counts what arrives, so tests can check anti-spoofing at the
// receiver with a positive control from the same sender.
//
//	sdnprobe udp-send  -iface eth0 -src-mac M -src-ip A -dst-mac D -dst-ip B -port P -count N -token T
//	sdnprobe udp-count -port P -token T -seconds S       prints how many datagrams carrying T arrived
//	sdnprobe arp       -iface eth0 -src-mac M -src-ip A -target B -seconds S   prints "reply MAC" or "no reply"
//	sdnprobe arp-count -iface eth0 -src-ip A -seconds S   prints how many ARP frames with sender address A arrived
//	sdnprobe udp-seq-send -dst B -port P -count N -interval 5ms  a numbered stream (real socket)
//	sdnprobe udp-seq-recv -port P -seconds S             prints received and missing counts
//	sdnprobe http-serve -listen ADDR:PORT                 serves "ok\n" over HTTP/1.1 until killed
//	                                                      (the target of wrk's connections/s runs)
//	sdnprobe serve -tcp 80,81 -udp 53                     accepts TCP and echoes UDP until SIGTERM; prints "ready"
//	sdnprobe probe -targets IP:tcp:80,IP:udp:53 -timeout 400ms   tries every target at once; one line each:
//	                                                      "TARGET ok" or "TARGET blocked: why"
//	sdnprobe loop -targets ... -timeout 300ms -interval 20ms   tries each again and again until SIGTERM;
//	                                                      one line per try: "START_UNIX_NANO TARGET ok|blocked"
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: sdnprobe udp-send|udp-count|arp|arp-count|udp-seq-send|udp-seq-recv|http-serve|serve|probe|loop|whoami|connect [flags]")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	iface := fs.String("iface", "eth0", "interface to send on")
	srcMAC := fs.String("src-mac", "", "source MAC (default: the interface's)")
	srcIP := fs.String("src-ip", "", "source IPv4 (default: the interface's)")
	dstMAC := fs.String("dst-mac", "ff:ff:ff:ff:ff:ff", "destination MAC")
	dstIP := fs.String("dst-ip", "", "destination IPv4")
	dst := fs.String("dst", "", "destination IPv4 (udp-seq-send)")
	target := fs.String("target", "", "address asked for (arp)")
	port := fs.Int("port", 9999, "UDP port")
	count := fs.Int("count", 10, "packets to send")
	token := fs.String("token", "sdnprobe", "payload marker")
	seconds := fs.Float64("seconds", 2, "how long to listen")
	interval := fs.Duration("interval", 5*time.Millisecond, "gap between packets")
	listen := fs.String("listen", "", "address:port to serve HTTP on (http-serve)")
	tcpPorts := fs.String("tcp", "", "TCP ports to accept on, e.g. 80,81 (serve)")
	udpPorts := fs.String("udp", "", "UDP ports to echo on, e.g. 53 (serve)")
	targets := fs.String("targets", "", "IP:tcp:PORT and IP:udp:PORT, comma-separated (probe)")
	timeout := fs.Duration("timeout", 400*time.Millisecond, "how long a target has to answer (probe, connect)")
	protocol := fs.String("proto", "tcp", "tcp or udp (connect)")
	dnsServer := fs.String("dns", "", "DNS server address:port names are resolved with (connect)")
	fs.Parse(os.Args[2:])
	wait := time.Duration(*seconds * float64(time.Second))
	switch os.Args[1] {
	case "udp-send":
		ifi, smac, sip := local(*iface, *srcMAC, *srcIP)
		frame := udpFrame(mustMAC(*dstMAC), smac, net.ParseIP(*dstIP).To4(), sip, *port, []byte(*token))
		sendRaw(ifi, frame, *count, *interval)
	case "udp-count":
		fmt.Println(countUDP(*port, *token, wait))
	case "arp":
		ifi, smac, sip := local(*iface, *srcMAC, *srcIP)
		fmt.Println(arpAsk(ifi, smac, sip, net.ParseIP(*target).To4(), wait))
	case "arp-count":
		ifi, err := net.InterfaceByName(*iface)
		check(err, "interface")
		fmt.Println(countARP(ifi, net.ParseIP(*srcIP).To4(), wait))
	case "udp-seq-send":
		seqSend(*dst, *port, *count, *interval)
	case "udp-seq-recv":
		seqRecv(*port, wait)
	case "http-serve":
		httpServe(*listen)
	case "serve":
		serve(*tcpPorts, *udpPorts)
	case "probe":
		probe(*targets, *timeout)
	case "loop":
		loop(*targets, *timeout, *interval)
	case "whoami":
		whoamiServe(*port, *token)
	case "connect":
		connectLoop(*target, *protocol, *dnsServer, *count, *timeout, *interval)
	default:
		fail("unknown command " + os.Args[1])
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "sdnprobe:", msg)
	os.Exit(2)
}

func check(err error, what string) {
	if err != nil {
		fail(what + ": " + err.Error())
	}
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	check(err, "mac "+s)
	return m
}

// local fills in the interface's own addresses where none were forged.
func local(name, mac, ip string) (*net.Interface, net.HardwareAddr, net.IP) {
	ifi, err := net.InterfaceByName(name)
	check(err, "interface")
	smac := ifi.HardwareAddr
	if mac != "" {
		smac = mustMAC(mac)
	}
	var sip net.IP
	if ip != "" {
		sip = net.ParseIP(ip).To4()
	} else {
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				sip = n.IP.To4()
			}
		}
	}
	if sip == nil {
		fail("no source IPv4")
	}
	return ifi, smac, sip
}

func csum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

func udpFrame(dmac, smac net.HardwareAddr, dip, sip net.IP, port int, payload []byte) []byte {
	udp := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:], 40000)
	binary.BigEndian.PutUint16(udp[2:], uint16(port))
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[8:], payload) // checksum 0: none, allowed for UDP over IPv4
	ip := make([]byte, 20)
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
	copy(ip[12:], sip)
	copy(ip[16:], dip)
	binary.BigEndian.PutUint16(ip[10:], csum(ip))
	eth := append(append(append([]byte{}, dmac...), smac...), 0x08, 0x00)
	return append(append(eth, ip...), udp...)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func rawSocket(ifi *net.Interface, proto uint16) int {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(proto)))
	check(err, "AF_PACKET socket")
	check(unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifi.Index}), "bind")
	return fd
}

func sendRaw(ifi *net.Interface, frame []byte, n int, gap time.Duration) {
	fd := rawSocket(ifi, unix.ETH_P_ALL)
	defer unix.Close(fd)
	for i := 0; i < n; i++ {
		_, err := unix.Write(fd, frame)
		check(err, "send")
		time.Sleep(gap)
	}
}

func countUDP(port int, token string, wait time.Duration) int {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: port})
	check(err, "listen")
	defer c.Close()
	deadline := time.Now().Add(wait)
	n := 0
	buf := make([]byte, 2048)
	for {
		c.SetReadDeadline(deadline)
		k, _, err := c.ReadFromUDP(buf)
		if err != nil {
			return n
		}
		if strings.Contains(string(buf[:k]), token) {
			n++
		}
	}
}

func arpAsk(ifi *net.Interface, smac net.HardwareAddr, sip, target net.IP, wait time.Duration) string {
	fd := rawSocket(ifi, unix.ETH_P_ARP)
	defer unix.Close(fd)
	arp := []byte{0, 1, 8, 0, 6, 4, 0, 1}
	arp = append(append(arp, smac...), sip...)
	arp = append(append(arp, make([]byte, 6)...), target...)
	frame := append(append(append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, smac...), 0x08, 0x06), arp...)
	_, err := unix.Write(fd, frame)
	check(err, "send arp")
	tv := unix.NsecToTimeval(wait.Nanoseconds())
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	deadline := time.Now().Add(wait)
	buf := make([]byte, 2048)
	for time.Now().Before(deadline) {
		k, err := unix.Read(fd, buf)
		if err != nil {
			break
		}
		b := buf[:k]
		if len(b) >= 42 && b[12] == 0x08 && b[13] == 0x06 && b[21] == 2 && net.IP(b[28:32]).Equal(target) && net.IP(b[38:42]).Equal(sip) {
			return "reply " + net.HardwareAddr(b[22:28]).String()
		}
	}
	return "no reply"
}

// countARP counts ARP frames arriving on ifi whose sender address is spa.
func countARP(ifi *net.Interface, spa net.IP, wait time.Duration) int {
	fd := rawSocket(ifi, unix.ETH_P_ARP)
	defer unix.Close(fd)
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	n := 0
	buf := make([]byte, 2048)
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); {
		k, err := unix.Read(fd, buf)
		if err != nil {
			continue
		}
		if b := buf[:k]; len(b) >= 42 && b[12] == 0x08 && b[13] == 0x06 && net.IP(b[28:32]).Equal(spa) {
			n++
		}
	}
	return n
}

func seqSend(dst string, port, n int, gap time.Duration) {
	c, err := net.Dial("udp4", net.JoinHostPort(dst, fmt.Sprint(port)))
	check(err, "dial")
	defer c.Close()
	buf := make([]byte, 8)
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint64(buf, uint64(i))
		c.Write(buf)
		time.Sleep(gap)
	}
}

func seqRecv(port int, wait time.Duration) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: port})
	check(err, "listen")
	defer c.Close()
	seen := map[uint64]bool{}
	var max uint64
	deadline := time.Now().Add(wait)
	buf := make([]byte, 64)
	for {
		c.SetReadDeadline(deadline)
		k, _, err := c.ReadFromUDP(buf)
		if err != nil {
			break
		}
		if k == 8 {
			v := binary.BigEndian.Uint64(buf)
			seen[v] = true
			if v > max {
				max = v
			}
		}
	}
	missing := 0
	if len(seen) > 0 {
		for i := uint64(0); i <= max; i++ {
			if !seen[i] {
				missing++
			}
		}
	}
	fmt.Printf("received %d missing %d last %d\n", len(seen), missing, max)
}

// httpServe answers every request with a 3-byte body, as cheaply as
// net/http allows, so that a client measuring connections per second (wrk
// with "Connection: close") measures the network, not the server. A
// request asking for "Connection: close" gets it.
func httpServe(addr string) {
	if addr == "" {
		fail("http-serve: -listen ADDR:PORT is required")
	}
	body := []byte("ok\n")
	srv := &http.Server{
		Addr: addr,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "3")
			w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       30 * time.Second,
	}
	check(srv.ListenAndServe(), "http-serve "+addr)
}
