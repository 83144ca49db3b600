package host

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Bandwidth (Workload.bandwidth) is shaped by OVS on the workload's port,
// since a tc qdisc on the host veth, what CNI's chained bandwidth plugin
// does, has no effect on the userspace datapath (it reads the veth
// through a packet socket):
//
//   - The workload's egress is what OVS receives from the port. On the
//     kernel datapath: the Interface's ingress_policing_rate (kbit/s) and
//     ingress_policing_burst (kbit), a tc policer on the veth's ingress.
//     On the userspace datapath that policer has no effect (the packet
//     socket takes the frame before tc's ingress hook: 1,096 Mbit/s
//     measured under a 20 Mbit/s policing rate), so an OpenFlow meter does
//     it: meter id = the port's OpenFlow number, kbps, one drop band,
//     referenced by the workload's classify flow (flows.Workload.Meter).
//   - The workload's ingress is what OVS sends to the port: a QoS row of
//     type linux-htb on the Port (other_config max-rate in bit/s, burst in
//     bits), an HTB qdisc on the veth's egress, which OVS's sends through
//     the packet socket pass too (19.0 Mbit/s measured under 20). The
//     egress-policer type is DPDK's only: OVS accepts the row and a veth
//     ignores it (1,080 Mbit/s measured).
//
// The QoS rows sdn makes carry external_ids:sdn-port=<port>; a row of
// ours that no port refers to any more (its port was deleted, by any
// path) is destroyed at the next Apply, so none leaks.

// qosOwner is the external_ids key that marks sdn's QoS rows.
const qosOwner = "sdn-port"

// bandwidth is a workload's limits as CNI states them: bit/s and bits; 0
// is none.
type bandwidth struct {
	ingressRate, ingressBurst, egressRate, egressBurst uint64
}

func bandwidthOf(b *sdnv1.Bandwidth) bandwidth {
	return bandwidth{b.GetIngressRate(), b.GetIngressBurst(), b.GetEgressRate(), b.GetEgressBurst()}
}

func (b bandwidth) String() string {
	return fmt.Sprintf("in %d/%d out %d/%d", b.ingressRate, b.ingressBurst, b.egressRate, b.egressBurst)
}

// policing is the workload's egress limit in kbit/s and kbit, rounded up
// (a limit below 1 kbit/s is 1): the Interface's ingress_policing_rate
// and _burst, or the meter's band. A burst of 0 is OVS's default (the
// policer's), or 500 ms at the rate (the meter's).
func (b bandwidth) policing() (rate, burst int) {
	if b.egressRate == 0 {
		return 0, 0
	}
	return int((b.egressRate + 999) / 1000), int((b.egressBurst + 999) / 1000)
}

// meterBand is the meter's band for the egress limit, as ovs-ofctl
// writes and dumps it; "" for none.
func (b bandwidth) meterBand() string {
	rate, burst := b.policing()
	if rate == 0 {
		return ""
	}
	if burst == 0 {
		burst = max(rate/2, 24) // 500 ms: TCP through a drop band with 100 ms got half the rate
	}
	return fmt.Sprintf("type=drop rate=%d burst_size=%d", rate, burst)
}

// qos is the Port's QoS row for the workload's ingress limit: its type and
// other_config, or "" for none. linux-htb on either datapath.
func (b bandwidth) qos() (string, map[string]string) {
	if b.ingressRate == 0 {
		return "", nil
	}
	cfg := map[string]string{"max-rate": strconv.FormatUint(b.ingressRate, 10)}
	if b.ingressBurst > 0 {
		cfg["burst"] = strconv.FormatUint(b.ingressBurst, 10)
	}
	return "linux-htb", cfg
}

// qosState is what OVS holds for shaping: each port's QoS row, each
// interface's policing, and the QoS rows.
type qosState struct {
	portQoS  map[string]string // port name -> QoS uuid ("" none)
	policing map[string][2]int // interface name -> rate, burst
	rows     map[string]qosRow // uuid -> row
}

