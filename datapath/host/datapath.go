package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/sdn-dev/sdn/datapath/flows"
	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/datapath/ovs"
	"github.com/sdn-dev/sdn/model"
)

// Names and numbers on the host. The integration bridge's tunnel and
// gateway ports have fixed OpenFlow ports, which the flows name.
const (
	IntegrationBridge = "br-int"
	UnderlayBridge    = "br-phy" // netdev only: owns the underlay port and address
	TunnelPort        = "sdn-tun0"
	GatewayPort       = "sdn-gw0"

	tunnelOFPort  = 1
	gatewayOFPort = 2
)

// Cookie categories (ovs.MakeCookie) of the flows this package installs.
const (
	categoryIntegration uint32 = 0 // br-int: the compiler's flows
	categoryUnderlay    uint32 = 1 // br-phy: the one NORMAL flow
)

// Config configures a Datapath.
type Config struct {
	OVS *ovs.Instance // the OVS to program (required)
	// DatapathType is "netdev" (userspace) or "system" (the kernel module);
	// "" means "system", as in OVS.
	DatapathType  string
	NodeName      string // this host's node name (required)
	UnderlayIface string // e.g. "eth0": its IPv4 address is the tunnel endpoint (required)
	// HostNSPath is the host's network namespace, where the gateway port
	// appears and the routes go; "" = the current one. It must be the
	// namespace ovs-vswitchd runs in: OVS creates internal ports there.
	HostNSPath string
	Generation uint16 // from NextGeneration; stamps flow cookies
	Logger     *slog.Logger
}

// Datapath makes one host's OVS and kernel match the desired state
// (model.Desired). The agent (node/agent) drives it through its one-method
// Realizer interface; the datapath knows nothing of the agent.
type Datapath struct {
	cfg    Config
	ovs    *ovs.Instance
	hostNS string // where OVS's ports appear: cfg.HostNSPath, checked
	log    *slog.Logger

	mu sync.Mutex // one Realize (or tunnel neighbour refresh) at a time
	// Userspace tunneling (neighbors.go), guarded by mu: whether the
	// kernel keeps managed neighbour entries, and the next hops of the last
	// Realize, which the refresher keeps in OVS's cache.
	managedNeighbors bool
	hops             []netip.Addr

	refresher refresher // netdev: started by the first Apply, stopped by Close

	plugMu  sync.Mutex
	plugged map[string]plugRecord // ports PlugWorkload added, not yet seen desired

	// What the last Apply installed, for Trace and RuleCounters
	// (counters.go, trace.go).
	lastMu    sync.Mutex
	lastHost  *flows.Host
	lastRules map[uint32]flows.RuleRef

	// full is what the last full Apply found (change.go), under mu; nil
	// until one succeeded, and after one failed.
	full *fullApply
}

