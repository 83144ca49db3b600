package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sdn-dev/sdn/cluster"
	"github.com/sdn-dev/sdn/cluster/api"
	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/node"
	"github.com/sdn-dev/sdn/node/agent"
	"github.com/sdn-dev/sdn/node/cnisrv"
	"github.com/sdn-dev/sdn/node/dockerdrv"
	"github.com/sdn-dev/sdn/pki"
	"github.com/sdn-dev/sdn/spec"
)

// Defaults that are not empty.
const (
	defaultDataDir   = "/var/lib/sdnd"
	defaultListen    = "127.0.0.1:7420"
	defaultOVSRunDir = "/var/run/openvswitch"
	defaultOVSDBDir  = "/etc/openvswitch" // Debian's, with the default run dir
	defaultCNISocket = cnisrv.DefaultSocket
	// datapathListenOff is --datapath-listen's value for no service.
	datapathListenOff = node.DatapathListenOff
)

// options are sdnd's settings.
type options struct {
	dev, server, bootstrap, agent bool

	dataDir   string
	listen    []string // host:port or unix:/path
	raftAddr  string   // "" = the first host:port of listen
	advertise string
	nodeName  string
	logLevel  slog.Level

	// How a server without raft state finds its cluster: --bootstrap (one
	// voter), --peers (the whole cluster, given to every server),
	// --bootstrap-expect with --join (servers find each other), or --join
	// alone (be added to a running cluster).
	peers           []cluster.Peer
	bootstrapExpect int
	join            []string

	servers       []string // the agent's servers: host:port or unix:/path
	underlayIface string
	ovsRunDir     string
	ovsDBDir      string
	datapath      string // netdev or system
	cniSocket     string
	dockerSocket  string // "" = no Docker network driver
	// datapathListen: the datapath service's address ("" the underlay
	// address, port 7475; "off" none).
	datapathListen string

	// Host liveness: how long the leader waits without a heartbeat before
	// it marks a host down (server), how often the agent sends one.
	nodeDownAfter     time.Duration
	heartbeatInterval time.Duration

	// How often the leader compares the servers' states (0: only when
	// asked).
	stateCheckInterval time.Duration

	// Mutual TLS (pki/): the cluster CA and this process's certificate and
	// key; all three, or none with plaintext asked for (--dev,
	// --insecure-plaintext).
	tlsCA, tlsCert, tlsKey string
	insecurePlaintext      bool

	config string // the HCL file the settings were read from, if any
}

// listFlag is a repeatable flag whose values may also be comma lists. The
// first value given replaces the default.
type listFlag struct {
	vals []string
	set  bool
}

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }
func (l *listFlag) Set(s string) error {
	if !l.set {
		l.vals, l.set = nil, true
	}
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			l.vals = append(l.vals, v)
		}
	}
	return nil
}

// Which flags belong to which role, for "flag X needs role Y" errors.
var (
	serverFlags = []string{"bootstrap", "listen", "raft-addr", "raft-advertise", "peers", "bootstrap-expect", "join", "node-down-after", "state-check-interval"}
	agentFlags  = []string{"servers", "underlay-iface", "ovs-rundir", "ovs-dbdir", "datapath", "cni-socket", "docker-plugin-socket", "heartbeat-interval", "datapath-listen"}
)

