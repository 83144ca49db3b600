package suites

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sdn-dev/sdn/bench"
)

// The port-reuse probe. Under TCG the figure's rounds open a few hundred
// connections each from ranges of 20,000 ports, so no port comes round
// again within a round, and the remap counts alone cannot say whether the
// kernel datapath has the userspace conntrack's problem with a reused
// port (docs/performance.md, "Services"). Once, in the setup, the probe
// runs wrk through the VIP and then direct from 256-port ranges (of
// which connect() takes every other port) for
// svcVMReuseSeconds, so that every port is reused several times (with
// tcp_tw_reuse=1, once its TIME_WAIT is a second old), and notes the rate,
// wrk's socket errors, and through the VIP how many distinct client ports
// host2's conntrack holds and how many of them the NAT remapped.

// svcVMReusePorts are the probe's client ports: direct, via VIP (inside
// the figure's ranges of each, so the server never sees one variant's
// four-tuple in TIME_WAIT from the other).
var svcVMReusePorts = [2]string{"50000 50255", "30000 30255"}

const svcVMReuseSeconds = 5

// reuseProbe runs the probe and notes what it saw.
func (s *svcVMBench) reuseProbe(env *bench.Env) error {
	var parts []string
	for _, viaVIP := range []bool{true, false} {
		p, err := s.reuseRun(viaVIP)
		if err != nil {
			return err
		}
		parts = append(parts, p)
		env.Logf("port-reuse probe: %s", p)
	}
	env.Note("port-reuse probe (setup, once)", fmt.Sprintf("`wrk -t1 -c%d -d%ds` as the figure's from a 256-port client range each (via VIP %s, direct %s; connect() takes every other port of it, so 128; datapaths flushed before each), every port reused several times: %s. "+
		"The figure's rounds reuse no port under TCG (a few hundred connections from 20,000 ports); on OVS 3.1's userspace datapath a reused port through a VIP was remapped by the NAT and the rate collapsed",
		s.tools.wrkConns, svcVMReuseSeconds, svcVMReusePorts[1], svcVMReusePorts[0], strings.Join(parts, "; ")))
	return nil
}

// reuseRun is one variant of the probe: what it saw, in words.
func (s *svcVMBench) reuseRun(viaVIP bool) (string, error) {
	if _, err := s.flushDatapaths(); err != nil {
		return "", err
	}
	how, out, err := s.wrk(viaVIP, svcVMReusePorts[b2i(viaVIP)], svcVMReuseSeconds)
	if err != nil {
		return "", fmt.Errorf("port-reuse probe: %w", err)
	}
	rate, requests, errs := wrkLoose(out)
	what := fmt.Sprintf("%s %.0f conn/s, %d connections, socket errors: %s", how, rate, requests, errs)
	if !viaVIP {
		return what, nil
	}
	ct, err := s.c.Run(2, "ovs-dpctl dump-conntrack | grep -F 'dst="+svcVIP+",' || true")
	if err != nil {
		return "", err
	}
	remapped, total := natRemaps(ct)
	return fmt.Sprintf("%s; host2's conntrack then held %d entries for the VIP from %d distinct client ports, %d of them remapped by the NAT",
		what, total, distinctVIPPorts(ct), remapped), nil
}

// wrkLoose reads wrk's output without failing on errors: Requests/sec,
// the requests completed, and its socket errors line ("none" without).
func wrkLoose(out string) (rate float64, requests int, errs string) {
	if m := wrkRate.FindStringSubmatch(out); m != nil {
		rate, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := wrkSummary.FindStringSubmatch(out); m != nil {
		requests, _ = strconv.Atoi(m[1])
	}
	errs = "none"
	if m := wrkSocket.FindString(out); m != "" {
		errs = strings.TrimPrefix(m, "Socket errors: ")
	}
	if m := wrkNon2xx.FindString(out); m != "" {
		errs += "; " + m
	}
	return rate, requests, errs
}

// distinctVIPPorts counts the client source ports of the VIP's entries in
// a conntrack dump.
func distinctVIPPorts(dump string) int {
	ports := map[string]bool{}
	for _, m := range vipConn.FindAllStringSubmatch(dump, -1) {
		ports[m[1]] = true
	}
	return len(ports)
}
