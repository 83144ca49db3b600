package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// nodeCommand groups the commands about hosts (nodes): list them, drain
// one before maintenance, remove one for good.
func (a *app) nodeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node list|drain|undrain|remove",
		Short: "List, drain and remove hosts",
		Long: "node works on the hosts that run the agent. A host the leader has not heard from\n" +
			"for the servers' --node-down-after (30s) is marked down; it keeps its subnet and its\n" +
			"workloads' addresses until it comes back, until `node remove`, or until the cluster's\n" +
			"node_release_after (24h) passes. A drained host takes no new workloads.",
		Args: cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			return usagef("node needs a subcommand: list, drain, undrain or remove")
		}),
	}
	cmd.AddCommand(a.nodeListCommand(), a.drainCommand(true), a.drainCommand(false), a.nodeRemoveCommand())
	return cmd
}

func (a *app) nodeListCommand() *cobra.Command {
	var (
		output string
		stale  bool
	)
	cmd := &cobra.Command{
		Use:   "list [-o table|json] [--stale]",
		Short: "List the hosts with their status and last heartbeat (as `get nodes`)",
		Args:  cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := a.callContext(cmd.Context())
			defer cancel()
			resp, err := listAll(ctx, c, &sdnv1.ListRequest{Kind: model.KindNode.Plural(), Stale: stale})
			if err != nil {
				return a.rpcError(ctx, err)
			}
			return a.writeList(model.KindNode, output, resp, stale)
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", formatTable, "output format: table or json")
	cmd.Flags().BoolVar(&stale, "stale", false, "allow a possibly stale read from the server asked (no leader round trip, no heartbeats)")
	return cmd
}

// drainCommand is `node drain HOST` (drain true) or `node undrain HOST`.
func (a *app) drainCommand(drain bool) *cobra.Command {
	use, short, long := "drain HOST", "Refuse new workloads on a host (before maintenance)",
		"drain stops new workloads landing on a host: attaches there (CNI ADD, HCL\n"+
			"workloads) are refused with a message that names the host. Workloads already\n"+
			"there keep running and keep their addresses; move or stop them yourself, then\n"+
			"`sdnctl node undrain HOST` when the maintenance is over."
	if !drain {
		use, short, long = "undrain HOST", "Accept new workloads on a drained host again",
			"undrain lets new workloads land on a drained host again."
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 || args[0] == "" {
				return usagef("%s needs one host name, e.g. `sdnctl node %s host2`", cmdName(drain), cmdName(drain))
			}
			return nil
		},
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			host := args[0]
			c, err := a.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := a.callContext(cmd.Context())
			defer cancel()
			resp, err := c.nodes.Drain(ctx, &sdnv1.DrainNodeRequest{Name: host, Drain: drain})
			if err != nil {
				return a.rpcError(ctx, err)
			}
			switch {
			case drain && resp.GetChanged():
				fmt.Fprintf(a.stdout, "host %s drained (revision %d): new workloads are refused there; workloads already there (%d) keep running\n", host, resp.GetRevision(), resp.GetWorkloads())
			case drain:
				fmt.Fprintf(a.stdout, "host %s was already drained (%s there)\n", host, count(int(resp.GetWorkloads()), "workload"))
			case resp.GetChanged():
				fmt.Fprintf(a.stdout, "host %s undrained (revision %d): it takes new workloads again\n", host, resp.GetRevision())
			default:
				fmt.Fprintf(a.stdout, "host %s was not drained\n", host)
			}
			return nil
		}),
	}
}

func cmdName(drain bool) string {
	if drain {
		return "drain"
	}
	return "undrain"
}

func (a *app) nodeRemoveCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "remove HOST [--force]",
		Short: "Remove a host, releasing its subnet and its workloads' addresses",
		Long: "remove decommissions a host: its subnet is released, the workloads attached there\n" +
			"are removed (their addresses freed), and workloads declared in HCL for it wait\n" +
			"(pending) until a host of that name registers again. A host that is up (not marked\n" +
			"down) is refused unless --force: its workloads may still run, and its agent would\n" +
			"register it again; stop the agent first.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 || args[0] == "" {
				return usagef("remove needs one host name, e.g. `sdnctl node remove host2`")
			}
			return nil
		},
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			host := args[0]
			c, err := a.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := a.callContext(cmd.Context())
			defer cancel()
			resp, err := c.nodes.Remove(ctx, &sdnv1.RemoveNodeRequest{Name: host, Force: force})
			if err != nil {
				return a.rpcError(ctx, err)
			}
			removed, pending := 0, 0
			for _, ch := range resp.GetChanges() {
				switch {
				case model.Kind(ch.GetKind()) != model.KindWorkload:
				case ch.GetOp() == sdnv1.ChangeOp_CHANGE_OP_DELETE:
					removed++
				default:
					pending++
				}
			}
			msg := fmt.Sprintf("removed host %s (revision %d)", host, resp.GetRevision())
			if s := resp.GetSubnet(); s != "" {
				msg += ": subnet " + s + " released"
			}
			msg += fmt.Sprintf(", %s removed", count(removed, "workload"))
			if pending > 0 {
				msg += fmt.Sprintf(", %s declared in HCL pending until it registers again", count(pending, "workload"))
			}
			fmt.Fprintln(a.stdout, msg)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&force, "force", false, "remove the host even though it is up (heartbeating)")
	return cmd
}
