package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/sdn-dev/sdn/datapath/host"
	"github.com/sdn-dev/sdn/datapath/ovs"
	"github.com/sdn-dev/sdn/node/agent"
	"github.com/sdn-dev/sdn/node/cnisrv"
	"github.com/sdn-dev/sdn/node/dockerdrv"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Config is what the host role needs: sdnd's flags, resolved.
type Config struct {
	NodeName      string
	DataDir       string // the agent keeps DataDir/agent/desired.pb and generation
	UnderlayIface string
	Servers       []string // addresses of the servers, tried in order
	DialOptions   []grpc.DialOption
	// Datapath is the OVS datapath type: "system" (kernel) or "netdev"
	// (userspace).
	Datapath  string
	OVSRunDir string
	OVSDBDir  string
	CNISocket string
	// DockerSocket, if set, is where this host serves Docker's remote
	// network-driver protocol (node/dockerdrv), e.g.
	// /run/docker/plugins/sdn.sock for driver "sdn".
	DockerSocket      string
	HeartbeatInterval time.Duration
	// DatapathListen is where the datapath service (node/dpsvc: trace and
	// rule counters, for the servers) listens: ip:port, "" for the
	// underlay address on port dpsvc.DefaultPort, or DatapathListenOff.
	DatapathListen string
	// DatapathTLS is the service's mutual TLS (pki.HostServiceTLS); nil
	// serves plaintext (--dev).
	DatapathTLS *tls.Config
	// AlsoServer says this sdnd is a server too: when the agent is refused
	// the process keeps running, since a voter must not leave the quorum
	// for its host's agent.
	AlsoServer bool
	// Started, if set, runs in its own goroutine once the agent runs, with
	// the agent's connection to the servers and a context that ends when
	// the role stops (sdnd polls the revoked certificates there).
	Started func(ctx context.Context, conn *grpc.ClientConn)
	// LeakPeriod and LeakGrace tune the leak loop (node/leaks); 0 means
	// leaks.DefaultPeriod and leaks.DefaultGrace.
	LeakPeriod, LeakGrace time.Duration
	Logger                *slog.Logger
}

// Role is a running host role: the watch loop and the CNI service.
type Role struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when every loop of the role has stopped
	conn   *grpc.ClientConn
	dp     hostDatapath
	inst   *ovs.Instance
}

// Start opens this host's OVS and datapath, starts following the servers
// and serves the CNI plugin. Fatal errors later go to failed (without
// blocking: failed should have room).
func Start(ctx context.Context, o Config, failed chan<- error) (*Role, error) {
	p, err := open(ctx, o)
	if err != nil {
		return nil, err
	}
	r := p.run(ctx, o, failed)
	o.Logger.Info("agent started", "node", o.NodeName, "servers", strings.Join(o.Servers, ","), "underlay", o.UnderlayIface,
		"underlay_ip", p.ip, "underlay_mtu", p.mtu, "datapath_service", p.dpAddr, "datapath", o.Datapath, "ovs_rundir", o.OVSRunDir,
		"cni_socket", o.CNISocket, "docker_socket", o.DockerSocket)
	return r, nil
}

// Stop ends the CNI service (in-flight operations finish first) and the
// watch loop. The host keeps its flows: an agent restart must not drop
// traffic.
func (r *Role) Stop() {
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
	}
	r.conn.Close()
	r.dp.Close()
	r.inst.Close()
}

// openDocker opens the Docker network driver and its socket when
// DockerSocket is set (nil, nil, nil when it is not). Its record of Docker
// networks is DataDir/docker/networks.json.
func openDocker(o Config, conn *grpc.ClientConn, a *agent.Agent, dp hostDatapath) (*dockerdrv.Driver, net.Listener, error) {
	if o.DockerSocket == "" {
		return nil, nil, nil
	}
	d, err := dockerdrv.New(dockerdrv.Config{
		Node: o.NodeName, Workloads: sdnv1.NewWorkloadServiceClient(conn), Agent: a, Datapath: dp,
		StateFile: filepath.Join(o.DataDir, "docker", "networks.json"), TxChecksumOff: o.Datapath == "netdev",
		Logger: o.Logger.With("component", "docker"),
	})
	if err != nil {
		return nil, nil, err
	}
	lis, err := cnisrv.ListenUnix(o.DockerSocket)
	if err != nil {
		return nil, nil, fmt.Errorf("Docker plugin socket: %w", err)
	}
	return d, lis, nil
}

// underlayAddr returns this host's tunnel endpoint and the underlay MTU:
// the first global IPv4 address of the underlay interface and its MTU. The
// userspace datapath moves that address onto its underlay bridge (br-phy),
// so after a restart it is looked for there too.
func underlayAddr(name string) (net.IP, int, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return nil, 0, fmt.Errorf("underlay interface %q: %w (see `ip link`; --underlay-iface names the interface that carries tunnels)", name, err)
	}
	for _, n := range []string{name, host.UnderlayBridge} {
		if ip := firstIPv4(n); ip != nil {
			return ip, ifc.MTU, nil
		}
	}
	return nil, 0, fmt.Errorf("underlay interface %q has no IPv4 address (nor has %s); the tunnel endpoint is its address", name, host.UnderlayBridge)
}

