package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// defaultAgentSocket is where the host's agent serves the CNI plugin and
// sdnctl attach (node/cnisrv.DefaultSocket; sdnd --cni-socket).
const defaultAgentSocket = "/run/sdn/cni.sock"

// attachIDPrefix starts the container id of every `sdnctl attach`: the
// attachment's owner is "attach-<inode of the network namespace>".
const attachIDPrefix = model.AttachOwnerPrefix

// nsTarget is the namespace of a plain process, by --netns or --pid.
type nsTarget struct {
	netns  string
	pid    int
	ifname string
	socket string
}

func (t *nsTarget) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&t.netns, "netns", "", "the network namespace's path (e.g. /run/netns/NAME)")
	cmd.Flags().IntVar(&t.pid, "pid", 0, "a process whose network namespace it is (/proc/PID/ns/net)")
	cmd.Flags().StringVar(&t.ifname, "ifname", "eth0", "the interface made inside the namespace")
	cmd.Flags().StringVar(&t.socket, "socket", defaultAgentSocket, "the host agent's unix socket (sdnd --cni-socket)")
}

// path returns the namespace's path, checking that exactly one way was given.
func (t *nsTarget) path() (string, error) {
	switch {
	case t.netns != "" && t.pid != 0:
		return "", usagef("give --netns or --pid, not both")
	case t.pid < 0:
		return "", usagef("--pid %d: want a process id", t.pid)
	case t.pid != 0:
		return "/proc/" + strconv.Itoa(t.pid) + "/ns/net", nil
	case t.netns != "":
		return t.netns, nil
	}
	return "", usagef("give the namespace: --netns PATH or --pid PID")
}

// open opens the namespace and returns it with its owner id
// ("attach-<inode>").
func (t *nsTarget) open() (f *os.File, path, containerID string, err error) {
	if path, err = t.path(); err != nil {
		return nil, "", "", err
	}
	f, err = os.Open(path)
	if err != nil {
		return nil, "", "", fmt.Errorf("open network namespace %s: %w", path, err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, "", "", fmt.Errorf("stat network namespace %s: %w", path, err)
	}
	return f, path, attachIDPrefix + strconv.FormatUint(st.Ino, 10), nil
}

// dialAgent connects to the host agent's unix socket (root only).
func dialAgent(socket string) (sdnv1.AgentServiceClient, func(), error) {
	if _, err := os.Stat(socket); err != nil {
		return nil, nil, fmt.Errorf("the host's agent socket %s: %w (is sdnd running on this host? --socket names its --cni-socket)", socket, err)
	}
	conn, err := grpc.NewClient("unix:"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, fmt.Errorf("the host's agent socket %s: %w", socket, err)
	}
	return sdnv1.NewAgentServiceClient(conn), func() { conn.Close() }, nil
}

func (a *app) attachCommand() *cobra.Command {
	var (
		t             nsTarget
		network, name string
		ip            string
		labels        []string
	)
	cmd := &cobra.Command{
		Use:   "attach (--netns PATH | --pid PID) --network N [--name NAME] [--label k=v ...] [--ip A]",
		Short: "Attach a plain process's network namespace to a network (run on its host)",
		Long: "attach gives a network namespace an interface (--ifname, eth0) on an sdn network, as the CNI\n" +
			"plugin does for a container: it asks this host's agent over its unix socket (--socket), so it\n" +
			"runs as root on the namespace's host. The attachment's owner (its CNI container id) is\n" +
			"\"attach-<inode of the namespace>\", so attaching the same namespace again changes nothing and\n" +
			"`sdnctl detach --netns`/--pid finds it. The name defaults to \"ns<inode>\", made unique per\n" +
			"network by the agent's \"-<host>\" suffix (docs/runtimes.md, \"Names\"). The attachment is the\n" +
			"servers' and the interface the kernel's: both survive an sdnd restart. When the namespace is\n" +
			"destroyed without a detach, the host's leak loop releases the attachment within its period.",
		Args: cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			if network == "" {
				return usagef("attach needs --network")
			}
			lbls, err := parseLabelFlags(labels)
			if err != nil {
				return err
			}
			f, path, id, err := t.open()
			if err != nil {
				return err
			}
			defer f.Close()
			req := &sdnv1.CNIRequest{ContainerId: id, Netns: path, NetnsFd: int32(f.Fd()), Ifname: t.ifname,
				Network: network, Name: name, Labels: lbls, Ip: ip}
			if req.Name == "" {
				req.Name, req.NamePerHost = "ns"+strings.TrimPrefix(id, attachIDPrefix), true
			}
			agent, done, err := dialAgent(t.socket)
			if err != nil {
				return err
			}
			defer done()
			ctx, cancel := context.WithTimeout(cmd.Context(), max(a.timeout, defaultAttachTimeout))
			defer cancel()
			res, err := agent.CNIAdd(ctx, req)
			if err != nil {
				return fmt.Errorf("attach %s to network %s: %w", path, network, err)
			}
			w := res.GetWorkload()
			fmt.Fprintf(a.stdout, "attached %s/%s on %s: %s %s (mac %s, gateway %s; owner %s)\n",
				w.GetNetwork(), w.GetName(), w.GetNode(), res.GetSandboxIfname(), res.GetAddress(), res.GetMac(), res.GetGateway(), id)
			return nil
		}),
	}
	t.flags(cmd)
	cmd.Flags().StringVar(&network, "network", "", "the sdn network to join")
	cmd.Flags().StringVar(&name, "name", "", "the workload's name in the network (default ns<inode>-<host>)")
	cmd.Flags().StringVar(&ip, "ip", "", "a requested address in this host's block (default: the next free)")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "a label k=v (repeat for more)")
	return cmd
}

