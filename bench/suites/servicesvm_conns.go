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
// flushed before each. On the kernel datapath `dpctl/flush-conntrack
// system@ovs-system` flushes the kernel's conntrack table, every zone:
// the note "conntrack entries before → after the flush" shows it (what
// is left is the SSH connection the command itself came on), so `conntrack
// -F` (not in the image) adds nothing.

// svcVMDatapath names the kernel datapath in ovs-appctl's dpctl/ commands:
// ovs-vswitchd also runs a userspace one for sdn's scratch bridge
// sdn-canon, and dpctl/ without a name then fails ("multiple datapaths").
const svcVMDatapath = "system@ovs-system"

// conns returns the variant's measurement: through the VIP or direct.
func (s *svcVMBench) conns(viaVIP bool) func(context.Context, *bench.Env) (float64, error) {
	return func(ctx context.Context, env *bench.Env) (float64, error) {
		if err := s.flushDatapaths(env); err != nil {
			return 0, err
		}
		cli := s.perf[1]
		addr, how := fmt.Sprintf("%s:%d", s.perf[0].IP, httpPort), "direct"
		if viaVIP {
			addr, how = fmt.Sprintf("%s:%d", svcVIP, svcVMPort), "via VIP"
		}
		ports := svcPortRanges[b2i(viaVIP)]
		if _, err := s.l.InNS(cli, fmt.Sprintf("sysctl -q -w net.ipv4.ip_local_port_range='%s' net.ipv4.tcp_tw_reuse=1", ports)); err != nil {
			return 0, err
		}
		t := s.tools
		out, err := s.l.InNS(cli, fmt.Sprintf("wrk -t1 -c%d -d%ds -H 'Connection: close' http://%s/", t.wrkConns, t.wrkSeconds, addr))
		if err != nil {
			return 0, fmt.Errorf("wrk %s in %s on host2: %w", addr, cli.NS, err)
		}
		v, err := parseWrk([]byte(out))
		if err != nil {
			return 0, fmt.Errorf("wrk %s in %s on host2: %w", addr, cli.NS, err)
		}
		after, err := s.afterWrk(env, viaVIP)
		if err != nil {
			return 0, err
		}
		env.Logf("%s: %.0f conn/s; host2 after wrk: %s", how, v, after)
		return v, nil
	}
}

// flushDatapaths purges both VMs' datapath flows and flushes their
// conntrack, noting the entries before and after.
func (s *svcVMBench) flushDatapaths(env *bench.Env) error {
	var counts []string
	for i := 1; i <= svcVMHosts; i++ {
		out, err := s.c.Run(i, "c=/proc/sys/net/netfilter/nf_conntrack_count; cat $c && ovs-appctl revalidator/purge >/dev/null && ovs-appctl dpctl/flush-conntrack "+svcVMDatapath+" >/dev/null && cat $c")
		if err != nil {
			return fmt.Errorf("flush host%d's datapath: %w", i, err)
		}
		f := strings.Fields(out)
		if len(f) != 2 {
			return fmt.Errorf("host%d: conntrack counts before and after the flush: %q", i, out)
		}
		counts = append(counts, fmt.Sprintf("host%d %s → %s", i, f[0], f[1]))
	}
	s.flush = strings.Join(counts, ", ")
	env.Note("conntrack entries before → after the flush, last variant", s.flush+
		" (/proc/sys/net/netfilter/nf_conntrack_count around `ovs-appctl dpctl/flush-conntrack "+svcVMDatapath+"`)")
	return nil
}

// afterWrk reads host2's conntrack and datapath flows after a wrk: the
// entries in the table, the datapath flows, and through the VIP how many
// of the VIP's connections had their source port remapped by the NAT
// (noted per round).
func (s *svcVMBench) afterWrk(env *bench.Env, viaVIP bool) (string, error) {
	out, err := s.c.Run(2, "cat /proc/sys/net/netfilter/nf_conntrack_count; ovs-appctl dpctl/dump-flows "+svcVMDatapath+" | wc -l; "+
		"ovs-appctl dpctl/dump-conntrack "+svcVMDatapath+" | grep -F 'dst="+svcVIP+",' || true")
	if err != nil {
		return "", fmt.Errorf("host2's conntrack after wrk: %w", err)
	}
	f := strings.SplitN(out, "\n", 3)
	if len(f) < 2 {
		return "", fmt.Errorf("host2's conntrack and datapath flow counts: %q", out)
	}
	what := fmt.Sprintf("%s conntrack entries, %s datapath flows", strings.TrimSpace(f[0]), strings.TrimSpace(f[1]))
	if !viaVIP {
		return what, nil
	}
	remapped, total := natRemaps(out)
	s.remaps = append(s.remaps, fmt.Sprintf("%d of %d", remapped, total))
	env.Note("VIP connections with the source port remapped by the NAT, per round", strings.Join(s.remaps, ", ")+
		" (host2's `ovs-appctl dpctl/dump-conntrack "+svcVMDatapath+"` after the wrk through the VIP: the kernel's entries for the VIP whose reply port is not the client's source port)")
	return fmt.Sprintf("%s, %d of %d VIP connections remapped", what, remapped, total), nil
}
