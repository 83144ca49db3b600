package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/pki"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// A lab with separate servers: UpServers starts N `sdnd --server` processes,
// each in its own namespace NAME-sK on the underlay (address .200+K, port
// sK on br0), bootstrapped from one --peers list; StartAgents then runs
// agent-only sdnds on the hosts, each given every server. Bring the hosts up
// with Config.UnderlayOnly (no sdnd of the lab's own). Servers keep their
// files in DIR/serverK/ (data/, sdnd.log, sdnd.pid, api.sock); Down removes
// them like everything else.

// maxServers bounds UpServers; server addresses are .201 to .209.
const maxServers = 9

// ServerName is server k's raft id (1-based): "s1".
func ServerName(k int) string { return "s" + strconv.Itoa(k) }

// ServerNS is server k's network namespace.
func (l *Lab) ServerNS(k int) string { return l.Name + "-s" + strconv.Itoa(k) }

// ServerIP is server k's underlay address.
func (l *Lab) ServerIP(k int) netip.Addr {
	a := Subnet(l.Name).Addr().As4()
	a[3] = byte(200 + k)
	return netip.AddrFrom4(a)
}

// ServerAddr is server k's cluster address (raft and the API).
func (l *Lab) ServerAddr(k int) string { return netip.AddrPortFrom(l.ServerIP(k), 7420).String() }

// ServerDir is where server k keeps its files.
func (l *Lab) ServerDir(k int) string { return filepath.Join(l.Dir, "server"+strconv.Itoa(k)) }

// ServerSocket is server k's API socket, reachable from the root namespace
// (pass "unix://"+ServerSocket(k) to sdnctl).
func (l *Lab) ServerSocket(k int) string { return filepath.Join(l.ServerDir(k), "api.sock") }

// ServerLog is server k's sdnd log.
func (l *Lab) ServerLog(k int) string { return filepath.Join(l.ServerDir(k), "sdnd.log") }

func (l *Lab) serverDaemon(k int) daemon {
	return daemon{pidfile: filepath.Join(l.ServerDir(k), "sdnd.pid"), mark: "--data-dir=" + filepath.Join(l.ServerDir(k), "data")}
}

// ServerPID is server k's sdnd pid, 0 when it does not run.
func (l *Lab) ServerPID(k int) int { return l.serverDaemon(k).pid() }

// DialServer connects to server k's API socket, with mutual TLS as
// server/lab.
func (l *Lab) DialServer(k int) (*grpc.ClientConn, error) {
	return l.dialTLS("unix://" + l.ServerSocket(k))
}

// labIdentity is the name of the server certificate the lab's own calls
// use.
const labIdentity = "lab"

// Every sdnd of a lab runs with mutual TLS, as a real cluster does: the lab
// makes a CA and certificates in DIR/tls/ (package pki): server-host1 (the
// single server, valid for host1's underlay address; server-host1 to
// server-hostN, each valid for its host's, when N hosts are servers:
// Config.HostServers) and server-sK (the
// separate servers, for theirs), agent-hostI for every host, client-admin
// for sdnctl (SdnctlTLSFlags) and server-lab, the identity Dial and
// DialServer connect with. A server certificate may make any call, so a
// test driving the API through them may also act as hosts (register fake
// ones, attach workloads on them).

// TLSDir holds the lab's CA and certificates.
func (l *Lab) TLSDir() string { return filepath.Join(l.Dir, "tls") }

// SdnctlTLSFlags are the flags with which sdnctl reaches the separate
// servers: the lab CA and the client-admin certificate.
func (l *Lab) SdnctlTLSFlags() []string {
	p := pki.PathsFor(l.TLSDir(), pki.RoleClient, "admin")
	return []string{"--" + pki.FlagCA, p.CA, "--" + pki.FlagCert, p.Cert, "--" + pki.FlagKey, p.Key}
}

// tlsFlags are the TLS flags of an sdnd with identity role/name.
func (l *Lab) tlsFlags(role pki.Role, name string) []string {
	p := pki.PathsFor(l.TLSDir(), role, name)
	return []string{"--" + pki.FlagCA + "=" + p.CA, "--" + pki.FlagCert + "=" + p.Cert, "--" + pki.FlagKey + "=" + p.Key}
}