// defaultAttachTimeout is attach's and detach's least time: the agent's ADD
// waits up to 20 s for the datapath.
const defaultAttachTimeout = 30 * time.Second

func (a *app) detachCommand() *cobra.Command {
	var t nsTarget
	cmd := &cobra.Command{
		Use:   "detach (--netns PATH | --pid PID | NETWORK/NAME)",
		Short: "Detach a namespace (or a workload by name) from its network",
		Long: "detach undoes `sdnctl attach`: with --netns or --pid it asks this host's agent (--socket) to\n" +
			"detach the owner \"attach-<inode>\" and delete its interface. With NETWORK/NAME it detaches that\n" +
			"workload: through this host's agent when the workload has an owner and the socket is here\n" +
			"(interface deleted too), else on the servers (its host's leak loop then removes the interface).\n" +
			"Detaching what is not attached succeeds and says so.",
		Args: cobra.MaximumNArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if t.netns != "" || t.pid != 0 {
					return usagef("give NETWORK/NAME or --netns/--pid, not both")
				}
				return a.detachByName(cmd.Context(), args[0], t)
			}
			f, path, id, err := t.open()
			if err != nil {
				return err
			}
			f.Close()
			return a.detachOwner(cmd.Context(), t, id, path)
		}),
	}
	t.flags(cmd)
	return cmd
}

// detachOwner runs DEL for an owner through the host's agent.
func (a *app) detachOwner(ctx context.Context, t nsTarget, containerID, what string) error {
	agent, done, err := dialAgent(t.socket)
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, max(a.timeout, defaultAttachTimeout))
	defer cancel()
	res, err := agent.CNIDel(ctx, &sdnv1.CNIRequest{ContainerId: containerID, Ifname: t.ifname})
	if err != nil {
		return fmt.Errorf("detach %s (owner %s): %w", what, containerID, err)
	}
	if !res.GetRemoved() {
		fmt.Fprintf(a.stdout, "%s (owner %s) was not attached\n", what, containerID)
		return nil
	}
	fmt.Fprintf(a.stdout, "detached %s (owner %s)\n", what, containerID)
	return nil
}

// detachByName detaches NETWORK/NAME: by its owner through the local agent
// when possible, else on the servers.
func (a *app) detachByName(ctx context.Context, key string, t nsTarget) error {
	network, name, ok := strings.Cut(key, "/")
	if !ok || network == "" || name == "" {
		return usagef("detach %q: want NETWORK/NAME", key)
	}
	c, err := a.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	lctx, cancel := a.callContext(ctx)
	defer cancel()
	resp, err := listAll(lctx, c, &sdnv1.ListRequest{Kind: model.KindWorkload.Plural(), Network: network})
	if err != nil {
		return a.rpcError(lctx, err)
	}
	var w *sdnv1.Workload
	for _, x := range resp.GetWorkloads() {
		if x.GetName() == name {
			w = x
		}
	}
	if w == nil {
		fmt.Fprintf(a.stdout, "%s was not attached\n", key)
		return nil
	}
	if o := w.GetOrigin(); o.GetContainerId() != "" {
		if _, err := os.Stat(t.socket); err == nil {
			t.ifname = o.GetIfname()
			return a.detachOwner(ctx, t, o.GetContainerId(), key)
		}
	}
	dctx, cancel := a.callContext(ctx)
	defer cancel()
	det, err := sdnv1.NewWorkloadServiceClient(c.conn).Detach(dctx, &sdnv1.DetachWorkloadRequest{Network: network, Name: name})
	if err != nil {
		return a.rpcError(dctx, err)
	}
	fmt.Fprintf(a.stdout, "detached %s on the servers (removed: %v, revision %d); host %s's leak loop removes its interface\n",
		key, det.GetRemoved(), det.GetRevision(), w.GetNode())
	return nil
}

// parseLabelFlags turns repeated k=v into a map.
func parseLabelFlags(args []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range args {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("--label %q: want key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}