// newFlagSet declares sdnd's flags into o.
func newFlagSet(o *options, listen, servers, peers, join *listFlag, logLevel *string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sdnd", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.BoolVar(&o.dev, "dev", false, "run one server that bootstraps a single-voter cluster (plaintext gRPC and raft unless TLS files are given, for trying sdn out); add --agent to make this host an agent too")
	fs.BoolVar(&o.server, "server", false, "run the server role (raft voter and API)")
	fs.BoolVar(&o.bootstrap, "bootstrap", false, "with --server: start a new cluster with this server as the only voter if it has no raft state")
	fs.BoolVar(&o.agent, "agent", false, "run the agent role: program this host's OVS and serve the CNI plugin")
	fs.StringVar(&o.dataDir, "data-dir", defaultDataDir, "directory for state (server: raft/, state.db; agent: agent/desired.pb, agent/generation)")
	fs.Var(listen, "listen", "API listeners: `host:port` or unix:/path (repeatable or comma-separated; a unix socket gets mode 0600)")
	fs.StringVar(&o.raftAddr, "raft-addr", "", "the server's cluster address, host:port: raft and the API share it (default: the first host:port of --listen)")
	fs.StringVar(&o.advertise, "raft-advertise", "", "the address other servers dial to reach this one, when it differs from --raft-addr (e.g. it listens on 0.0.0.0)")
	fs.Var(peers, "peers", "with --server: the whole initial cluster, `id=host:port,...` (every server's --node-name and cluster address), given identically to every server; a server with no raft state bootstraps with exactly these voters")
	fs.IntVar(&o.bootstrapExpect, "bootstrap-expect", 0, "with --server and --join: form a new cluster once this many servers (3 or 5) found each other; the lowest --node-name bootstraps")
	fs.Var(join, "join", "with --server: other servers' cluster addresses, `host:port,...`: to find them with --bootstrap-expect, or alone to be added to a running cluster")
	fs.StringVar(&o.nodeName, "node-name", "", "this host's name (also its raft server id) (default: the hostname, lowercased)")
	fs.Var(servers, "servers", "agent: the servers' API addresses, `host:port` or unix:/path (default: the first --listen when --server runs here too)")
	fs.StringVar(&o.underlayIface, "underlay-iface", "", "agent: the underlay interface; its IPv4 address is this host's tunnel endpoint and its MTU bounds the workloads'")
	fs.StringVar(&o.ovsRunDir, "ovs-rundir", defaultOVSRunDir, "agent: OVS_RUNDIR of the Open vSwitch to program")
	fs.StringVar(&o.ovsDBDir, "ovs-dbdir", "", "agent: OVS_DBDIR of that Open vSwitch (default: /etc/openvswitch with the default --ovs-rundir, else --ovs-rundir)")
	fs.StringVar(&o.datapath, "datapath", "", "agent: OVS datapath type, netdev or system (default: system when /sys/module/openvswitch exists, else netdev)")
	fs.StringVar(&o.cniSocket, "cni-socket", defaultCNISocket, "agent: unix socket for the CNI plugin (mode 0600)")
	fs.StringVar(&o.dockerSocket, "docker-plugin-socket", "", "agent: serve Docker's network driver \"sdn\" on this unix socket (Docker finds "+dockerdrv.DefaultSocket+"); default none")
	fs.StringVar(&o.datapathListen, "datapath-listen", "", "agent: where the host's datapath service listens for the servers (sdnctl trace, per-rule counters), `ip:port`, or off (default: the underlay address, port 7475); mutual TLS, server certificates only, unless plaintext")
	fs.DurationVar(&o.nodeDownAfter, "node-down-after", cluster.DefaultNodeDownAfter, "with --server: mark a host down after this long without a heartbeat (it keeps its subnet and workloads; the cluster's node_release_after releases them); at least 1s, and several agent --heartbeat-intervals")
	fs.DurationVar(&o.stateCheckInterval, "state-check-interval", api.DefaultStateCheckInterval, "with --server: how often the leader compares every server's state with its own (a hash of the whole state on each; sdnctl status shows the result); 0: only when asked (sdnctl status --check-state)")
	fs.DurationVar(&o.heartbeatInterval, "heartbeat-interval", agent.DefaultHeartbeatInterval, "agent: how often to tell the leader this host is alive (held in its memory, not in raft); keep it well under the servers' --node-down-after")
	fs.StringVar(&o.tlsCA, pki.FlagCA, "", "the cluster CA certificate(s) (ca.crt from \"sdnctl tls init\"): peers must present a certificate it signed")
	fs.StringVar(&o.tlsCert, pki.FlagCert, "", "this process's certificate: server-NAME.crt for --server, agent-NAME.crt for --agent (NAME is --node-name)")
	fs.StringVar(&o.tlsKey, pki.FlagKey, "", "the key of --"+pki.FlagCert)
	fs.BoolVar(&o.insecurePlaintext, insecurePlaintextFlag, false, "run --server or --agent without TLS (plaintext gRPC and raft, no authentication: whoever reaches the API can change the network); --dev implies it unless TLS files are given")
	fs.StringVar(logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.config, "config", "", "read settings from this HCL file: attributes named like the flags (data-dir or data_dir); flags given on the command line win")
	return fs
}