// ensureTLS makes the lab's CA and the certificates of the hosts' servers
// (host1, or host1..hostN with Config.HostServers), of separate servers
// 1..n, of every host's agent, of sdnctl (client-admin) and of the lab
// itself (server-lab), keeping those that exist.
func (l *Lab) ensureTLS(n int) error {
	l.tlsMu.Lock()
	defer l.tlsMu.Unlock()
	dir := l.TLSDir()
	if _, err := os.Stat(pki.CAPaths(dir).Cert); errors.Is(err, os.ErrNotExist) {
		if err := pki.InitCA(dir); err != nil {
			return fmt.Errorf("lab CA: %w", err)
		}
	}
	type cert struct {
		id    pki.Identity
		hosts []string
	}
	want := []cert{{pki.Identity{Role: pki.RoleClient, Name: "admin"}, nil}, {pki.Identity{Role: pki.RoleServer, Name: labIdentity}, nil}}
	for i := 1; i <= l.HostServers(); i++ {
		want = append(want, cert{pki.Identity{Role: pki.RoleServer, Name: HostName(i)}, []string{l.HostIP(i).String()}})
	}
	for k := 1; k <= n; k++ {
		want = append(want, cert{pki.Identity{Role: pki.RoleServer, Name: ServerName(k)}, []string{l.ServerIP(k).String()}})
	}
	for i := 1; i <= l.Hosts; i++ {
		want = append(want, cert{pki.Identity{Role: pki.RoleAgent, Name: HostName(i)}, nil})
	}
	for _, c := range want {
		if _, err := os.Stat(pki.PathsFor(dir, c.id.Role, c.id.Name).Cert); err == nil {
			continue
		}
		if _, err := pki.Issue(dir, c.id.Role, c.id.Name, c.hosts, pki.DefaultValidity); err != nil {
			return fmt.Errorf("lab certificate %s: %w", c.id, err)
		}
	}
	return nil
}

// UpServers starts n servers (1 to 9) and waits until each knows a leader.
// Servers already running are kept.
func (l *Lab) UpServers(ctx context.Context, n int) error {
	if n < 1 || n > maxServers {
		return fmt.Errorf("lab %s: %d servers; want 1 to %d", l.Name, n, maxServers)
	}
	if l.Hosts > 200 {
		return fmt.Errorf("lab %s: %d hosts leave no room for servers at .201-.209 of %s; use at most 200 hosts", l.Name, l.Hosts, Subnet(l.Name))
	}
	if err := writeServerCount(l.Dir, n); err != nil {
		return err
	}
	if err := l.ensureTLS(n); err != nil {
		return err
	}
	var peers []string
	for k := 1; k <= n; k++ {
		peers = append(peers, ServerName(k)+"="+l.ServerAddr(k))
	}
	for k := 1; k <= n; k++ {
		if err := l.upServerNet(k); err != nil {
			return fmt.Errorf("%s: %w", ServerName(k), err)
		}
		if err := l.startServer(k, strings.Join(peers, ",")); err != nil {
			return err
		}
	}
	for k := 1; k <= n; k++ {
		if err := l.WaitServer(ctx, k); err != nil {
			return err
		}
	}
	l.logf("servers: %d up (%s)", n, strings.Join(peers, ","))
	return nil
}

// upServerNet makes server k's namespace, joined to the underlay bridge
// like a host's, with the server's address on ul0.
func (l *Lab) upServerNet(k int) error {
	ns := l.ServerNS(k)
	created, err := ensureNS(ns)
	if err != nil {
		return err
	}
	if created {
		if _, err := link.SetupWorkload(link.WorkloadIface{
			HostName: "s" + strconv.Itoa(k), HostNSPath: link.NSPath(l.UnderlayNS()), ContainerIfname: "ul0",
			NetNSPath: link.NSPath(ns), Addr: netip.PrefixFrom(l.ServerIP(k), 24), MTU: l.cfg.UnderlayMTU,
			// The hosts' side of their TCP crosses OVS's userspace
			// datapath, which needs full checksums on the wire.
			TxChecksumOff: true,
		}); err != nil {
			return err
		}
	}
	ul, err := link.Open(link.NSPath(l.UnderlayNS()))
	if err != nil {
		return err
	}
	defer ul.Close()
	port := "s" + strconv.Itoa(k)
	if err := ul.SetMaster(port, "br0"); err != nil {
		return err
	}
	if on, err := ul.TxChecksum(port); err == nil && on {
		return ul.SetTxChecksum(port, false)
	}
	return nil
}