type qosRow struct {
	typ         string
	otherConfig map[string]string
	owner       string // external_ids:sdn-port
}

func (d *Datapath) readQoS(ctx context.Context) (*qosState, error) {
	out, err := d.ovs.Vsctl(ctx, "--format=json",
		"--", "--columns=name,qos", "list", "Port",
		"--", "--columns=name,ingress_policing_rate,ingress_policing_burst", "list", "Interface",
		"--", "--columns=_uuid,type,other_config,external_ids", "list", "QoS")
	if err != nil {
		return nil, fmt.Errorf("read OVS QoS: %w", err)
	}
	tables, err := vsctlTables(out, 3)
	if err != nil {
		return nil, fmt.Errorf("read OVS QoS: %w", err)
	}
	s := &qosState{portQoS: map[string]string{}, policing: map[string][2]int{}, rows: map[string]qosRow{}}
	for _, p := range tables[0] {
		q := ""
		if u := set(p["qos"]); len(u) == 1 {
			q = uuid(u[0])
		}
		s.portQoS[atom(p["name"])] = q
	}
	for _, i := range tables[1] {
		s.policing[atom(i["name"])] = [2]int{integer(i["ingress_policing_rate"]), integer(i["ingress_policing_burst"])}
	}
	for _, q := range tables[2] {
		s.rows[uuid(q["_uuid"])] = qosRow{typ: atom(q["type"]), otherConfig: omap(q["other_config"]), owner: omap(q["external_ids"])[qosOwner]}
	}
	return s, nil
}

// ensureQoS makes every plugged local workload's port shape as its
// bandwidth says, removes the shaping of workloads that have none, and
// destroys QoS rows of ours no port refers to: one ovs-vsctl transaction,
// none when OVS already matches.
func (d *Datapath) ensureQoS(ctx context.Context, want *desired, ports map[string]int, res *Result) error {
	st, err := d.readQoS(ctx)
	if err != nil {
		return err
	}
	var args []string
	used := map[string]bool{}
	for _, w := range want.local {
		if ports[w.ifname] <= 0 {
			continue
		}
		a, changes := st.portArgs(w.ifname, w.bw, d.cfg.DatapathType == "netdev", len(args))
		args = append(args, a...)
		res.Changes = append(res.Changes, changes...)
	}
	for _, u := range st.portQoS {
		used[u] = true
	}
	for _, u := range slices.Sorted(maps.Keys(st.rows)) {
		if r := st.rows[u]; r.owner != "" && !used[u] && !slices.Contains(args, u) {
			args = append(args, "--", "destroy", "QoS", u)
			res.Changes = append(res.Changes, fmt.Sprintf("destroy QoS %s of gone port %s", u, r.owner))
		}
	}
	if len(args) == 0 {
		return nil
	}
	if _, err := d.ovs.Vsctl(ctx, args...); err != nil {
		return fmt.Errorf("set workload bandwidth limits: %w", err)
	}
	return nil
}