// New checks cfg and makes sure the integration bridge and its tunnel and
// gateway ports exist (with their fixed OpenFlow ports, so that a workload
// plugged before the first Realize cannot take them). It changes nothing
// that already exists: settings are made right by Realize.
func New(ctx context.Context, cfg Config) (*Datapath, error) {
	var errs []string
	if cfg.OVS == nil {
		errs = append(errs, "no OVS instance")
	}
	switch cfg.DatapathType {
	case "":
		cfg.DatapathType = "system"
	case "system", "netdev":
	default:
		errs = append(errs, fmt.Sprintf("datapath type %q is neither \"netdev\" nor \"system\"", cfg.DatapathType))
	}
	if cfg.NodeName == "" {
		errs = append(errs, "no node name")
	}
	if cfg.UnderlayIface == "" {
		errs = append(errs, "no underlay interface (the one whose IPv4 address is the tunnel endpoint)")
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("host datapath: %s", strings.Join(errs, "; "))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	d := &Datapath{cfg: cfg, ovs: cfg.OVS, hostNS: cfg.HostNSPath, plugged: map[string]plugRecord{},
		managedNeighbors: true, log: cfg.Logger.With("node", cfg.NodeName)}
	if err := sameNetNS(cfg.HostNSPath, cfg.OVS.NetNS); err != nil {
		return nil, fmt.Errorf("host datapath: %w", err)
	}
	st, err := readOVS(ctx, d.ovs)
	if err != nil {
		return nil, fmt.Errorf("host datapath: %w", err)
	}
	if _, ok := st.bridges[IntegrationBridge]; !ok {
		if err := d.ovs.EnsureBridge(ctx, ovs.BridgeConfig{Name: IntegrationBridge, DatapathType: cfg.DatapathType}); err != nil {
			return nil, fmt.Errorf("host datapath: %w", err)
		}
	}
	if _, ok := st.ifaces[TunnelPort]; !ok {
		if _, err := d.ovs.EnsurePort(ctx, IntegrationBridge, TunnelPort, tunnelOFPort,
			"type=vxlan", "options:remote_ip=flow", "options:key=flow"); err != nil {
			return nil, fmt.Errorf("host datapath: %w", err)
		}
	}
	if _, ok := st.ifaces[GatewayPort]; !ok {
		if _, err := d.ovs.EnsurePort(ctx, IntegrationBridge, GatewayPort, gatewayOFPort, "type=internal"); err != nil {
			return nil, fmt.Errorf("host datapath: %w", err)
		}
	}
	return d, nil
}

// Close stops what the Datapath runs in the background: with the
// userspace datapath, the refresher of OVS's tunnel neighbour cache, which
// the first Apply starts. The host keeps its state. Calling Apply after
// Close still works, without the refresher.
func (d *Datapath) Close() error {
	d.refresher.stop()
	return nil
}

// sameNetNS checks that hostNS ("" = ours) is the namespace the OVS daemons
// run in (ovsNS: a name under /run/netns, "" = ours): internal ports, the
// gateway among them, appear where ovs-vswitchd runs (with netdev, as tap
// devices), and userspace tunneling learns routes from that namespace.
func sameNetNS(hostNS, ovsNS string) error {
	a, b := hostNS, ""
	if ovsNS != "" {
		b = link.NSPath(ovsNS)
	}
	if a == b {
		return nil
	}
	id := func(p string) (uint64, uint64, error) {
		if p == "" {
			p = "/proc/self/ns/net"
		}
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			return 0, 0, fmt.Errorf("network namespace %s: %w", p, err)
		}
		return st.Dev, st.Ino, nil
	}
	ad, ai, err := id(a)
	if err != nil {
		return err
	}
	bd, bi, err := id(b)
	if err != nil {
		return err
	}
	if ad != bd || ai != bi {
		return fmt.Errorf("host namespace %q is not the namespace ovs-vswitchd runs in (%q); OVS creates the gateway port where it runs, so run OVS in the host's namespace", hostNS, ovsNS)
	}
	return nil
}

// Result says what one Realize changed.
type Result struct {
	Flows         ovs.Result // on br-int
	UnderlayFlows ovs.Result // on br-phy (netdev)
	PortsAdded    []string   // workload ports plugged into br-int
	PortsDeleted  []string   // stale workload ports removed
	Changes       []string   // bridges, fixed ports and kernel state fixed, in words
	Workloads     int        // local workloads with flows
	// FlowsOnly: a change realize that reconciled the flows alone
	// (ApplyChange), the host-level steps being those of the last Apply;
	// PortsAdded then names the ports of new local workloads that CNI ADD
	// plugged, taken without reading OVS.
	FlowsOnly bool
	// Took is where a change realize's time went ("flows 12ms", "hostnet
	// 30ms"), for the log.
	Took []string
}

// Changed reports whether anything changed.
func (r Result) Changed() bool {
	return r.Flows.Changed() || r.UnderlayFlows.Changed() || len(r.PortsAdded)+len(r.PortsDeleted)+len(r.Changes) > 0
}

func (r Result) String() string {
	s := fmt.Sprintf("%d local workloads; br-int %s; ports: %d added, %d deleted", r.Workloads, r.Flows, len(r.PortsAdded), len(r.PortsDeleted))
	if r.UnderlayFlows.Changed() {
		s += "; br-phy " + r.UnderlayFlows.String()
	}
	if r.FlowsOnly {
		s += " (flows only: host set-up as at the last full realize)"
	}
	if len(r.Changes) > 0 {
		s += "; fixed: " + strings.Join(r.Changes, "; ")
	}
	if len(r.Took) > 0 {
		s += "; took " + strings.Join(r.Took, ", ")
	}
	return s
}

// Realize makes the host match m (the agent's Realizer). It is
// idempotent, never flushes and never recreates what is already right, so
// it can run at every agent start without dropping a packet. On error the
// flows installed before stay.
func (d *Datapath) Realize(ctx context.Context, m *model.Desired) error {
	res, err := d.Apply(ctx, m)
	if err != nil {
		return err
	}
	d.logResult(m.Revision, res)
	return nil
}

// logResult logs what a realize of revision rev changed.
func (d *Datapath) logResult(rev uint64, res Result) {
	if res.Changed() {
		d.log.Info("realized desired state", "revision", rev, "result", res.String())
	} else {
		d.log.Debug("desired state already realized", "revision", rev, "result", res.String())
	}
}

