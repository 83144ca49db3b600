package main

import (
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// clusterCommand groups the commands about the raft servers (the hosts
// are nodes: `sdnctl get nodes`, `sdnctl delete node`).
func (a *app) clusterCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster members|join|remove|transfer-leader",
		Short: "Show and change the raft servers",
		Long: "cluster shows and changes the sdnd servers that hold the desired state in raft\n" +
			"(3 or 5 of them). Hosts running the agent are nodes, not members: see `sdnctl get nodes`.\n" +
			"Any server answers; changes are made by the leader.",
		Args: cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			return usagef("cluster needs a subcommand: members, join, remove or transfer-leader")
		}),
	}
	cmd.AddCommand(a.membersCommand(), a.joinCommand(), a.removeServerCommand(), a.transferLeaderCommand())
	return cmd
}

func (a *app) membersCommand() *cobra.Command {
	var (
		output string
		stale  bool
	)
	cmd := &cobra.Command{
		Use:   "members [-o table|json] [--stale]",
		Short: "List the raft servers: leader, state, indexes, health",
		Long: "members lists the raft servers as the leader knows them, each with what it reports\n" +
			"itself (state, term, last log index, applied index); a server that does not answer\n" +
			"is listed as unreachable. With --stale the server asked answers from its own\n" +
			"configuration, which works without a leader (e.g. to see why there is none).",
		Args: cobra.NoArgs,
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
			resp, err := c.cluster.Members(ctx, &sdnv1.MembersRequest{Stale: stale})
			if err != nil {
				return a.rpcError(ctx, err)
			}
			sort.Slice(resp.Servers, func(i, j int) bool { return resp.Servers[i].GetId() < resp.Servers[j].GetId() })
			if output == formatJSON {
				b, err := marshalJSON(resp)
				if err != nil {
					return fmt.Errorf("render members as JSON: %w", err)
				}
				_, err = a.stdout.Write(b)
				return err
			}
			return writeMembers(a.stdout, resp, a.now())
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", formatTable, "output format: table or json")
	cmd.Flags().BoolVar(&stale, "stale", false, "answer from the asked server's own raft configuration (no leader needed)")
	return cmd
}

// writeMembers prints one row per server. LAG is how many log entries a
// server has applied fewer than the leader's last index; STATE-CHECK is
// the server in the leader's latest comparison of the servers' states
// (and its revision), with what to do below when one differs.
func writeMembers(w io.Writer, resp *sdnv1.MembersResponse, now time.Time) error {
	var leaderLast uint64
	for _, s := range resp.GetServers() {
		if s.GetLeader() {
			leaderLast = s.GetLastIndex()
		}
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tADDRESS\tROLE\tSTATE\tTERM\tLAST-INDEX\tAPPLIED\tLAG\tLAST-CONTACT\tSTATE-CHECK\tERROR")
	for _, s := range resp.GetServers() {
		role := "voter"
		if !s.GetVoter() {
			role = "nonvoter"
		}
		if s.GetLeader() {
			role = "leader"
		}
		state, term, last, applied, lag, contact := s.GetState(), "-", "-", "-", "-", "-"
		if state != "unreachable" {
			term, last, applied = fmt.Sprint(s.GetTerm()), fmt.Sprint(s.GetLastIndex()), fmt.Sprint(s.GetAppliedIndex())
			if leaderLast > 0 {
				lag = "0"
				if s.GetAppliedIndex() < leaderLast {
					lag = fmt.Sprint(leaderLast - s.GetAppliedIndex())
				}
			}
			if ms := s.GetLastContactUnixMs(); ms != 0 {
				contact = formatAgo(ms, now)
			}
		}
		errs := []string{}
		if e := s.GetError(); e != "" {
			errs = append(errs, e)
		}
		for _, al := range s.GetDiskAlarms() {
			errs = append(errs, "disk alarm: "+al.GetProblem())
		}
		check := stateCheckWord(s.GetStateCheck().GetResult())
		if s.GetStateCheck() != nil && s.GetStateCheck().GetResult() != sdnv1.StateCheckResult_STATE_CHECK_RESULT_UNSPECIFIED {
			check += fmt.Sprintf(" @%d", s.GetStateCheck().GetRevision())
		}
		row(tw, s.GetId(), s.GetAddress(), role, state, term, last, applied, lag, contact, check, strings.Join(errs, "; "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if advice := resp.GetStateCheckAdvice(); advice != "" {
		fmt.Fprintf(w, "STATE CHECK FAILED: the servers do not all hold the same state (see STATE-CHECK); what to do: %s\n", advice)
	}
	if resp.GetLeaderId() == "" {
		fmt.Fprintln(w, "no leader: fewer than a quorum of voters are reachable, or an election is in progress")
	}
	return nil
}

func (a *app) joinCommand() *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "join ADDRESS [--id ID]",
		Short: "Add a running server with no raft state as a voter",
		Long: "join adds the sdnd server at ADDRESS (its host:port cluster address) to the cluster\n" +
			"as a voter. Start it first with `sdnd --server` and an empty --data-dir; the\n" +
			"cluster asks it for its id (--id checks it) and refuses a server that holds raft\n" +
			"state of its own. Joining a server that is a member already changes nothing.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("join needs the new server's address, e.g. `sdnctl cluster join 10.0.0.4:7420`")
			}
			if _, _, err := net.SplitHostPort(args[0]); err != nil {
				return usagef("join address %q: want host:port: %v", args[0], err)
			}
			return nil
		},
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := a.callContext(cmd.Context())
			defer cancel()
			resp, err := c.cluster.Join(ctx, &sdnv1.JoinRequest{Address: args[0], Id: id})
			if err != nil {
				return a.rpcError(ctx, err)
			}
			if !resp.GetAdded() {
				fmt.Fprintf(a.stdout, "%s at %s is a voter already; nothing changed\n", resp.GetId(), resp.GetAddress())
				return nil
			}
			fmt.Fprintf(a.stdout, "added %s at %s as a voter\n", resp.GetId(), resp.GetAddress())
			return nil
		}),
	}
	cmd.Flags().StringVar(&id, "id", "", "the id (--node-name) the new server must have")
	return cmd
}

