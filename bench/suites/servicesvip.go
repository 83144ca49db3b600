package suites

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/sdn-dev/sdn/bench"
)

// The connections figure: perf-cli (host2) opens new TCP connections with
// wrk to the HTTP server in perf-srv (host1), through the VIP of the
// service that selects perf-srv alone ("via VIP": host2's OVS picks the
// endpoint from the service's select group and DNATs in conntrack) or
// straight to perf-srv's address ("direct"). Each round runs both, one
// right after the other, with datapath flows and conntrack emptied on
// both hosts before each.
//
// Each variant's connections take their source ports from a range of
// their own (svcPortRanges): the server sees a connection through the VIP
// as client:port → server:8080 after the DNAT, the same four-tuple as a
// direct one from that port, and it holds every closed one in TIME_WAIT
// (it closes first). The client's initial sequence numbers and timestamps
// are hashed over the address it connects to, so a direct SYN landing on
// a VIP connection's TIME_WAIT is refused half the time and retried a
// second later: the direct variant measured 26 conn/s after a VIP one
// before the ranges were split.

// The client reuses its own TIME_WAIT ports (tcp_tw_reuse=1, as load
// generators do): without it a client that closes first holds every port
// it used for 60 s, and past about 25,000 connections a minute to one
// address connect() itself slows down (28,000 ports / 60 s is 470 conn/s):
// both variants fell to 400-1,200 conn/s from the second or third round,
// the VIP first, measuring the client's kernel rather than sdn. Measured
// in the lab by hand: 6 rounds of 2 s through a VIP went 4,624 → 793
// conn/s without it and held 3,000-4,270 with it (conntrack flushed
// before each round both times).

// svcPortRanges are the client's source ports: direct, via VIP.
var svcPortRanges = [2]string{"40000 59999", "20000 39999"}

// conns returns the variant's measurement: through the VIP or direct.
func (s *svcBench) conns(viaVIP bool) func(context.Context, *bench.Env) (float64, error) {
	return func(ctx context.Context, env *bench.Env) (float64, error) {
		for i := 1; i <= svcLabHosts; i++ {
			for _, cmd := range [][]string{{"revalidator/purge"}, {"dpctl/flush-conntrack"}} {
				if _, err := s.lab.OVS(i).Appctl(ctx, "ovs-vswitchd", cmd...); err != nil {
					return 0, err
				}
			}
		}
		e, how := s.directEndpoints(), "direct"
		if viaVIP {
			e.serverIP, how = svcVIP, "via VIP"
		}
		ports := svcPortRanges[b2i(viaVIP)]
		for _, kv := range []string{"net.ipv4.ip_local_port_range=" + ports, "net.ipv4.tcp_tw_reuse=1"} {
			if err := run(ctx, "ip", "netns", "exec", e.clientNS, "sysctl", "-q", "-w", kv); err != nil {
				return 0, err
			}
		}
		v, err := s.sizes.tools.wrk(ctx, e)
		if err != nil {
			return 0, err
		}
		dump, err := s.lab.OVS(2).Appctl(ctx, "ovs-vswitchd", "dpctl/dump-flows", "-m")
		if err != nil {
			return 0, err
		}
		up, err := s.lab.OVS(2).Appctl(ctx, "ovs-vswitchd", "upcall/show")
		if err != nil {
			return 0, err
		}
		k := b2i(viaVIP)
		if viaVIP {
			if err := s.noteRemaps(ctx, env); err != nil {
				return 0, err
			}
		}
		s.dpFlows[k] = fmt.Sprintf("%d (flow limit %s)", parseDumpFlows(dump).Dumped, flowLimit(up))
		env.Note("datapath flows on host2 after wrk, last round", fmt.Sprintf("via VIP %s, direct %s (`dpctl/dump-flows`, `upcall/show`; a megaflow per connection means an upcall to ovs-vswitchd per connection, and past the flow limit, which ovs-vswitchd lowers when its revalidators fall behind, every packet is one)", s.dpFlows[1], s.dpFlows[0]))
		env.Logf("%s: %.0f conn/s, host2's datapath flows %s", how, v, s.dpFlows[k])
		return v, nil
	}
}

// noteConns says how the connections figure is measured.
func (s *svcBench) noteConns(env *bench.Env) {
	t := s.sizes.tools
	env.Note("connections", fmt.Sprintf("`wrk -t1 -c%d -d%ds -H 'Connection: close' http://ADDR:%d/` in %s against `sdnprobe http-serve` in %s (Go net/http, 3-byte body; every request a new TCP connection; any socket error or non-2xx answer fails the variant); "+
		"ADDR = %s (via VIP, source ports %s) or %s (direct, source ports %s; net.ipv4.ip_local_port_range of the client's namespace, so that the server never sees one variant's four-tuple in TIME_WAIT from the other's; net.ipv4.tcp_tw_reuse=1 there, so the client's own TIME_WAIT does not exhaust its ports); before each: `ovs-appctl revalidator/purge` and `dpctl/flush-conntrack` on both hosts",
		t.wrkConns, t.wrkSeconds, httpPort, s.perf[1].ID(), s.perf[0].ID(), svcVIP, svcPortRanges[1], s.perf[0].IP, svcPortRanges[0]))
}

var upcallFlowLimit = regexp.MustCompile(`\(limit (\d+)\)`)

// flowLimit is the flow limit `ovs-appctl upcall/show` reports, or "?".
func flowLimit(upcallShow string) string {
	if m := upcallFlowLimit.FindStringSubmatch(upcallShow); m != nil {
		return m[1]
	}
	return "?"
}

// vipConn is a connection to svcVIP in `dpctl/dump-conntrack`: the
// client's source port, and the port the endpoint's replies go to.
var vipConn = regexp.MustCompile(`orig=\(src=[^,]+,dst=` + regexp.QuoteMeta(svcVIP) + `,sport=(\d+),dport=\d+\),reply=\(src=[^,]+,dst=[^,]+,sport=\d+,dport=(\d+)\)`)

// natRemaps counts the connections to the VIP in a conntrack dump, and
// those whose source port the NAT changed (their reply tuple was taken).
func natRemaps(dump string) (remapped, total int) {
	for _, m := range vipConn.FindAllStringSubmatch(dump, -1) {
		total++
		if m[1] != m[2] {
			remapped++
		}
	}
	return remapped, total
}

// noteRemaps notes how many of host2's conntrack entries for the VIP had
// their source port remapped (the endpoint then sees another four-tuple
// than the client opened, which may be one of the client's live
// connections).
func (s *svcBench) noteRemaps(ctx context.Context, env *bench.Env) error {
	ct, err := s.lab.OVS(2).Appctl(ctx, "ovs-vswitchd", "dpctl/dump-conntrack")
	if err != nil {
		return err
	}
	remapped, total := natRemaps(ct)
	s.remaps = append(s.remaps, fmt.Sprintf("%d of %d", remapped, total))
	env.Note("VIP connections with the source port remapped by the NAT, per round", strings.Join(s.remaps, ", ")+
		" (host2's `dpctl/dump-conntrack` after the wrk through the VIP: entries for the VIP whose reply port is not the client's source port)")
	return nil
}