// Apply is Realize, returning what it changed.
func (d *Datapath) Apply(ctx context.Context, m *model.Desired) (Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var res Result
	d.full = nil
	fail := func(err error) (Result, error) {
		return res, fmt.Errorf("realize node %q: %w", d.cfg.NodeName, err)
	}
	want, warnings, err := desiredState(m, d.cfg.NodeName)
	if err != nil {
		return fail(err)
	}
	d.waitPlugs(ctx, localIfnames(want)) // PlugWorkload takes no d.mu
	for _, w := range warnings {
		d.log.Warn("skipping part of the desired state", "why", w)
	}
	st, err := readOVS(ctx, d.ovs)
	if err != nil {
		return fail(err)
	}
	h, err := link.Open(d.hostNS)
	if err != nil {
		return fail(err)
	}
	defer h.Close()

	// 1. The integration bridge.
	if err := d.ensureBridge(ctx, st, bridgeWant{name: IntegrationBridge, datapathType: d.cfg.DatapathType}, &res); err != nil {
		return fail(err)
	}
	// 2. The tunnel endpoint (netdev: moved onto br-phy), then the tunnel.
	local, err := d.ensureUnderlay(ctx, st, h, want, &res)
	if err != nil {
		return fail(err)
	}
	tun := ifaceWant{bridge: IntegrationBridge, name: TunnelPort, typ: "vxlan", ofport: tunnelOFPort, options: map[string]string{
		"remote_ip": "flow", "key": "flow", "local_ip": local.String(), "dst_port": strconv.Itoa(want.vxlanPort),
	}}
	if err := d.ensureIface(ctx, st, tun, &res); err != nil {
		return fail(err)
	}
	// 3. The gateway port and the host's routes to every workload.
	gw := ifaceWant{bridge: IntegrationBridge, name: GatewayPort, typ: "internal", ofport: gatewayOFPort,
		mac: want.gatewayMAC.String(), mtuRequest: want.mtu}
	if err := d.ensureIface(ctx, st, gw, &res); err != nil {
		return fail(err)
	}
	changes, err := h.SetupHostIface(link.HostIface{
		Name: GatewayPort, MAC: want.gatewayMAC, MTU: want.mtu,
		Addrs:  []netip.Prefix{netip.PrefixFrom(want.gateway, want.subnet.Bits())},
		Routes: []netip.Prefix{want.cluster},
	})
	res.Changes = append(res.Changes, changes...)
	if err != nil {
		return fail(err)
	}
	// 4. Workload ports.
	ports, err := d.syncWorkloadPorts(ctx, st, h, want, &res)
	if err != nil {
		return fail(err)
	}
	if err := d.ensureQoS(ctx, want, ports, &res); err != nil {
		return fail(err)
	}
	meters := d.wantMeters(want, ports)
	if err := d.ensureMeters(ctx, meters, &res); err != nil {
		return fail(err)
	}
	// 5. Userspace tunneling: OVS must know the MAC of every remote host's
	// next hop before flows send packets there, or it drops the first;
	// and it forgets a MAC not used for a while, so a refresher keeps them.
	// Failing here costs first packets, not connectivity: the flows go in
	// anyway, and the next Realize (and the refresher) tries again.
	if d.cfg.DatapathType == "netdev" {
		if err := d.ensureTunnelNeighbors(ctx, h, want, &res); err != nil {
			d.log.Warn("could not make OVS learn the tunnel next hops; the first packet to a host OVS has not learned yet will be dropped",
				"bridge", UnderlayBridge, "err", err)
		}
		d.refresher.start(d.neighborRefreshPeriod, d.refreshTunnelNeighbors)
	}
	// 6. Flows, in one atomic bundle.
	want.userspace = d.cfg.DatapathType == "netdev"
	fh := want.flowHost(ports)
	res.Workloads = len(fh.Local)
	if res.Flows, err = d.program(ctx, fh, false); err != nil {
		return fail(err)
	}
	if err := d.dropMeters(ctx, meters, &res); err != nil {
		return fail(err)
	}
	// 7. The kernel beyond OVS: forwarding, SNAT, node ports, refusals.
	if err := d.ensureHostNet(ctx, want, local, &res); err != nil {
		return fail(err)
	}
	// 8. Every flow is in: let a restarted ovs-vswitchd forward anew.
	if err := d.clearFlowRestoreWait(ctx, &res); err != nil {
		return fail(err)
	}
	d.full = newFullApply(want, ports, local)
	return res, nil
}