// env is what parseFlags reads from the machine; tests replace it.
type env struct {
	hostname  string
	kernelOVS bool // /sys/module/openvswitch exists
	readFile  func(string) ([]byte, error)
	usageOut  io.Writer
}

func machineEnv() env {
	host, _ := os.Hostname()
	_, err := os.Stat("/sys/module/openvswitch")
	return env{hostname: host, kernelOVS: err == nil, readFile: spec.ReadFile, usageOut: os.Stderr}
}

// parseFlags reads the command line, then the --config file for what the
// command line did not set, and checks the result.
func parseFlags(args []string, e env) (*options, error) {
	o := &options{}
	listen := &listFlag{vals: []string{defaultListen}}
	servers, peers, join := &listFlag{}, &listFlag{}, &listFlag{}
	logLevel := "info"
	fs := newFlagSet(o, listen, servers, peers, join, &logLevel, e.usageOut)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if o.config != "" {
		src, err := e.readFile(o.config)
		if err != nil {
			return nil, fmt.Errorf("--config: %w", err)
		}
		if err := applyConfigFile(fs, o.config, src, given); err != nil {
			return nil, err
		}
	}
	o.listen, o.servers, o.join = listen.vals, servers.vals, join.vals
	if err := o.logLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return nil, fmt.Errorf("log-level: %w", err)
	}
	var errs []error
	for _, p := range peers.vals {
		id, addr, ok := strings.Cut(p, "=")
		if !ok || id == "" {
			errs = append(errs, fmt.Errorf("peers %q: want id=host:port, e.g. s1=10.0.0.1:7420", p))
			continue
		}
		o.peers = append(o.peers, cluster.Peer{ID: id, Address: addr})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return o, o.complete(given, e)
}

// complete derives defaults and checks that the settings fit together.
func (o *options) complete(given map[string]bool, e env) error {
	if o.dev {
		o.server, o.bootstrap = true, true
	}
	if !o.server && !o.agent {
		return errors.New("nothing to run: use --dev, --server or --agent (a host can be both server and agent)")
	}
	var errs []error
	need := func(role string, running bool, names []string) {
		for _, n := range names {
			if given[n] && !running {
				errs = append(errs, fmt.Errorf("--%s is a setting of the %s role; add --%s or drop it", n, role, role))
			}
		}
	}
	need("server", o.server, serverFlags)
	need("agent", o.agent, agentFlags)
	if o.nodeDownAfter < time.Second {
		errs = append(errs, fmt.Errorf("node-down-after %s: want at least 1s (the default is %s)", o.nodeDownAfter, cluster.DefaultNodeDownAfter))
	}
	if o.stateCheckInterval < 0 {
		errs = append(errs, fmt.Errorf("state-check-interval %s: want 0 (only when asked) or a positive duration (the default is %s)", o.stateCheckInterval, api.DefaultStateCheckInterval))
	}
	if o.heartbeatInterval <= 0 {
		errs = append(errs, fmt.Errorf("heartbeat-interval %s: want a positive duration (the default is %s)", o.heartbeatInterval, agent.DefaultHeartbeatInterval))
	} else if o.server && o.agent && o.heartbeatInterval*2 > o.nodeDownAfter {
		errs = append(errs, fmt.Errorf("heartbeat-interval %s and node-down-after %s: a host would be marked down after missing fewer than two heartbeats; shorten the interval or lengthen node-down-after", o.heartbeatInterval, o.nodeDownAfter))
	}

	if o.nodeName == "" {
		o.nodeName = strings.ToLower(e.hostname)
	}
	if o.nodeName == "" {
		errs = append(errs, errors.New("--node-name is empty and the hostname is unknown"))
	} else if err := model.ValidateNodeName(o.nodeName); err != nil {
		errs = append(errs, fmt.Errorf("node-name %q: %v", o.nodeName, err))
	}
	if o.dataDir == "" {
		errs = append(errs, errors.New("--data-dir is empty"))
	} else if abs, err := filepath.Abs(o.dataDir); err == nil {
		o.dataDir = abs
	}
	errs = append(errs, o.completeTLS()...)
	if o.server {
		errs = append(errs, o.completeServer()...)
	}
	if o.agent {
		errs = append(errs, o.completeAgent(e)...)
	}
	return errors.Join(errs...)
}