// startServer starts server k's sdnd unless it runs.
func (l *Lab) startServer(k int, peers string) error {
	d := l.serverDaemon(k)
	if pid := d.pid(); pid != 0 {
		l.logf("%s: sdnd server running (pid %d, kept)", ServerName(k), pid)
		return nil
	}
	data := filepath.Join(l.ServerDir(k), "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	if peers == "" {
		b, err := os.ReadFile(filepath.Join(l.ServerDir(k), "peers"))
		if err != nil {
			return fmt.Errorf("%s: its peer list: %w", ServerName(k), err)
		}
		peers = string(b)
	}
	if err := os.WriteFile(filepath.Join(l.ServerDir(k), "peers"), []byte(peers), 0o644); err != nil {
		return err
	}
	args := append([]string{"--server", "--node-name=" + ServerName(k), "--data-dir=" + data,
		"--listen=unix:" + l.ServerSocket(k) + "," + l.ServerAddr(k), "--peers=" + peers},
		l.tlsFlags(pki.RoleServer, ServerName(k))...)
	args = append(args, l.cfg.ServerArgs...)
	pid, err := d.start(l.ServerNS(k), l.ServerLog(k), filepath.Join(l.Bin, "sdnd"), args...)
	if err != nil {
		return err
	}
	l.logf("%s: sdnd server started (pid %d, %s, mutual TLS, log %s)", ServerName(k), pid, l.ServerAddr(k), l.ServerLog(k))
	return nil
}

