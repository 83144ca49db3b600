package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"syscall"
	"time"
)

// whoamiServe answers every TCP connection and UDP datagram on port with
// name (services: which endpoint did a connection reach?), or with the
// client's address when name is "@source" (SNAT: whom does the outside
// see?). It prints "ready" once it listens.
func whoamiServe(port int, name string) {
	addr := fmt.Sprintf(":%d", port)
	ln, err := net.Listen("tcp4", addr)
	check(err, "listen tcp "+addr)
	pc, err := net.ListenPacket("udp4", addr)
	check(err, "listen udp "+addr)
	fmt.Println("ready")
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(answer(name, from)+"\n"), from)
		}
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			c.Write([]byte(answer(name, c.RemoteAddr()) + "\n"))
			c.Close()
		}()
	}
}

// answer is what whoami says to a client at from.
func answer(name string, from net.Addr) string {
	if name != "@source" {
		return name
	}
	host, _, err := net.SplitHostPort(from.String())
	if err != nil {
		return from.String()
	}
	return host
}

// connectLoop makes count new connections (TCP, or UDP exchanges) to
// target ("host:port"; a name is resolved through the DNS server dns when
// given), one every interval, and prints one line per connection, "ok
// NAME" with the name the server answered or "fail: ERROR" (refused, reset
// and timed out told apart), each followed by the Unix time in
// milliseconds the connection started at, then "summary NAME=N ...
// fail=N".
func connectLoop(target, proto, dns string, count int, timeout, interval time.Duration) {
	d := net.Dialer{Timeout: timeout}
	if dns != "" {
		d.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: timeout}).DialContext(ctx, "udp4", dns)
		}}
	}
	counts := map[string]int{}
	out := bufioWriter()
	for i := 0; i < count; i++ {
		start := time.Now().UnixMilli()
		name, err := exchange(&d, proto, target, timeout)
		if err != nil {
			counts["fail"]++
			fmt.Fprintf(out, "fail: %s %d\n", failure(err), start)
		} else {
			counts[name]++
			fmt.Fprintf(out, "ok %s %d\n", name, start)
		}
		out.Flush()
		if i+1 < count {
			time.Sleep(interval)
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, counts[k]))
	}
	fmt.Fprintf(out, "summary %s\n", strings.Join(parts, " "))
	out.Flush()
}

// exchange makes one connection and reads the server's name.
func exchange(d *net.Dialer, proto, target string, timeout time.Duration) (string, error) {
	network := "tcp4"
	if proto == "udp" {
		network = "udp4"
	}
	c, err := d.Dial(network, target)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if proto == "udp" {
		if _, err := c.Write([]byte("who\n")); err != nil {
			return "", err
		}
	}
	buf := make([]byte, 256)
	n, err := c.Read(buf)
	if n == 0 && err == nil {
		err = io.EOF
	}
	if n == 0 {
		return "", err
	}
	return strings.TrimSpace(string(buf[:n])), nil
}

// failure names how a connection failed: "refused" (a TCP reset or ICMP
// port unreachable), "timeout", or the error.
func failure(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "unreachable"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return err.Error()
}
