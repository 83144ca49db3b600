package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/sdn-dev/sdn/integration/lab"
)

// nodeMain runs the verbs a lab host runs on itself (vm/provision.sh calls
// them inside each VM of the VM labs):
//
//	sdnlab node-args   --index I [--server] [--server-count N] [--servers ADDR] [--iface eth0] [--datapath system] ...
//	sdnlab node-attach --index I ...
//
// node-args prints host I's sdnd flags on one line (lab.NodeArgs, the flags
// the netns lab runs sdnd with): --server for a server host (I <= N, the
// number of server hosts `sdnlab prepare --servers` made certificates for;
// --server-count, if given, must say the same); node-attach attaches one
// workload per network of DIR/hcl on host I with the CNI plugin
// (lab.AttachHost) and prints them as JSON.
func nodeMain(ctx context.Context, verb string, argv []string) error {
	fs := flag.NewFlagSet("sdnlab "+verb, flag.ExitOnError)
	name := fs.String("name", "vm", "lab name")
	dir := fs.String("dir", "/var/lib/sdn-lab", "the lab's directory on this host (tls/ and hcl/ as lab.Prepare made them)")
	bin := fs.String("bin", "/opt/sdn/bin", "directory with sdnd, sdnctl and sdn")
	hosts := fs.Int("hosts", 2, "number of hosts in the lab")
	var n lab.Node
	fs.IntVar(&n.Index, "index", 0, "this host's index (1 = host1)")
	fs.BoolVar(&n.Server, "server", false, "server and agent (host1..hostN of N server hosts)")
	servers := fs.Int("server-count", 0, "how many hosts are servers, host1..hostN (default: as `sdnlab prepare --servers` recorded in DIR/lab.json)")
	fs.StringVar(&n.Servers, "servers", "", "an agent's servers (default every server host's address:7420)")
	fs.StringVar(&n.UnderlayIface, "iface", "eth0", "the underlay interface")
	fs.StringVar(&n.Datapath, "datapath", "system", "OVS datapath: system or netdev")
	if err := fs.Parse(argv); err != nil || fs.NArg() > 0 || n.Index < 1 || n.Index > *hosts {
		return fmt.Errorf("%s: want --index 1..--hosts (%d)", verb, *hosts)
	}
	l, err := lab.OpenNode(*name, *dir, *bin, *hosts, *servers)
	if err != nil {
		return err
	}
	if n.Server && n.Index > l.HostServers() {
		return fmt.Errorf("%s: --server on host%d, but the lab's servers are host1..host%d", verb, n.Index, l.HostServers())
	}
	switch verb {
	case "node-args":
		fmt.Println(strings.Join(l.NodeArgs(n), " "))
		return nil
	default:
		ws, err := l.AttachHost(ctx, n.Index)
		if err != nil {
			return err
		}
		return json.NewEncoder(os.Stdout).Encode(ws)
	}
}

// prepare makes a VM lab's files on the build host (lab.Prepare: DIR/lab.json,
// DIR/hcl/, DIR/tls/) and prints each host's underlay address, which the
// VMs must have: vm/provision.sh runs in each VM with DIR copied or synced in.
func prepare(argv []string) error {
	fs := flag.NewFlagSet("sdnlab prepare", flag.ExitOnError)
	var cfg lab.Config
	fs.StringVar(&cfg.Name, "name", "vm", "lab name")
	fs.StringVar(&cfg.Dir, "dir", ".vm-lab", "directory for the lab's files")
	fs.IntVar(&cfg.Hosts, "hosts", 2, "number of hosts")
	fs.IntVar(&cfg.HostServers, "servers", 1, "how many hosts are servers too (host1..hostN, a raft cluster of N; 1 or 3)")
	fs.StringVar(&cfg.Isolation, "isolation", "", "override the HCL files' isolation: flat, multitenant or policy")
	fs.StringVar(&cfg.Examples, "f", "", "HCL file or directory to apply (default: the module's examples/)")
	if err := fs.Parse(argv); err != nil || fs.NArg() > 0 {
		return fmt.Errorf("usage: sdnlab prepare [--name vm] [--dir .vm-lab] [--hosts 2] [--servers 1] [--isolation MODE] [-f FILE|DIR]")
	}
	l, err := lab.Prepare(cfg)
	if err != nil {
		return err
	}
	fmt.Printf("lab %s prepared in %s (hcl/, tls/); underlay %s:\n", l.Name, l.Dir, lab.Subnet(l.Name))
	for i := 1; i <= l.Hosts; i++ {
		role := "agent"
		if i <= l.HostServers() {
			role = "server and agent"
		}
		fmt.Printf("  %s %s (%s)\n", lab.HostName(i), l.HostIP(i), role)
	}
	return nil
}