// WaitServer waits until server k's API answers SERVING (it knows a
// leader).
func (l *Lab) WaitServer(ctx context.Context, k int) error {
	conn, err := l.DialServer(k)
	if err != nil {
		return err
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	hint := func() string {
		if l.serverDaemon(k).pid() == 0 {
			// Its reaper writes how it ended (exit status or signal) to
			// the log: give it a moment, that line is the diagnosis.
			time.Sleep(time.Second)
		}
		return fmt.Sprintf("; last lines of %s:\n%s", l.ServerLog(k), tail(l.ServerLog(k), 15))
	}
	return poll(ctx, 90*time.Second, ServerName(k)+"'s API", func(ctx context.Context) (bool, error) {
		if l.serverDaemon(k).pid() == 0 {
			return false, giveUp{fmt.Errorf("%s's sdnd exited%s", ServerName(k), hint())}
		}
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING, err
	}, hint)
}

// KillServer kills server k's sdnd with SIGKILL (a crash) and waits until
// it is gone; its files stay.
func (l *Lab) KillServer(k int) error {
	d := l.serverDaemon(k)
	pid := d.pid()
	if pid == 0 {
		return fmt.Errorf("%s: sdnd is not running", ServerName(k))
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	if !waitGone(pid, 10*time.Second) {
		return fmt.Errorf("%s: sdnd (pid %d) survived SIGKILL", ServerName(k), pid)
	}
	return os.Remove(d.pidfile)
}

// StartServer starts server k again (after KillServer) with its recorded
// peer list and waits until it serves.
func (l *Lab) StartServer(ctx context.Context, k int) error {
	if err := l.startServer(k, ""); err != nil {
		return err
	}
	return l.WaitServer(ctx, k)
}

// StartAgents starts an agent-only sdnd on every host, given every server
// (n of them) in order, and waits until each registered its node.
func (l *Lab) StartAgents(ctx context.Context, n int) error {
	var servers []string
	for k := 1; k <= n; k++ {
		servers = append(servers, l.ServerAddr(k))
	}
	if err := l.ensureTLS(n); err != nil {
		return err
	}
	if err := l.eachHost(func(i int) error { return l.startAgent(i, servers) }); err != nil {
		return err
	}
	conn, err := l.DialServer(1)
	if err != nil {
		return err
	}
	defer conn.Close()
	sc := sdnv1.NewConfigServiceClient(conn)
	return poll(ctx, 90*time.Second, "the agents to register", func(ctx context.Context) (bool, error) {
		for i := 1; i <= l.Hosts; i++ {
			if l.sdnd(i).pid() == 0 {
				return false, giveUp{fmt.Errorf("%s's sdnd exited%s", HostName(i), l.sdndHint(i)())}
			}
		}
		r, err := sc.List(ctx, &sdnv1.ListRequest{Kind: "nodes", Stale: true})
		if err != nil {
			return false, err
		}
		seen := 0
		for _, n := range r.GetNodes() {
			if _, err := l.hostIndex(n.GetName()); err == nil {
				seen++
			}
		}
		return seen == l.Hosts, nil
	}, func() string { return "" })
}

// startAgent starts host i's agent-only sdnd, given servers, unless it
// runs.
func (l *Lab) startAgent(i int, servers []string) error {
	d := l.sdnd(i)
	if pid := d.pid(); pid != 0 {
		l.logf("%s: sdnd running (pid %d, kept)", HostName(i), pid)
		return nil
	}
	if err := os.MkdirAll(l.dataDir(i), 0o700); err != nil {
		return err
	}
	args := []string{"--agent", "--servers=" + strings.Join(servers, ","), "--node-name=" + HostName(i),
		"--data-dir=" + l.dataDir(i), "--underlay-iface=ul0", "--ovs-rundir=" + l.ovsDir(i), "--ovs-dbdir=" + l.ovsDir(i),
		"--datapath=netdev", "--cni-socket=" + l.CNISocket(i)}
	args = append(args, l.tlsFlags(pki.RoleAgent, HostName(i))...)
	args = append(args, l.cfg.AgentArgs...)
	pid, err := d.start(l.HostNS(i), l.sdndLog(i), filepath.Join(l.Bin, "sdnd"), args...)
	if err != nil {
		return err
	}
	l.logf("%s: sdnd agent started (pid %d, servers %s)", HostName(i), pid, strings.Join(servers, ","))
	return nil
}

// StartAgent starts host i's agent again (after KillSDND) in a lab with
// separate servers, given every server UpServers started.
func (l *Lab) StartAgent(i int) error {
	n, err := readServerCount(l.Dir)
	if err != nil {
		return fmt.Errorf("%s: how many servers the lab has: %w", HostName(i), err)
	}
	var servers []string
	for k := 1; k <= n; k++ {
		servers = append(servers, l.ServerAddr(k))
	}
	return l.startAgent(i, servers)
}

// serverCountFile is DIR/servers: how many servers UpServers started, so
// Down finds them from another process.
func serverCountFile(dir string) string { return filepath.Join(dir, "servers") }

func writeServerCount(dir string, n int) error {
	if old, err := readServerCount(dir); err == nil && old > n {
		n = old
	}
	return os.WriteFile(serverCountFile(dir), []byte(strconv.Itoa(n)+"\n"), 0o644)
}

func readServerCount(dir string) (int, error) {
	b, err := os.ReadFile(serverCountFile(dir))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// stopServers stops every server UpServers started (SIGTERM, then SIGKILL).
func (l *Lab) stopServers() error {
	n, err := readServerCount(l.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for k := 1; k <= n; k++ {
		if err := l.serverDaemon(k).stop(15 * time.Second); err != nil {
			errs = append(errs, fmt.Errorf("%s: stop sdnd: %w", ServerName(k), err))
		}
	}
	return errors.Join(errs...)
}

// serverNSOfLab reports whether a namespace is one of lab name's servers'
// ("NAME-sK").
func serverNSOfLab(lab, ns string) bool {
	rest, ok := strings.CutPrefix(ns, lab+"-s")
	return ok && isDigits(rest)
}
