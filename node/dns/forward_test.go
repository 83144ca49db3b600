package dns

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// TestForward: a name outside the domain goes to the host's resolver and
// its answer comes back, with the client's query id.
func TestForward(t *testing.T) {
	up := startUpstream(t, aAnswer("198.18.7.7"))
	s, _, _ := startDNS(t, up.addr)
	for _, netw := range []string{"udp", "tcp"} {
		r := ask(t, netw, s.Addr(), "example.org", mdns.TypeA)
		if r.Rcode != mdns.RcodeSuccess || !slices.Equal(addresses(r.Answer), []string{"198.18.7.7"}) {
			t.Fatalf("example.org over %s: %s %v", netw, mdns.RcodeToString[r.Rcode], r.Answer)
		}
	}
	// A name that only ends like the domain is not in it.
	if r := ask(t, "udp", s.Addr(), "web.proj1.notsdn.local", mdns.TypeA); len(r.Answer) != 1 {
		t.Fatalf("web.proj1.notsdn.local: %s %v; want it forwarded", mdns.RcodeToString[r.Rcode], r.Answer)
	}
	if q := up.queries(); len(q) != 3 {
		t.Fatalf("the resolver saw %v; want 3 queries", q)
	}
}

// TestForwardTruncatedRetriesTCP: a truncated UDP answer is asked again
// over TCP; the client gets the whole answer over TCP and, over UDP, one
// that fits its buffer and says it was truncated.
func TestForwardTruncatedRetriesTCP(t *testing.T) {
	up := startUpstream(t, func(r *mdns.Msg, netw string) *mdns.Msg {
		m := new(mdns.Msg)
		m.SetReply(r)
		if netw == "udp" {
			m.Truncated = true
			return m
		}
		for i := range 60 {
			m.Answer = append(m.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: r.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60},
				A: net.IPv4(198, 18, 9, byte(i+1))})
		}
		return m
	})
	s, _, _ := startDNS(t, up.addr)
	r := ask(t, "tcp", s.Addr(), "big.example.org", mdns.TypeA)
	if len(r.Answer) != 60 || r.Truncated {
		t.Fatalf("over TCP: %d answers, truncated %v; want 60, whole", len(r.Answer), r.Truncated)
	}
	if q := up.queries(); !slices.Equal(q, []string{"udp", "tcp"}) {
		t.Fatalf("the resolver saw %v; want udp then tcp", q)
	}
	r = ask(t, "udp", s.Addr(), "big.example.org", mdns.TypeA)
	if !r.Truncated || len(r.Answer) >= 60 {
		t.Fatalf("over UDP (512 bytes): %d answers, truncated %v; want fewer, truncated", len(r.Answer), r.Truncated)
	}
}

// TestForwardFailures: a dead resolver and one that refuses are passed
// over for the next; when none answers, SERVFAIL.
func TestForwardFailures(t *testing.T) {
	dead := deadAddr(t)
	refuses := startUpstream(t, func(r *mdns.Msg, _ string) *mdns.Msg { m := new(mdns.Msg); m.SetRcode(r, mdns.RcodeRefused); return m })
	good := startUpstream(t, aAnswer("198.18.7.8"))
	s, _, _ := startDNS(t, dead, refuses.addr, good.addr)
	r := ask(t, "udp", s.Addr(), "example.org", mdns.TypeA)
	if !slices.Equal(addresses(r.Answer), []string{"198.18.7.8"}) || len(refuses.queries()) != 1 {
		t.Fatalf("dead, refusing, good: %s %v (the refusing one saw %v)", mdns.RcodeToString[r.Rcode], r.Answer, refuses.queries())
	}

	s2, _, _ := startDNS(t, dead)
	if r := ask(t, "tcp", s2.Addr(), "example.org", mdns.TypeA); r.Rcode != mdns.RcodeServerFailure {
		t.Fatalf("no resolver answers: %s; want SERVFAIL", mdns.RcodeToString[r.Rcode])
	}
	s3, _, _ := startDNS(t)
	if r := ask(t, "udp", s3.Addr(), "example.org", mdns.TypeA); r.Rcode != mdns.RcodeServerFailure {
		t.Fatalf("no resolver at all: %s; want SERVFAIL", mdns.RcodeToString[r.Rcode])
	}
}

// deadAddr is a loopback UDP address nothing answers on.
func deadAddr(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// TestResolvConf: the resolvers are resolv.conf's nameservers, read again
// when the file changes, less this server's own address.
func TestResolvConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	write := func(body string) {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("# the host's\nsearch example.org\nnameserver 192.0.2.53\nnameserver 10.128.0.1\noptions ndots:2\n")
	self := func(a string) bool { return sameAddr(a, "10.128.0.1:53") }
	u := newUpstreams(path, nil, self)
	now := time.Unix(1000, 0)
	got, err := u.get(now)
	if err != nil || !slices.Equal(got, []string{"192.0.2.53:53"}) {
		t.Fatalf("upstreams: %v, %v; want 192.0.2.53:53 alone", got, err)
	}
	write("nameserver 192.0.2.54\nnameserver 192.0.2.55\n")
	now = now.Add(reloadEvery)
	if got, err := u.get(now); err != nil || !slices.Equal(got, []string{"192.0.2.54:53", "192.0.2.55:53"}) {
		t.Fatalf("after a change: %v, %v", got, err)
	}
	write("nameserver 10.128.0.1\n")
	now = now.Add(reloadEvery)
	if got, err := u.get(now); len(got) != 0 || err == nil || !strings.Contains(err.Error(), "no nameserver but this DNS server") {
		t.Fatalf("only itself: %v, %v; want none and why", got, err)
	}
	os.Remove(path)
	now = now.Add(reloadEvery)
	if got, err := u.get(now); len(got) != 0 || err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("no file: %v, %v; want none and the path", got, err)
	}
}
