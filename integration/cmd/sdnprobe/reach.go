package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// serve answers on the given TCP ports (accept, write "ok\n", close) and
// echoes UDP datagrams on the given UDP ports, until SIGTERM or SIGINT. It
// prints "ready" once every socket listens, so a caller can wait for it.
func serve(tcpPorts, udpPorts string) {
	for _, p := range ports(tcpPorts) {
		ln, err := net.Listen("tcp4", ":"+strconv.Itoa(p))
		check(err, "listen tcp")
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write([]byte("ok\n"))
				_ = c.Close()
			}
		}()
	}
	for _, p := range ports(udpPorts) {
		pc, err := net.ListenPacket("udp4", ":"+strconv.Itoa(p))
		check(err, "listen udp")
		go func() {
			buf := make([]byte, 2048)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = pc.WriteTo(buf[:n], from)
			}
		}()
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}

// ports parses "80,81" ("" is none).
func ports(list string) []int {
	var out []int
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := strconv.Atoi(s)
		if err != nil || p < 1 || p > 65535 {
			fail(fmt.Sprintf("port %q: want 1 to 65535", s))
		}
		out = append(out, p)
	}
	return out
}

// probe tries every target ("IP:tcp:PORT" or "IP:udp:PORT") at once and
// prints one line per target, in the order given: "TARGET ok" when a TCP
// connection was accepted or a UDP datagram echoed within timeout, else
// "TARGET blocked: why". A blocked target needs no RST or ICMP answer: the
// timeout decides.
func probe(targets string, timeout time.Duration) {
	list := strings.Split(targets, ",")
	results := make([]string, len(list))
	var wg sync.WaitGroup
	for i, t := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := reach(t, timeout); err != nil {
				results[i] = t + " blocked: " + err.Error()
			} else {
				results[i] = t + " ok"
			}
		}()
	}
	wg.Wait()
	fmt.Println(strings.Join(results, "\n"))
}

// reach tries one target.
func reach(target string, timeout time.Duration) error {
	f := strings.Split(target, ":")
	if len(f) != 3 {
		fail(fmt.Sprintf("target %q: want IP:tcp:PORT or IP:udp:PORT", target))
	}
	addr := net.JoinHostPort(f[0], f[2])
	switch f[1] {
	case "tcp":
		c, err := net.DialTimeout("tcp4", addr, timeout)
		if err != nil {
			return err
		}
		return c.Close()
	case "udp":
		return udpEcho(addr, timeout)
	}
	fail(fmt.Sprintf("target %q: protocol %q; want tcp or udp", target, f[1]))
	return nil
}

// udpEcho sends a token every timeout/4 (a lost datagram is not a block)
// and waits for it to come back.
func udpEcho(addr string, timeout time.Duration) error {
	c, err := net.Dial("udp4", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	token := fmt.Sprintf("sdnprobe %d %s", os.Getpid(), addr)
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 2048)
	for time.Now().Before(deadline) {
		if _, err := c.Write([]byte(token)); err != nil {
			// ECONNREFUSED from an ICMP port unreachable: say so, try again.
			time.Sleep(timeout / 4)
			continue
		}
		wait := time.Now().Add(timeout / 4)
		if wait.After(deadline) {
			wait = deadline
		}
		_ = c.SetReadDeadline(wait)
		n, err := c.Read(buf)
		if err == nil && string(buf[:n]) == token {
			return nil
		}
	}
	return fmt.Errorf("no echo within %s", timeout)
}

// loop tries every target again and again, each on its own (a new
// connection per TCP try, the next try interval after the last ended),
// until SIGTERM, printing one line per try: "START_UNIX_NANO TARGET
// ok|blocked", START being when the try began, so a caller can tell tries
// before and after an event apart.
func loop(targets string, timeout, interval time.Duration) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	stop := make(chan struct{})
	var mu sync.Mutex
	out := bufioWriter()
	var wg sync.WaitGroup
	for _, t := range strings.Split(targets, ",") {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				start := time.Now()
				word := "ok"
				if reach(t, timeout) != nil {
					word = "blocked"
				}
				mu.Lock()
				fmt.Fprintf(out, "%d %s %s\n", start.UnixNano(), t, word)
				mu.Unlock()
				select {
				case <-stop:
					return
				case <-time.After(interval):
				}
			}
		}()
	}
	<-sig
	close(stop)
	wg.Wait()
	_ = out.Flush()
}

func bufioWriter() *bufio.Writer { return bufio.NewWriter(os.Stdout) }