// insecurePlaintextFlag asks for plaintext without --dev.
const insecurePlaintextFlag = "insecure-plaintext"

// plaintext reports whether sdnd runs without TLS: asked for with
// --insecure-plaintext, or --dev given no TLS files.
func (o *options) plaintext() bool {
	return o.insecurePlaintext || (o.dev && o.tlsCA == "" && o.tlsCert == "" && o.tlsKey == "")
}

// completeTLS checks that TLS is configured whole, or plaintext asked for:
// plaintext is never a fallback.
func (o *options) completeTLS() []error {
	files := map[string]*string{pki.FlagCA: &o.tlsCA, pki.FlagCert: &o.tlsCert, pki.FlagKey: &o.tlsKey}
	var given, missing []string
	for _, name := range []string{pki.FlagCA, pki.FlagCert, pki.FlagKey} {
		p := files[name]
		if *p == "" {
			missing = append(missing, "--"+name)
			continue
		}
		given = append(given, "--"+name)
		if abs, err := filepath.Abs(*p); err == nil {
			*p = abs
		}
	}
	switch {
	case o.insecurePlaintext && len(given) > 0:
		return []error{fmt.Errorf("--%s and %s contradict each other: drop --%s to use TLS, or the TLS files to run plaintext", insecurePlaintextFlag, strings.Join(given, ", "), insecurePlaintextFlag)}
	case len(given) > 0 && len(missing) > 0:
		return []error{fmt.Errorf("%s given without %s: mutual TLS needs all three, the cluster CA certificate, this process's certificate and its key", strings.Join(given, ", "), strings.Join(missing, " and "))}
	case len(given) == 0 && !o.plaintext():
		roles := "--server"
		if o.agent && !o.server {
			roles = "--agent"
		} else if o.agent {
			roles = "--server --agent"
		}
		return []error{fmt.Errorf("sdnd %s speaks mutual TLS and no TLS files were given: pass --%s, --%s and --%s (create them with `sdnctl tls init`; see docs/security.md), "+
			"or run plaintext on purpose: --dev (one server trying sdn out) or --%s (no authentication: whoever reaches the API can change the network)",
			roles, pki.FlagCA, pki.FlagCert, pki.FlagKey, insecurePlaintextFlag)}
	}
	return nil
}

