package lab

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sdn-dev/sdn/pki"
)

// Node is how a lab runs one host's sdnd: the netns lab here (sdndArgs) and
// the VM labs inside each VM (vm/provision.sh asks `sdnlab node-args`), so
// both run sdnd with the same flags, files and identities.
type Node struct {
	Index         int    // 1-based; node name HostName(Index)
	Server        bool   // server and agent: host1, or host1..hostN with Config.HostServers N
	Servers       string // an agent's servers ("198.18.x.1:7420,..."); default every server host's
	UnderlayIface string // the underlay interface: ul0 in the netns lab, eth0/eth1 in VMs
	Datapath      string // netdev (netns lab) or system (VMs, OVS's kernel datapath)
	OVSDir        string // OVS_RUNDIR and OVS_DBDIR of a lab-run OVS; "" = the system's
}

// NodeArgs is node n's sdnd command line: server and agent on a server host
// (with its server certificate, listening on its API socket,
// HostAPISocket, and its underlay address), agent elsewhere (with the
// host's agent certificate, given every server); mutual TLS everywhere
// (servers.go); files under HostDir(n.Index). With one server host1
// bootstraps alone (--bootstrap, raft on port 7421); with N, hosts 1..N
// start from one --peers list as UpServers' separate servers do (raft and
// the API share port 7420).
func (l *Lab) NodeArgs(n Node) []string {
	var args []string
	if n.Server {
		args = append(args, l.serverArgs(n.Index)...)
	} else {
		servers := n.Servers
		if servers == "" {
			servers = strings.Join(l.HostServerAddrs(), ",")
		}
		args = append(args, "--agent", "--servers="+servers)
		args = append(args, l.tlsFlags(pki.RoleAgent, HostName(n.Index))...)
	}
	args = append(args,
		"--node-name="+HostName(n.Index),
		"--data-dir="+l.dataDir(n.Index),
		"--underlay-iface="+n.UnderlayIface,
		"--datapath="+n.Datapath,
		"--cni-socket="+l.CNISocket(n.Index),
	)
	if n.OVSDir != "" {
		args = append(args, "--ovs-rundir="+n.OVSDir, "--ovs-dbdir="+n.OVSDir)
	}
	return args
}

// serverArgs are the role and TLS flags of server host i.
func (l *Lab) serverArgs(i int) []string {
	ip := l.HostIP(i).String()
	listen := "--listen=unix:" + l.HostAPISocket(i) + "," + ip + ":7420"
	var args []string
	if l.HostServers() == 1 {
		args = []string{"--server", "--bootstrap", "--agent", listen, "--raft-addr=" + ip + ":7421"}
	} else {
		var peers []string
		for k := 1; k <= l.HostServers(); k++ {
			peers = append(peers, HostName(k)+"="+l.HostIP(k).String()+":7420")
		}
		args = []string{"--server", "--agent", listen, "--peers=" + strings.Join(peers, ",")}
	}
	return append(args, l.tlsFlags(pki.RoleServer, HostName(i))...)
}

// HostServerAddrs are the API addresses of the hosts that are servers.
func (l *Lab) HostServerAddrs() []string {
	var addrs []string
	for k := 1; k <= l.HostServers(); k++ {
		addrs = append(addrs, l.HostIP(k).String()+":7420")
	}
	return addrs
}

// HostAPISocket is server host i's API socket (APISocket for host1).
func (l *Lab) HostAPISocket(i int) string { return filepath.Join(l.HostDir(i), "api.sock") }

// Prepare makes DIR (claimed by its marker), the HCL files to apply and the
// lab's CA and certificates, and nothing else: for a lab whose hosts are not
// namespaces of this machine (the VM labs), which copy DIR/hcl and DIR/tls
// into each host and run NodeArgs there. Its hosts' addresses are HostIP(i);
// cfg.HostServers of them are servers, each with a server certificate for
// its address (DIR/lab.json records how many).
func Prepare(cfg Config) (*Lab, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	l := newLab(cfg)
	if err := l.claimDir(); err != nil {
		return nil, err
	}
	if _, err := l.prepareHCL(); err != nil {
		return nil, err
	}
	return l, l.ensureTLS(0)
}

// OpenNode returns the view of a lab one of its hosts has (the VM labs run
// it inside each VM): files in dir (as Prepare made them, copied in), the
// binaries in bin, hosts in all, of which servers (0: as prepared) are
// servers.
func OpenNode(name, dir, bin string, hosts, servers int) (*Lab, error) {
	cfg := Config{Name: name, Dir: dir, Bin: bin, Hosts: hosts, HostServers: servers}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	l := newLab(cfg)
	return l, l.claimDir()
}

// AttachHost attaches, on host i only, one workload to each network of the
// lab's HCL files as AttachDefaults does (same names, labels and CNI calls),
// keeping those attached already. It does not wait for the other hosts.
func (l *Lab) AttachHost(ctx context.Context, i int) ([]*Workload, error) {
	networks, _, err := l.Networks()
	if err != nil {
		return nil, err
	}
	var ws []*Workload
	for _, n := range slices.Sorted(func(yield func(string) bool) {
		for n := range networks {
			if !yield(n) {
				return
			}
		}
	}) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		w, kept, err := l.attach(HostName(i), n, n, DemoLabels(HostName(i), n), nil)
		if err != nil {
			return nil, err
		}
		verb := "attached"
		if kept {
			verb = "kept"
		}
		l.logf("%s: %s %s: %s in %s (netns %s)", w.Host, verb, w.SDNName(), w.Address, w.Network, w.NS)
		ws = append(ws, w)
	}
	return ws, nil
}

// ParseHost returns i of "hostI", 0 if name is not one.
func ParseHost(name string) int {
	var i int
	if _, err := fmt.Sscanf(name, "host%d", &i); err != nil || HostName(i) != name {
		return 0
	}
	return i
}
