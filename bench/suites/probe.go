package suites

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/vishvananda/netns"
)

// This file opens sockets inside workload network namespaces from the
// bench process itself: a goroutine locked to its thread enters the
// namespace, creates the socket and leaves. A socket belongs to the
// namespace it was created in for its whole life, so servers and probes run
// as ordinary goroutines afterwards, with no `ip netns exec` per connection.

// inNS runs fn on a thread that has entered the named network namespace.
// fn runs on a fresh goroutine: if the thread cannot be switched back, the
// goroutine ends still locked and the runtime discards the thread, so no
// other goroutine ever runs in the wrong namespace.
func inNS(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current network namespace: %w", err)
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(ns)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open network namespace %s: %w", ns, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave network namespace %s: %w", ns, err))
			return // still locked: the thread dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// probeReply is what the probe servers answer, so a probe knows it reached
// one of them.
var probeReply = []byte("sdnbench\n")

// nsServers answers TCP connections (with probeReply, then close) on some
// ports and echoes UDP datagrams on one port, inside one namespace.
type nsServers struct {
	closers []io.Closer
	wg      sync.WaitGroup
}

// serveInNS starts the servers in namespace ns, listening on every address.
func serveInNS(ns string, tcpPorts []int, udpPort int) (*nsServers, error) {
	s := &nsServers{}
	for _, p := range tcpPorts {
		var l net.Listener
		if err := inNS(ns, func() (err error) {
			l, err = net.Listen("tcp4", ":"+strconv.Itoa(p))
			return err
		}); err != nil {
			s.Close()
			return nil, fmt.Errorf("listen on tcp/%d in %s: %w", p, ns, err)
		}
		s.closers = append(s.closers, l)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = c.Write(probeReply)
				_ = c.Close()
			}
		}()
	}
	var pc net.PacketConn
	if err := inNS(ns, func() (err error) {
		pc, err = net.ListenPacket("udp4", ":"+strconv.Itoa(udpPort))
		return err
	}); err != nil {
		s.Close()
		return nil, fmt.Errorf("listen on udp/%d in %s: %w", udpPort, ns, err)
	}
	s.closers = append(s.closers, pc)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	return s, nil
}

// Close stops the servers and waits for their goroutines.
func (s *nsServers) Close() {
	for _, c := range s.closers {
		_ = c.Close()
	}
	s.wg.Wait()
}

// Probe timing: a TCP connect waits long enough for one SYN retransmission
// (Linux resends after 1 s); UDP and ICMP try up to probeTries times,
// probeWait each. A probe behaves the same whether it is expected to pass
// or not, so allowed and denied pairs send the same packets.
const (
	tcpProbeTimeout = 1500 * time.Millisecond
	probeTries      = 3
	probeWait       = 400 * time.Millisecond
)

// probeTCP connects from namespace ns to dst:port and reads the server's
// reply; it reports whether the reply came.
func probeTCP(ctx context.Context, ns, dst string, port int) (bool, error) {
	var c net.Conn
	err := inNS(ns, func() error {
		d := net.Dialer{Timeout: tcpProbeTimeout}
		var err error
		c, err = d.DialContext(ctx, "tcp4", net.JoinHostPort(dst, strconv.Itoa(port)))
		return err
	})
	if err != nil {
		// A dial error (timed out: dropped; refused, unreachable) means
		// not through; anything else (the namespace) is the bench's.
		var oe *net.OpError
		if errors.As(err, &oe) && ctx.Err() == nil {
			return false, nil
		}
		return false, err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(tcpProbeTimeout))
	got, _ := io.ReadAll(c)
	return bytes.Equal(got, probeReply), nil
}

// probeUDP sends a datagram from namespace ns to dst:port and waits for the
// echo, up to probeTries times.
func probeUDP(ctx context.Context, ns, dst string, port int) (bool, error) {
	var c net.Conn
	if err := inNS(ns, func() (err error) {
		c, err = net.Dial("udp4", net.JoinHostPort(dst, strconv.Itoa(port)))
		return err
	}); err != nil {
		return false, err
	}
	defer c.Close()
	token := []byte(fmt.Sprintf("sdnbench %d", rand.Uint64()))
	buf := make([]byte, 1500)
	for try := 0; try < probeTries && ctx.Err() == nil; try++ {
		if _, err := c.Write(token); err != nil {
			continue // e.g. ECONNREFUSED from an earlier ICMP error
		}
		deadline := time.Now().Add(probeWait)
		for {
			_ = c.SetReadDeadline(deadline)
			n, err := c.Read(buf)
			if err != nil {
				break
			}
			if bytes.Equal(buf[:n], token) {
				return true, nil
			}
		}
	}
	return false, ctx.Err()
}

// probeICMP sends an ICMP echo request from namespace ns to dst and waits
// for the reply, up to probeTries times (a raw socket: the destination's
// kernel answers, no server needed).
func probeICMP(ctx context.Context, ns, dst string) (bool, error) {
	to, err := net.ResolveIPAddr("ip4", dst)
	if err != nil {
		return false, err
	}
	var c net.PacketConn
	if err := inNS(ns, func() (err error) {
		c, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	}); err != nil {
		return false, err
	}
	defer c.Close()
	id := uint16(rand.Uint32())
	buf := make([]byte, 1500)
	for seq := uint16(1); seq <= probeTries && ctx.Err() == nil; seq++ {
		msg := []byte{8, 0, 0, 0, byte(id >> 8), byte(id), byte(seq >> 8), byte(seq), 's', 'd', 'n', 'b', 'e', 'n', 'c', 'h'}
		binary.BigEndian.PutUint16(msg[2:], inetChecksum(msg))
		if _, err := c.WriteTo(msg, to); err != nil {
			return false, fmt.Errorf("send echo request from %s to %s: %w", ns, dst, err)
		}
		deadline := time.Now().Add(probeWait)
		for {
			_ = c.SetReadDeadline(deadline)
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				break
			}
			// Every raw ICMP socket of the namespace sees every reply:
			// keep ours (source, type echo reply, our id and seq).
			m := buf[:n]
			if a, ok := from.(*net.IPAddr); ok && a.IP.Equal(to.IP) && len(m) >= 8 && m[0] == 0 &&
				binary.BigEndian.Uint16(m[4:]) == id && binary.BigEndian.Uint16(m[6:]) == seq {
				return true, nil
			}
		}
	}
	return false, ctx.Err()
}

// inetChecksum is the Internet checksum (RFC 1071) of b.
func inetChecksum(b []byte) uint16 {
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