func (o *options) completeServer() []error {
	var errs []error
	if len(o.listen) == 0 {
		errs = append(errs, errors.New("--listen is empty; the server needs an API address"))
	}
	for _, l := range o.listen {
		if err := checkAddr(l); err != nil {
			errs = append(errs, fmt.Errorf("listen %q: %v", l, err))
		}
	}
	if o.raftAddr == "" {
		for _, l := range o.listen {
			if !strings.HasPrefix(l, "unix:") {
				o.raftAddr = l
				break
			}
		}
		if o.raftAddr == "" && len(o.listen) > 0 {
			errs = append(errs, errors.New("--listen has no host:port and raft needs one: add one to --listen or set --raft-addr"))
		}
	} else if err := checkAddr(o.raftAddr); err != nil || strings.HasPrefix(o.raftAddr, "unix:") {
		errs = append(errs, fmt.Errorf("raft-addr %q: want host:port", o.raftAddr))
	}
	ways := 0
	for _, on := range []bool{o.bootstrap, len(o.peers) > 0, o.bootstrapExpect != 0} {
		if on {
			ways++
		}
	}
	if ways > 1 {
		errs = append(errs, errors.New("choose one way to start a cluster: --bootstrap (one voter, also what --dev does), --peers (every server listed) or --bootstrap-expect N with --join"))
	}
	switch {
	case o.bootstrapExpect < 0:
		errs = append(errs, fmt.Errorf("bootstrap-expect %d: want the number of servers, e.g. 3", o.bootstrapExpect))
	case o.bootstrapExpect > 1 && len(o.join) == 0:
		errs = append(errs, fmt.Errorf("--bootstrap-expect %d needs --join with at least one other server's address, so the servers find each other", o.bootstrapExpect))
	}
	if len(o.join) > 0 && (o.bootstrap || len(o.peers) > 0) {
		errs = append(errs, errors.New("--join goes with --bootstrap-expect, or alone to be added to a running cluster; --bootstrap and --peers need no other server to start"))
	}
	for _, j := range o.join {
		if _, _, err := net.SplitHostPort(j); err != nil || strings.HasPrefix(j, "unix:") {
			errs = append(errs, fmt.Errorf("join %q: want another server's host:port", j))
		}
	}
	for _, p := range o.peers {
		if err := model.ValidateNodeName(p.ID); err != nil {
			errs = append(errs, fmt.Errorf("peers: id %q: %v (ids are the servers' --node-name)", p.ID, err))
		}
		if _, _, err := net.SplitHostPort(p.Address); err != nil {
			errs = append(errs, fmt.Errorf("peers: %s=%s: want id=host:port", p.ID, p.Address))
		}
	}
	return errs
}

func (o *options) completeAgent(e env) []error {
	var errs []error
	if o.underlayIface == "" {
		errs = append(errs, errors.New("--agent needs --underlay-iface: the interface whose IPv4 address is this host's tunnel endpoint (e.g. eth0)"))
	}
	if len(o.servers) == 0 {
		if o.server && len(o.listen) > 0 {
			o.servers = []string{dialable(o.listen[0])}
		} else {
			errs = append(errs, errors.New("--agent needs --servers (the servers' API addresses, e.g. 10.0.0.1:7420,10.0.0.2:7420) unless --server runs here too"))
		}
	}
	for _, s := range o.servers {
		if err := checkAddr(s); err != nil {
			errs = append(errs, fmt.Errorf("servers %q: %v", s, err))
		} else if strings.HasPrefix(s, "unix:") && len(o.servers) > 1 {
			errs = append(errs, fmt.Errorf("servers %q: a unix socket can only be the one server", s))
		}
	}
	switch o.datapath {
	case "":
		o.datapath = "netdev"
		if e.kernelOVS {
			o.datapath = "system"
		}
	case "netdev", "system":
	default:
		errs = append(errs, fmt.Errorf("datapath %q: want netdev (userspace) or system (kernel module)", o.datapath))
	}
	if o.ovsDBDir == "" {
		o.ovsDBDir = o.ovsRunDir
		if o.ovsRunDir == defaultOVSRunDir {
			o.ovsDBDir = defaultOVSDBDir
		}
	}
	if o.datapathListen != "" && o.datapathListen != datapathListenOff {
		if _, _, err := net.SplitHostPort(o.datapathListen); err != nil {
			errs = append(errs, fmt.Errorf("datapath-listen %q: want ip:port, or off", o.datapathListen))
		}
	}
	for name, p := range map[string]string{"ovs-rundir": o.ovsRunDir, "cni-socket": o.cniSocket} {
		if p == "" {
			errs = append(errs, fmt.Errorf("--%s is empty", name))
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

// checkAddr accepts host:port and unix:/absolute/path.
func checkAddr(a string) error {
	if p, ok := strings.CutPrefix(a, "unix:"); ok {
		if !filepath.IsAbs(p) {
			return errors.New("a unix socket needs an absolute path, e.g. unix:/run/sdn/api.sock")
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(a); err != nil {
		return fmt.Errorf("want host:port or unix:/path: %v", err)
	}
	return nil
}

// dialable turns a listen address into one to dial: a wildcard host
// becomes loopback.
func dialable(listen string) string {
	if strings.HasPrefix(listen, "unix:") {
		return listen
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}