func (a *app) removeServerCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a server from the raft configuration",
		Long: "remove takes the server ID out of the raft configuration (the leader may remove\n" +
			"itself; another server then leads). Removing a server that is down is how a dead\n" +
			"server's place is freed; the last voter cannot be removed. Stop the removed\n" +
			"server's sdnd and empty its --data-dir before it is used again.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("remove needs a server id, e.g. `sdnctl cluster remove s3` (see `sdnctl cluster members`)")
			}
			return nil
		},
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := a.callContext(cmd.Context())
			defer cancel()
			if _, err := c.cluster.RemoveServer(ctx, &sdnv1.RemoveServerRequest{Id: args[0]}); err != nil {
				return a.rpcError(ctx, err)
			}
			fmt.Fprintf(a.stdout, "removed %s\n", args[0])
			return nil
		}),
	}
}

func (a *app) transferLeaderCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "transfer-leader [ID]",
		Short: "Hand raft leadership to another voter",
		Long: "transfer-leader makes the voter ID the leader (any other voter when ID is omitted),\n" +
			"e.g. before restarting the leader's machine.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("transfer-leader takes at most one server id")
			}
			return nil
		},
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := a.callContext(cmd.Context())
			defer cancel()
			resp, err := c.cluster.TransferLeader(ctx, &sdnv1.TransferLeaderRequest{Id: id})
			if err != nil {
				return a.rpcError(ctx, err)
			}
			fmt.Fprintf(a.stdout, "%s leads now\n", resp.GetLeaderId())
			return nil
		}),
	}
}
