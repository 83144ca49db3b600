package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Test traffic runs in-process: sockets are created on a thread that
// entered the workload's namespace (a socket stays in the namespace it was
// created in) and used from any goroutine afterwards.

const echoPort = 7777

// inNS runs fn on a fresh OS thread inside the network namespace at path.
// The thread stays locked and is discarded afterwards.
func inNS(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the runtime ends the thread
		f, err := os.Open(path)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// startEcho serves UDP and TCP echo on echoPort in the namespace at path
// until the test ends.
func startEcho(t *testing.T, path string) {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	err := inNS(path, func() error {
		var err error
		if pc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", echoPort)); err != nil {
			return err
		}
		ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", echoPort))
		return err
	})
	if err != nil {
		t.Fatalf("echo server in %s: %v", path, err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { pc.Close(); ln.Close(); wg.Wait() })
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				_, _ = io.Copy(c, c)
			})
		}
	})
}

// dialUDP returns a UDP socket in the namespace at from, connected to
// dst:echoPort.
func dialUDP(from string, dst netip.Addr) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := inNS(from, func() error {
		var err error
		c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, echoPort)))
		return err
	})
	return c, err
}

// udpReaches reports whether a UDP echo from the namespace at from to dst
// comes back (three tries, timeout each).
func udpReaches(from string, dst netip.Addr, timeout time.Duration) (bool, error) {
	c, err := dialUDP(from, dst)
	if err != nil {
		return false, err
	}
	defer c.Close()
	msg := make([]byte, 16)
	rand.Read(msg)
	buf := make([]byte, 64)
	for range 3 {
		if _, err := c.Write(msg); err != nil {
			return false, err
		}
		_ = c.SetReadDeadline(time.Now().Add(timeout))
		for {
			n, err := c.Read(buf)
			if err != nil {
				break // timeout, or ICMP unreachable: try again
			}
			if bytes.Equal(buf[:n], msg) {
				return true, nil
			}
		}
	}
	return false, nil
}

// tcpEcho sends size bytes over TCP from the namespace at from to
// dst:echoPort and checks they come back unchanged.
func tcpEcho(from string, dst netip.Addr, size int) error {
	var c net.Conn
	err := inNS(from, func() error {
		var err error
		c, err = net.DialTimeout("tcp4", netip.AddrPortFrom(dst, echoPort).String(), 3*time.Second)
		return err
	})
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	data := make([]byte, size)
	rand.Read(data)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		errc <- err
	}()
	got := make([]byte, size)
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("read echo: %w", err)
	}
	if err := <-errc; err != nil {
		return err
	}
	if !bytes.Equal(got, data) {
		return errors.New("echo differs from what was sent")
	}
	return nil
}

// stream sends numbered UDP datagrams from the namespace at from to dst
// every interval until ctx ends, and counts the echoes.
type stream struct {
	sent, received int
	lost           []time.Time // when the datagrams without an echo were sent
	done           chan struct{}
}

func startStream(ctx context.Context, from string, dst netip.Addr, interval time.Duration) (*stream, error) {
	c, err := dialUDP(from, dst)
	if err != nil {
		return nil, err
	}
	s := &stream{done: make(chan struct{})}
	seen := map[uint32]bool{}
	var mu sync.Mutex
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		buf := make([]byte, 64)
		for {
			n, err := c.Read(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil || n != 4 {
				continue // ICMP errors surface as read errors
			}
			mu.Lock()
			seen[binary.BigEndian.Uint32(buf)] = true
			mu.Unlock()
		}
	}()
	go func() {
		defer close(s.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		var seq uint32
		var sentAt []time.Time
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case <-tick.C:
				seq++
				sentAt = append(sentAt, time.Now())
				_, _ = c.Write(binary.BigEndian.AppendUint32(nil, seq))
			}
		}
		time.Sleep(300 * time.Millisecond) // stragglers
		c.Close()
		<-recvDone
		mu.Lock()
		s.sent, s.received = int(seq), len(seen)
		for k := uint32(1); k <= seq; k++ {
			if !seen[k] {
				s.lost = append(s.lost, sentAt[k-1])
			}
		}
		mu.Unlock()
	}()
	return s, nil
}