// firstIPv4 returns the first global IPv4 address of an interface, or nil.
func firstIPv4(name string) net.IP {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return nil
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.To4()
		}
	}
	return nil
}

// openOVS connects to the Open vSwitch that runs with OVS_RUNDIR=runDir. sdnd
// does not start OVS itself: it is the host's, started by its service
// manager (or by the lab).
func openOVS(ctx context.Context, runDir, dbDir string, log *slog.Logger) (*ovs.Instance, error) {
	for _, d := range []string{"ovsdb-server", "ovs-vswitchd"} {
		if !pidfileAlive(filepath.Join(runDir, d+".pid")) {
			return nil, fmt.Errorf("no %s running with OVS_RUNDIR=%s (no live %s.pid there); start Open vSwitch first (e.g. `systemctl start openvswitch-switch`) or point --ovs-rundir at it", d, runDir, d)
		}
	}
	inst, err := ovs.StartInstance(ctx, ovs.InstanceConfig{RunDir: runDir, DBDir: dbDir, LogDir: runDir, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("connect to Open vSwitch at %s: %w", runDir, err)
	}
	return inst, nil
}

// pidfileAlive reports whether the process a pidfile names exists.
func pidfileAlive(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return false
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// dialServers returns a connection to the servers. Several addresses are
// tried in an order of the agent's own (pick_first), so the agent follows
// whichever answers and moves to the next when it fails; a follower
// forwards writes to the leader, relays heartbeats and reports, and serves
// the watch itself. avoid (nil for one server) takes a server out of the
// list for a while: one behind the cluster, which ended the agent's watch.
func dialServers(servers []string, opts []grpc.DialOption) (conn *grpc.ClientConn, avoid func(addr string), err error) {
	if len(servers) == 1 {
		target := servers[0]
		if !strings.HasPrefix(target, "unix:") {
			target = "passthrough:///" + target
		}
		conn, err = grpc.NewClient(target, opts...)
		return conn, nil, err
	}
	l := &serverList{r: manual.NewBuilderWithScheme("sdn-servers"), avoided: map[string]time.Time{}}
	// Each agent starts at a server of its own, so that agents spread
	// over all of them (followers serve watches, heartbeats and reports).
	servers = slices.Clone(servers)
	rand.Shuffle(len(servers), func(i, j int) { servers[i], servers[j] = servers[j], servers[i] })
	for _, s := range servers {
		// The target names no server; TLS checks each server's
		// certificate for the host dialled.
		host, _, err := net.SplitHostPort(s)
		if err != nil {
			return nil, nil, fmt.Errorf("servers %q: %w", s, err)
		}
		l.all = append(l.all, resolver.Address{Addr: s, ServerName: host})
	}
	l.r.InitialState(resolver.State{Addresses: l.all})
	conn, err = grpc.NewClient(l.r.Scheme()+":///servers", append(opts, grpc.WithResolvers(l.r))...)
	return conn, l.avoid, err
}

// avoidFor is how long a server behind the cluster stays out of an agent's
// list.
const avoidFor = 30 * time.Second

// serverList is what the resolver of an agent's connection gives gRPC: the
// servers, less those avoided for a while.
type serverList struct {
	r       *manual.Resolver
	mu      sync.Mutex
	all     []resolver.Address
	avoided map[string]time.Time // until when
}

// avoid takes addr out of the list for avoidFor (never the last server).
func (l *serverList) avoid(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	addr = l.configured(addr)
	l.avoided[addr] = time.Now().Add(avoidFor)
	l.update()
	time.AfterFunc(avoidFor, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.update()
	})
}

// configured maps the address a connection reached (an IP) to the server
// address as configured (maybe a name).
func (l *serverList) configured(addr string) string {
	for _, a := range l.all {
		if a.Addr == addr {
			return addr
		}
	}
	for _, a := range l.all {
		if ta, err := net.ResolveTCPAddr("tcp", a.Addr); err == nil && ta.String() == addr {
			return a.Addr
		}
	}
	return addr
}

// update hands gRPC the servers not avoided now (all when that is none).
func (l *serverList) update() {
	now := time.Now()
	var addrs []resolver.Address
	for _, a := range l.all {
		if until, ok := l.avoided[a.Addr]; ok && now.Before(until) {
			continue
		}
		addrs = append(addrs, a)
	}
	if len(addrs) == 0 {
		addrs = l.all
	}
	l.r.UpdateState(resolver.State{Addresses: addrs})
}

// report hands a fatal error to failed without blocking.
func report(failed chan<- error, err error) {
	select {
	case failed <- err:
	default:
	}
}
