package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	cniversion "github.com/containernetworking/cni/pkg/version"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// supported are the CNI versions the plugin accepts; results are converted
// to the configuration's version.
var supported = cniversion.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

// stdout and stderr are where results and warnings go (tests replace them).
var stdout, stderr io.Writer = os.Stdout, os.Stderr

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "--version" || os.Args[1] == "-v" || os.Args[1] == "version") {
		printVersion(os.Stdout)
		return
	}
	if os.Getenv("CNI_COMMAND") == "VERSION" {
		// The spec's answer on stdout (skel); the plugin's own version on
		// stderr, where a person running it sees it and no runtime parses.
		fmt.Fprintln(stderr, about())
	}
	skel.PluginMainFuncs(skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck, Status: cmdStatus, GC: cmdGC}, supported, about())
}

// prepare parses what every command needs and connects to the agent.
func prepare(cmd string, a *skel.CmdArgs) (*NetConf, *sdnv1.CNIRequest, *agentClient, error) {
	conf, err := parseConf(a.StdinData)
	if err != nil {
		return nil, nil, nil, err
	}
	args, err := parseArgs(a.Args)
	if err != nil {
		if cmd != "DEL" {
			return nil, nil, nil, err
		}
		// DEL finds the workload by its owner; args that broke ADD must not
		// block its cleanup.
		args = &Args{}
	}
	req, err := request(cmd, a.ContainerID, a.Netns, a.IfName, conf, args)
	if err != nil {
		return nil, nil, nil, err
	}
	if cmd == "ADD" {
		if err := runtimeFields(req, conf); err != nil {
			return nil, nil, nil, err
		}
		for _, d := range args.Dropped {
			fmt.Fprintf(stderr, "sdn: not a label: %s\n", d)
		}
	}
	c, err := dial(cmd, conf.Socket)
	if err != nil {
		return nil, nil, nil, err
	}
	return conf, req, c, nil
}

func cmdAdd(a *skel.CmdArgs) error {
	conf, req, c, err := prepare("ADD", a)
	if err != nil {
		return err
	}
	defer c.Close()
	ns, err := openNetns(req)
	if err != nil {
		return err
	}
	defer ns.Close()
	ctx, cancel := context.WithTimeout(context.Background(), addTimeout)
	defer cancel()
	res, err := c.CNIAdd(ctx, req)
	if err != nil {
		return c.cniError("ADD", err)
	}
	r, err := renderResult(res, conf.CNIVersion)
	if err != nil {
		return err
	}
	return r.PrintTo(stdout)
}

func cmdDel(a *skel.CmdArgs) error {
	_, req, c, err := prepare("DEL", a)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), otherTimeout)
	defer cancel()
	if _, err := c.CNIDel(ctx, req); err != nil {
		return c.cniError("DEL", err)
	}
	return nil
}

func cmdCheck(a *skel.CmdArgs) error {
	_, req, c, err := prepare("CHECK", a)
	if err != nil {
		return err
	}
	defer c.Close()
	ns, err := openNetns(req)
	if err != nil {
		return err
	}
	defer ns.Close()
	ctx, cancel := context.WithTimeout(context.Background(), otherTimeout)
	defer cancel()
	if _, err := c.CNICheck(ctx, req); err != nil {
		return c.cniError("CHECK", err)
	}
	return nil
}

func cmdStatus(a *skel.CmdArgs) error {
	conf, err := parseConf(a.StdinData)
	if err != nil {
		return err
	}
	c, err := dial("STATUS", conf.Socket)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), otherTimeout)
	defer cancel()
	return c.status(ctx)
}

// cmdGC sends the runtime's valid attachments of the config's network to
// the agent, which releases this host's other CNI attachments of that
// network (package comment, "GC").
func cmdGC(a *skel.CmdArgs) error {
	conf, err := parseConf(a.StdinData)
	if err != nil {
		return err
	}
	valid, ok, err := validAttachments(conf)
	if err != nil {
		return err
	}
	if !ok {
		return confError("cni.dev/valid-attachments", "missing: GC without the list of valid attachments would release every attachment; the runtime must send the list (an empty one releases all)")
	}
	if conf.Network == "" {
		fmt.Fprintf(stderr, "sdn: GC: the network config names no \"network\" (its workloads name theirs in CNI_ARGS SDN_NETWORK=), so GC cannot tell which attachments are this config's; nothing released\n")
		return nil
	}
	if err := model.ValidateName(conf.Network); err != nil {
		return confError("network", "%q is not a valid sdn network name: %v", conf.Network, err)
	}
	c, err := dial("GC", conf.Socket)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), gcTimeout)
	defer cancel()
	res, err := c.CNIGC(ctx, &sdnv1.CNIGCRequest{Network: conf.Network, ValidAttachments: valid})
	if err != nil {
		return c.cniError("GC", err)
	}
	if len(res.Released) > 0 {
		fmt.Fprintf(stderr, "sdn: GC released %d stale attachments: %s\n", len(res.Released), strings.Join(res.Released, ", "))
	}
	return nil
}