// clearFlowRestoreWait removes other_config:flow-restore-wait from the
// Open_vSwitch row once the flows are installed. Whoever restarts
// ovs-vswitchd sets it first (`ovs-vsctl set Open_vSwitch .
// other_config:flow-restore-wait=true`): the new ovs-vswitchd then keeps
// the kernel datapath's flows and handles no new packet, instead of
// forwarding with an empty flow table, until the flows are back; this
// agent puts them back (at its next resync) and ends the wait. Without the
// removal, a restarted ovs-vswitchd would handle no new flow ever.
func (d *Datapath) clearFlowRestoreWait(ctx context.Context, res *Result) error {
	v, err := d.ovs.Vsctl(ctx, "--if-exists", "get", "Open_vSwitch", ".", "other_config:flow-restore-wait")
	if err != nil {
		return fmt.Errorf("read other_config:flow-restore-wait: %w", err)
	}
	if strings.Trim(strings.TrimSpace(v), `"`) != "true" {
		return nil
	}
	if _, err := d.ovs.Vsctl(ctx, "remove", "Open_vSwitch", ".", "other_config", "flow-restore-wait"); err != nil {
		return fmt.Errorf("clear other_config:flow-restore-wait: %w", err)
	}
	res.Changes = append(res.Changes, "other_config:flow-restore-wait cleared (the flows are installed)")
	return nil
}

// ensureBridge creates or fixes a bridge if it differs from w.
func (d *Datapath) ensureBridge(ctx context.Context, st *ovsState, w bridgeWant, res *Result) error {
	diff := st.bridgeDiffers(w)
	if len(diff) == 0 {
		return nil
	}
	if err := d.ovs.EnsureBridge(ctx, ovs.BridgeConfig{Name: w.name, DatapathType: w.datapathType}); err != nil {
		return err
	}
	if len(w.otherConfig) > 0 {
		args := []string{"set", "Bridge", w.name}
		for _, k := range slices.Sorted(maps.Keys(w.otherConfig)) {
			args = append(args, fmt.Sprintf("other_config:%s=%q", k, w.otherConfig[k]))
		}
		if _, err := d.ovs.Vsctl(ctx, args...); err != nil {
			return fmt.Errorf("configure bridge %q: %w", w.name, err)
		}
	}
	res.Changes = append(res.Changes, fmt.Sprintf("bridge %s (was: %s)", w.name, strings.Join(diff, ", ")))
	return nil
}

// ensureIface creates or fixes a port if it differs from w.
func (d *Datapath) ensureIface(ctx context.Context, st *ovsState, w ifaceWant, res *Result) error {
	diff := st.ifaceDiffers(w)
	if len(diff) == 0 {
		return nil
	}
	if i, ok := st.ifaces[w.name]; ok && i.bridge != "" && i.bridge != w.bridge {
		// On another bridge: add-port --may-exist would fail.
		if err := d.ovs.DeletePort(ctx, i.bridge, w.name); err != nil {
			return err
		}
	}
	if _, err := d.ovs.EnsurePort(ctx, w.bridge, w.name, w.ofport, w.args()...); err != nil {
		return err
	}
	res.Changes = append(res.Changes, fmt.Sprintf("port %s on %s (was: %s)", w.name, w.bridge, strings.Join(diff, ", ")))
	return nil
}

// errNoUnderlayAddr is wrapped when the underlay has no IPv4 address.
var errNoUnderlayAddr = errors.New("no IPv4 address to use as the tunnel endpoint")

// hostNSName is how messages name the host namespace.
func (d *Datapath) hostNSName() string {
	if d.hostNS == "" {
		return "(current)"
	}
	return d.hostNS
}

// program compiles fh and makes br-int's flows and service groups match
// it in one atomic bundle (groups in flows.GroupRange are ours), then
// flushes the conntrack entries of UDP endpoints that left. Policy flows
// carry their rule's id as cookie category (the rest categoryIntegration,
// 0), which RuleCounters and Trace read back. change is a change realize
// (ApplyChange): flows and groups are diffed against what the last
// reconcile left (ovs.Desired.Trusted) rather than read back from OVS.
func (d *Datapath) program(ctx context.Context, fh *flows.Host, change bool) (ovs.Result, error) {
	compiled := flows.CompileAll(fh)
	res, err := d.ovs.Apply(ctx, IntegrationBridge, ovs.Desired{
		Generation: d.cfg.Generation, Flows: compiled.Flows, Groups: compiled.Groups, OwnedGroups: flows.GroupRange,
		Trusted: change,
	})
	if err != nil {
		return res, err
	}
	before, _ := d.last()
	d.remember(fh, compiled.Rules)
	d.flushRemovedUDP(ctx, before, fh)
	return res, nil
}