// portArgs returns the ovs-vsctl commands that make port name shape as bw
// says (n makes the QoS row's id unique in the transaction), and what
// they change.
func (st *qosState) portArgs(name string, bw bandwidth, userspace bool, n int) ([]string, []string) {
	var args, changes []string
	rate, burst := bw.policing()
	if userspace {
		rate, burst = 0, 0 // a meter does it
	}
	if have, ok := st.policing[name]; ok && have != [2]int{rate, burst} {
		args = append(args, "--", "set", "Interface", name, fmt.Sprintf("ingress_policing_rate=%d", rate), fmt.Sprintf("ingress_policing_burst=%d", burst))
		changes = append(changes, fmt.Sprintf("port %s: egress policing %d kbit/s burst %d kbit", name, rate, burst))
	}
	typ, cfg := bw.qos()
	old := st.portQoS[name]
	if row, ok := st.rows[old]; (old == "" && typ == "") || ok && row.typ == typ && maps.Equal(row.otherConfig, cfg) {
		return args, changes
	}
	if typ == "" {
		args = append(args, "--", "clear", "Port", name, "qos")
		changes = append(changes, fmt.Sprintf("port %s: no ingress limit", name))
	} else {
		id := fmt.Sprintf("@qos%d", n)
		args = append(args, "--", "--id="+id, "create", "QoS", "type="+typ, fmt.Sprintf("external_ids:%s=%s", qosOwner, name))
		for _, k := range slices.Sorted(maps.Keys(cfg)) {
			args = append(args, fmt.Sprintf("other_config:%s=%s", k, cfg[k]))
		}
		args = append(args, "--", "set", "Port", name, "qos="+id)
		changes = append(changes, fmt.Sprintf("port %s: ingress limit %s %v", name, typ, cfg))
	}
	if row, ok := st.rows[old]; ok && row.owner != "" {
		args = append(args, "--", "destroy", "QoS", old)
	}
	return args, changes
}

// wantMeters is the meter of every plugged local workload with an egress
// limit, on the userspace datapath: OpenFlow port -> band.
func (d *Datapath) wantMeters(want *desired, ports map[string]int) map[int]string {
	m := map[int]string{}
	if d.cfg.DatapathType != "netdev" {
		return m
	}
	for _, w := range want.local {
		if p := ports[w.ifname]; p > 0 && w.bw.meterBand() != "" {
			m[p] = w.bw.meterBand()
		}
	}
	return m
}

// dumpMeters returns br-int's meters: id -> band, as wantMeters renders it.
func (d *Datapath) dumpMeters(ctx context.Context) (map[int]string, error) {
	out, err := d.ovs.Ofctl(ctx, "-O", "OpenFlow15", "dump-meters", IntegrationBridge)
	if err != nil {
		return nil, fmt.Errorf("dump meters of %s: %w", IntegrationBridge, err)
	}
	have := map[int]string{}
	id := 0
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "meter="); ok {
			id, _ = strconv.Atoi(strings.Fields(rest)[0])
			have[id] = ""
		} else if strings.HasPrefix(line, "type=") && id != 0 {
			have[id] = line
		}
	}
	return have, nil
}

// ensureMeters adds or changes the meters the flows will refer to
// (before the flows); dropMeters removes the others (after the flows,
// since OVS deletes the flows that refer to a deleted meter).
func (d *Datapath) ensureMeters(ctx context.Context, want map[int]string, res *Result) error {
	have, err := d.dumpMeters(ctx)
	if err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(want)) {
		cmd := "add-meter"
		if band, ok := have[id]; ok && band == want[id] {
			continue
		} else if ok {
			cmd = "mod-meter"
		}
		spec := fmt.Sprintf("meter=%d,kbps,burst,band=%s", id, strings.ReplaceAll(want[id], " ", ","))
		if _, err := d.ovs.Ofctl(ctx, "-O", "OpenFlow15", cmd, IntegrationBridge, spec); err != nil {
			return fmt.Errorf("workload egress limit: %s %s: %w", cmd, spec, err)
		}
		res.Changes = append(res.Changes, fmt.Sprintf("meter %d: %s", id, want[id]))
	}
	return nil
}

func (d *Datapath) dropMeters(ctx context.Context, want map[int]string, res *Result) error {
	if d.cfg.DatapathType != "netdev" {
		return nil
	}
	have, err := d.dumpMeters(ctx)
	if err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(have)) {
		if _, ok := want[id]; !ok {
			if _, err := d.ovs.Ofctl(ctx, "-O", "OpenFlow15", "del-meter", IntegrationBridge, fmt.Sprintf("meter=%d", id)); err != nil {
				return fmt.Errorf("remove meter %d: %w", id, err)
			}
			res.Changes = append(res.Changes, fmt.Sprintf("meter %d removed", id))
		}
	}
	return nil
}
