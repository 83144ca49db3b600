// Command cnidrive runs one batch of CNI ADDs as the cniadd suite does
// (package bench/cnidrive) and prints its Result as one line of JSON: the
// cniaddvm suite copies it into a VM and runs it there over SSH, so that
// the timing is the VM's and not SSH's.
//
//	cnidrive -driver sdn -plugin /opt/sdn/bin/sdn -network N -socket S -prefix s -first 1 -n 40 -c 1 -del
//	cnidrive -driver bridge -plugin-dir /opt/cni -host-ns cnibr -data-dir D -prefix b -first 1 -n 250 -c 10
//
// Each container gets a fresh namespace NSPREFIX+ID (ID = PREFIX and its
// number, 5 digits), made before the clock starts. With -del the
// containers are DELeted afterwards (not timed, 10 at a time) and their
// namespaces removed; without, they stay (the host's load). The bridge
// driver's host namespace -host-ns is made when missing and kept. The
// exit status is 1 on any failure, the error on stderr.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/sdn-dev/sdn/bench/cnidrive"
	"github.com/sdn-dev/sdn/datapath/link"
)

func main() {
	driver := flag.String("driver", "", "sdn or bridge")
	plugin := flag.String("plugin", "/opt/sdn/bin/sdn", "sdn: the plugin binary (its directory is CNI_PATH)")
	network := flag.String("network", "", "sdn: the network")
	socket := flag.String("socket", "", "sdn: the agent's CNI socket")
	pluginDir := flag.String("plugin-dir", "/usr/lib/cni", "bridge: the directory of bridge and host-local")
	hostNS := flag.String("host-ns", "cnibr", "bridge: the namespace (name) the plugin runs in, made when missing")
	dataDir := flag.String("data-dir", "/var/lib/cnidrive/host-local", "bridge: host-local's leases")
	nsPrefix := flag.String("ns-prefix", "cni-", "the containers' namespaces are NSPREFIX+ID")
	prefix := flag.String("prefix", "c", "container ids are PREFIX and their number")
	first := flag.Int("first", 1, "the first container's number")
	n := flag.Int("n", 1, "how many containers")
	conc := flag.Int("c", 1, "ADDs at a time")
	del := flag.Bool("del", false, "DEL the containers afterwards (not timed) and remove their namespaces")
	flag.Parse()
	r, err := run(*driver, *plugin, *network, *socket, *pluginDir, *hostNS, *dataDir, *nsPrefix, *prefix, *first, *n, *conc, *del)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cnidrive:", err)
		os.Exit(1)
	}
	b, err := json.Marshal(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cnidrive:", err)
		os.Exit(1)
	}
	fmt.Println(string(b))
}

func run(driver, plugin, network, socket, pluginDir, hostNS, dataDir, nsPrefix, prefix string, first, n, conc int, del bool) (cnidrive.Result, error) {
	var d *cnidrive.Driver
	switch driver {
	case "sdn":
		var err error
		if d, err = cnidrive.SDN(nsPrefix, plugin, network, socket); err != nil {
			return cnidrive.Result{}, err
		}
	case "bridge":
		if _, err := os.Stat(link.NSPath(hostNS)); err != nil {
			if _, err := link.NewNS(hostNS); err != nil {
				return cnidrive.Result{}, err
			}
		}
		d = cnidrive.Bridge(nsPrefix, pluginDir, link.NSPath(hostNS), dataDir)
	default:
		return cnidrive.Result{}, fmt.Errorf("-driver %q: want sdn or bridge", driver)
	}
	if n < 1 || conc < 1 {
		return cnidrive.Result{}, fmt.Errorf("-n %d -c %d: both must be at least 1", n, conc)
	}
	ctx := context.Background()
	ids := cnidrive.IDs(prefix, first, n)
	r, err := d.AddAll(ctx, ids, conc)
	if del {
		if derr := d.DelAll(ctx, ids, 10); err == nil && derr != nil {
			err = derr
		}
	}
	return r, err
}
