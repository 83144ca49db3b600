// Package ovs runs Open vSwitch instances and keeps OpenFlow state on their
// bridges equal to a desired state, in atomic, generation-aware diffs.
//
// # Instances
//
// An [Instance] is one ovsdb-server + ovs-vswitchd pair with its own run,
// db and log directories, optionally in a named network namespace.
// [StartInstance] creates conf.db (ovsdb-tool create, or convert when the
// schema is newer), starts the daemons with --detach and --pidfile (they
// outlive the caller like real daemons; a second StartInstance on the same
// RunDir adopts them) and waits until ovs-vswitchd answers. [Instance.Stop]
// ends them by pidfile.
//
// What Debian's OVS 3.1 tools do with the environment (tried here):
//   - OVS_RUNDIR moves every default socket and pidfile: ovs-vsctl's default
//     --db is unix:$OVS_RUNDIR/db.sock, ovs-vswitchd's default database is
//     the same, pidfiles and NAME.PID.ctl control sockets land there,
//     ovs-appctl -t ovs-vswitchd reads $OVS_RUNDIR/ovs-vswitchd.pid, and
//     ovs-ofctl BRIDGE opens $OVS_RUNDIR/BRIDGE.mgmt, which ovs-vswitchd
//     creates there for each bridge.
//   - OVS_DBDIR is where ovsdb-server looks for conf.db when given no path;
//     OVS_LOGDIR is where --log-file without a path writes.
//   - ovsdb-server has no default remote: it needs --remote=punix:PATH.
//
// This package passes explicit paths anyway (--db=unix:…, --pidfile=…,
// unix:RunDir/BRIDGE.mgmt) and also sets the variables ([Instance.Env]), so
// that humans can point ovs-vsctl, ovs-ofctl and ovs-appctl at an instance.
//
// Network namespaces: only the daemons run under `ip netns exec`. Clients
// reach them through unix sockets in RunDir, which a network namespace
// does not hide. The userspace (netdev) datapath creates a tap device
// named "ovs-netdev" plus one per bridge and internal port, in the daemon's
// namespace; a second netdev instance in the same namespace fails
// ("ovs-netdev: creating tap device failed: Device or resource busy"). So: one
// instance per namespace, which is what the multi-host lab does anyway.
// Those tap devices persist after the daemons exit; deleting the namespace
// removes them.
//
// # Flows and cookies
//
// A [Flow] is table, priority, match and actions in ovs-ofctl text plus a
// cookie. Our cookies are tag (16 bits, [AppTag]) | generation (16 bits,
// bumped on every agent start) | category (32 bits, the caller's). Flows
// without our tag are never deleted or modified by this package (but a
// desired flow with exactly the table, priority and match of a foreign
// flow replaces it: that is what an OpenFlow add does).
//
// # Canonical text
//
// OVS prints flows in a canonical form that differs from what one writes:
// fields reordered ("ct_state=+trk+new" → "ct_state=+new+trk"),
// "dl_type=0x0800,nw_proto=6" → "tcp", masked values normalized
// ("10.1.2.3/8" → "10.0.0.0/8"), load:…->NXM_NX_REG0[] → set_field:…->reg0,
// mod_dl_src → set_field:…->eth_src, NXM_NX_TUN_ID[0..31] →
// set_field:0x10/0xffffffff->tun_id, controller → CONTROLLER:65535, empty
// actions → drop, notes padded, priority 32768 and table 0 omitted. So the
// reconciler compares canonical text on both sides. The desired side is
// canonicalized by `ovs-ofctl -O OpenFlow15 parse-flows -`: it parses each
// flow, encodes an OpenFlow 1.5 flow_mod, decodes it and prints it with the
// formatting code dump-flows uses. On 30 varied flows (ct, nat, conjunction,
// group, NXM load/move, masks, tunnels, ipv6, arp, tcp_flags) its
// output equalled what ovs-vswitchd later dumped, character for character.
// Unlike installing the flows into a scratch bridge (the first idea) it
// needs no switch state: flows naming group:N canonicalize without that
// group existing. It costs one process per batch (20,000 flows: 0.4 s), and
// results are cached by input text, so a steady agent only pays for new
// flows. The flow key is (table, priority, canonical match): OVS holds at
// most one flow per key. A flow is unchanged when its canonical actions and
// full cookie also match.
//
// Ports in matches and actions must be numbers: parse-flows has no bridge to
// resolve names, and dumps use --no-names.
//
// OVS silently widens some matches while parsing: a field whose
// prerequisite is missing is dropped ("ip,tp_dst=80" → "ip"; ovs-ofctl logs
// that one, but "ip,tcp_flags=+syn" → "ip" without a word). Reconcile
// refuses such flows ([FlowError]): every field named in the input must
// appear in OVS's reading of it.
//
// # Reconcile
//
// [Instance.Reconcile] reads our flows (any generation) from OVS — never
// from memory, so a restarted agent starts from the truth — and applies the
// diff in one `ovs-ofctl -O OpenFlow15 bundle BRIDGE -` transaction (flags
// atomic+ordered). Lines are "flow delete_strict table=T,priority=P,MATCH,
// cookie=C/-1" and "flow add cookie=C,table=T,priority=P,MATCH,actions=A".
// A flow that is already right (same key, actions and cookie category) is
// left alone whatever generation wrote it, so a restarted agent with an
// unchanged state sends OVS nothing (ovs-ofctl monitor sees no event;
// TestReconcileRestartKeepsFlows, and datapath/host's restart test under
// traffic). A desired flow whose key exists with other actions or another
// category is re-added: OVS replaces a flow with the same key in place, new
// actions and new cookie together (event=ADDED, never DELETED). That no
// packet sees a replaced flow missing rests on OVS's design (a replace, and
// a whole atomic bundle, becomes visible as one classifier version). Only
// flows no longer desired, of any generation, are deleted; new flows carry
// the current generation. A second reconcile with the same input changes
// nothing and says so ([Result]).
//
// Measured here (userspace datapath, 10,000 flows, before restarts stopped
// re-stamping flows): first reconcile 0.47 s, no-op 0.13 s (dump, parse,
// diff). A restart with unchanged flows now costs what a no-op does. See
// BenchmarkReconcile and `make bench SUITE=programming` (docs/performance.md).
//
// A bundle is all or nothing. ovs-ofctl parses the whole file first, and
// ovs-vswitchd validates every flow_mod before committing; plain add-flows
// (no bundle) is not atomic: it applies the lines before a bad one. Errors
// name the refused flow ([BundleError]: "Error OFPBAC_BAD_OUT_GROUP for:
// OFPT_FLOW_MOD … ADD …" is matched back to the flow by its key).
//
// # Groups
//
// `ovs-ofctl bundle` carries group mods too ("group add_or_mod …", "group
// delete group_id=N"), so [Instance.Apply] reconciles groups and flows in
// one transaction, ordered: changed groups, flow deletes, flow adds, group
// deletes (deleting a group makes OVS delete the flows pointing to it).
// Groups have no cookie; ownership is an ID range ([GroupRange]). Canonical
// group text cannot come from parse-flows (a bucket has no match to check
// actions like ct(nat) against) and `ovs-ofctl parse-group` takes one group
// per process (9 ms each), so new group texts are canonicalized by one
// round trip through the scratch bridge [CanonBridge] (one bundle, one
// dump), cached by input text.
//
// # Not used: github.com/digitalocean/go-openvswitch
//
// Its ovs package runs one command per call through an ExecFunc that takes
// no context (no cancellation), its flow parser (v0.0.0-20241021184246)
// rejects every action it does not know, among them group:N, ct(…),
// goto_table and dec_ttl, and its bundles carry flow adds and deletes only,
// no groups. What is left (a few ovs-vsctl calls) is simpler as plain
// commands, so the module is not a dependency.
//
// # Not done
//
// After an ovs-vswitchd restart (as opposed to an agent restart) the agent's
// periodic resync (node/agent, every 15 s) puts the flows back. Whoever
// restarts ovs-vswitchd should set other_config:flow-restore-wait=true
// first, so the new one keeps the kernel datapath's flows and mishandles no
// packet meanwhile; the full apply (datapath/host) clears it once its flows
// are in. Nothing here sets it.
package ovs
