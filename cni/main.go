// Command sdn is the sdn CNI plugin (build it as "sdn" into the runtime's
// CNI_PATH). It is a shim (CONTRIBUTING.md, Shape): it parses the network
// configuration and CNI_ARGS, asks the sdnd agent on this host over its
// root-only unix socket to do the work (AgentService: CNIAdd, CNIDel,
// CNICheck), and prints the result. Everything that changes the host or the
// cluster happens in the agent, which serializes operations per container.
//
// Network configuration (CNI spec 1.0.0; 0.3.0 to 1.1.0 accepted):
//
//	{"cniVersion":"1.0.0","name":"sdn-proj1","type":"sdn",
//	 "network":"proj1",              // the sdn network; or CNI_ARGS SDN_NETWORK=
//	 "named_ports":{"http":"tcp/8080","dns":"udp/53"},  // optional ("8080" is tcp)
//	 "socket":"/run/sdn/cni.sock"}   // optional, this is the default
//
// CNI_ARGS (KEY=VALUE;...):
//
//	SDN_NETWORK=proj1     the network, overriding the config's
//	SDN_NAME=web1         the workload's name in its network
//	IP=10.128.0.9         a requested address (must be in this host's block)
//	SDN_NAMED_PORTS=http:tcp/8080,dns:udp/53
//	                      the workload's named ports, replacing the config's
//	K8S_POD_NAMESPACE, K8S_POD_NAME
//	                      labels k8s.namespace, k8s.pod; name "<ns>-<pod>"
//	NOMAD_ALLOC_ID, NOMAD_JOB_NAME (or NOMAD_JOB_ID), NOMAD_GROUP_NAME,
//	NOMAD_TASK_NAME, NOMAD_NAMESPACE, NOMAD_REGION
//	                      labels nomad.alloc-id, nomad.job, nomad.group, ...
//	key=value             any other pair with a valid label key and value
//	                      is a label (e.g. app=web, team.example.com/tier=db)
//	IgnoreUnknown=1       skip pairs that are not valid labels instead of
//	                      failing (other K8S_* and NOMAD_* keys are always
//	                      skipped)
//
// The workload's name is SDN_NAME, else "<namespace>-<pod>" (just the pod
// name when both are equal, as with Podman), else the first 12 characters
// of the container id, made a valid DNS label ("w-" in front when it does
// not start with a letter).
//
// DEL is idempotent: it succeeds when nothing was attached. When the agent
// is unreachable, DEL fails ("try again later", code 11) rather than
// pretending: the workload's address and its veth are only released by the
// agent, and runtimes retry a failed DEL, whereas a DEL reported as done is
// never repeated and would leak both. GC (CNI 1.1) is accepted and does
// nothing yet; STATUS asks the agent's gRPC health.
//
// # Error codes
//
// The CNI spec's: 4 for CNI_ARGS that do not parse; 7 for a network
// configuration that does not, or a request the agent or the servers
// refused (an unknown network, a bad name); 11, "try again later", when the
// agent is not running or not answering (no socket, nobody accepting on
// it, no answer in time) or the servers are out of reach, and for STATUS
// 50, "not available", in the same cases; 5, "I/O failure", when the
// socket refuses the caller or cannot be a socket, which no retry fixes:
// above all permission denied, as the socket is root-only and the runtime
// must run the plugin as root; 999 for anything else (among them an
// exhausted address pool).
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// supported are the CNI versions the plugin accepts; results are converted
// to the configuration's version.
var supported = version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

// stdout and stderr are where results and warnings go (tests replace them).
var stdout, stderr io.Writer = os.Stdout, os.Stderr

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck, Status: cmdStatus},
		supported, "CNI plugin sdn: attaches workloads to sdn networks through the local sdnd agent")
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
	return c.health(ctx)
}
