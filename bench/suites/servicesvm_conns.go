package suites

import (
	"context"
	"fmt"
	"strings"

	"github.com/sdn-dev/sdn/bench"
)

// The VM suite's figure: as the services suite's (servicesvip.go), wrk in
// host2's client workload opens new TCP connections to the HTTP server in
// host1's workload, through the VIP (host2's OVS picks the endpoint from
// the service's select group and DNATs in the kernel's conntrack) or
// straight to its address, each variant from its own source port range
// with tcp_tw_reuse=1, both VMs' datapath flows purged and conntrack
// flushed before each. On the kernel datapath `ovs-dpctl flush-conntrack`
// flushes the kernel's conntrack table, every zone, as `conntrack -F`
// would (not in the image): the note "conntrack entries before → after the
// flush" shows it. The dpctl/ commands go through ovs-dpctl, which sees
// the kernel datapath alone: ovs-vswitchd also runs a userspace one for
// sdn's scratch bridge sdn-canon, so `ovs-appctl dpctl/...` needs the
// datapath's name, and OVS 3.1's dpctl/flush-conntrack reads a lone
// argument as a conntrack tuple ("field system@ovs-system missing
// value").

// conns returns the variant's measurement: through the VIP or direct.
func (s *svcVMBench) conns(viaVIP bool) func(context.Context, *bench.Env) (float64, error) {
	return func(ctx context.Context, env *bench.Env) (float64, error) {
		flushed, err := s.flushDatapaths()
		if err != nil {
			return 0, err
		}
		env.Note("conntrack entries before → after the flush, last variant", flushed+
			" (/proc/sys/net/netfilter/nf_conntrack_count around `ovs-dpctl flush-conntrack`)")
		how, out, err := s.wrk(viaVIP, svcPortRanges[b2i(viaVIP)], s.tools.wrkSeconds)
		if err != nil {
			return 0, err
		}
		v, err := parseWrk([]byte(out))
		if err != nil {
			return 0, fmt.Errorf("wrk %s in %s on host2: %w", how, s.perf[1].NS, err)
		}
		after, err := s.afterWrk(env, viaVIP)
		if err != nil {
			return 0, err
		}
		env.Logf("%s: %.0f conn/s; host2 after wrk: %s", how, v, after)
		return v, nil
	}
}

// wrk runs wrk for seconds in host2's client workload, through the VIP or
// straight to host1's server, its source ports from the range given (and
// tcp_tw_reuse=1): which way it went, and wrk's output.
func (s *svcVMBench) wrk(viaVIP bool, ports string, seconds int) (how, out string, err error) {
	cli := s.perf[1]
	addr, how := fmt.Sprintf("%s:%d", s.perf[0].IP, httpPort), "direct"
	if viaVIP {
		addr, how = fmt.Sprintf("%s:%d", svcVIP, svcVMPort), "via VIP"
	}
	// One InNS each: after a "&&" the command would run outside the
	// namespace.
	if _, err := s.l.InNS(cli, fmt.Sprintf("sysctl -q -w net.ipv4.ip_local_port_range='%s' net.ipv4.tcp_tw_reuse=1", ports)); err != nil {
		return how, "", err
	}
	out, err = s.l.InNS(cli, fmt.Sprintf("wrk -t1 -c%d -d%ds -H 'Connection: close' http://%s/", s.tools.wrkConns, seconds, addr))
	if err != nil {
		return how, "", fmt.Errorf("wrk %s (%s) in %s on host2: %w", addr, how, cli.NS, err)
	}
	return how, out, nil
}

// flushDatapaths purges both VMs' datapath flows and flushes their
// conntrack; it returns the entries before and after, in words.
func (s *svcVMBench) flushDatapaths() (string, error) {
	var counts []string
	for i := 1; i <= svcVMHosts; i++ {
		out, err := s.c.Run(i, "c=/proc/sys/net/netfilter/nf_conntrack_count; cat $c && ovs-appctl revalidator/purge >/dev/null && ovs-dpctl flush-conntrack >/dev/null && cat $c")
		if err != nil {
			return "", fmt.Errorf("flush host%d's datapath: %w", i, err)
		}
		f := strings.Fields(out)
		if len(f) != 2 {
			return "", fmt.Errorf("host%d: conntrack counts before and after the flush: %q", i, out)
		}
		counts = append(counts, fmt.Sprintf("host%d %s → %s", i, f[0], f[1]))
	}
	return strings.Join(counts, ", "), nil
}

// afterWrk reads host2's conntrack and datapath flows after a wrk: the
// entries in the table, the datapath flows, and through the VIP how many
// of the VIP's connections had their source port remapped by the NAT
// (noted per round).
func (s *svcVMBench) afterWrk(env *bench.Env, viaVIP bool) (string, error) {
	out, err := s.c.Run(2, "cat /proc/sys/net/netfilter/nf_conntrack_count; ovs-dpctl dump-flows | wc -l; "+
		"ovs-dpctl dump-conntrack | grep -F 'dst="+svcVIP+",' || true")
	if err != nil {
		return "", fmt.Errorf("host2's conntrack after wrk: %w", err)
	}
	f := strings.SplitN(out, "\n", 3)
	if len(f) < 2 {
		return "", fmt.Errorf("host2's conntrack and datapath flow counts: %q", out)
	}
	what := fmt.Sprintf("%s conntrack entries, %s datapath flows", strings.TrimSpace(f[0]), strings.TrimSpace(f[1]))
	if err := s.noteZones(env, viaVIP); err != nil {
		return "", err
	}
	if !viaVIP {
		return what, nil
	}
	remapped, total := natRemaps(out)
	s.remaps = append(s.remaps, fmt.Sprintf("%d of %d", remapped, total))
	env.Note("VIP connections with the source port remapped by the NAT, per round", strings.Join(s.remaps, ", ")+
		" (host2's `ovs-dpctl dump-conntrack` after the wrk through the VIP: the kernel's entries for the VIP whose reply port is not the client's source port)")
	return fmt.Sprintf("%s, %d of %d VIP connections remapped", what, remapped, total), nil
}

// noteZones notes both VMs' conntrack entries after the last wrk of each
// variant by zone (0 prints no "zone="), protocol and original
// destination port: zone 1 is the workloads' (datapath/flows), zone 0 the
// host's own, where the VXLAN packets' UDP flows land.
func (s *svcVMBench) noteZones(env *bench.Env, viaVIP bool) error {
	var hosts []string
	for i := 1; i <= svcVMHosts; i++ {
		out, err := s.c.Run(i, `ovs-dpctl dump-conntrack | awk -F, '{z = "zone=0"; for (i = 1; i <= NF; i++) if ($i ~ /^zone=/) z = $i; `+
			`match($0, /dport=[0-9]+/); print z "/" $1 "/" substr($0, RSTART + 6, RLENGTH - 6)}' | sort | uniq -c`)
		if err != nil {
			return err
		}
		var groups []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(line); len(f) == 2 {
				groups = append(groups, f[1]+" "+f[0])
			}
		}
		hosts = append(hosts, fmt.Sprintf("host%d %s", i, strings.Join(groups, ", ")))
	}
	s.zones[b2i(viaVIP)] = strings.Join(hosts, "; ")
	env.Note("conntrack entries after wrk, last round", fmt.Sprintf("via VIP: %s. Direct: %s (`ovs-dpctl dump-conntrack` by zone/protocol/original destination port: zone 1 is the workloads' connections, zone 0 the host's own conntrack, which tracks the VXLAN packets: their UDP source port hashes the inner flow, so each connection is two UDP flows, one each way)", s.zones[1], s.zones[0]))
	return nil
}
