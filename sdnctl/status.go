package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/spf13/cobra"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func (a *app) statusCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status [-o table|json]",
		Short: "Show the desired revision and what each host realized",
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
			resp, err := c.status.Status(ctx, &sdnv1.StatusRequest{})
			if err != nil {
				// A server's disk alarm is often why: show them
				// with the error.
				if output != formatJSON {
					writeDiskAlarms(a.stdout, serverAlarms(ctx, c), a.now())
				}
				return a.rpcError(ctx, err)
			}
			if output == formatJSON {
				sortNodeStatus(resp.Nodes)
				b, err := marshalJSON(resp)
				if err != nil {
					return fmt.Errorf("render status as JSON: %w", err)
				}
				_, err = a.stdout.Write(b)
				return err
			}
			if err := writeStatus(a.stdout, resp, a.now()); err != nil {
				return err
			}
			return writeDiskAlarms(a.stdout, serverAlarms(ctx, c), a.now())
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", formatTable, "output format: table or json")
	return cmd
}

func sortNodeStatus(nodes []*sdnv1.NodeStatus) {
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].GetName() < nodes[j].GetName() })
}

// writeStatus prints the cluster's id, the desired revision and a table
// of hosts; LAG is how
// many revisions a host is behind, LAST-REPORT how long ago it reported
// and HEARTBEAT how long ago the leader last heard from it (relative to
// now); STATE is ready, drained or down (for how long).
func writeStatus(w io.Writer, resp *sdnv1.StatusResponse, now time.Time) error {
	if id := resp.GetClusterId(); id != "" {
		fmt.Fprintf(w, "cluster %s\n", id)
	}
	fmt.Fprintf(w, "revision %d (watch history from %d)\n", resp.GetRevision(), resp.GetCompactedRevision())
	nodes := append([]*sdnv1.NodeStatus(nil), resp.GetNodes()...)
	sortNodeStatus(nodes)
	tw := newTable(w)
	fmt.Fprintln(tw, "NODE\tSTATE\tREALIZED\tLAG\tLAST-REPORT\tHEARTBEAT\tERROR")
	for _, n := range nodes {
		lag := uint64(0)
		if r := n.GetRealizedRevision(); r < resp.GetRevision() {
			lag = resp.GetRevision() - r
		}
		state := formatNodeState(n.GetState())
		if n.GetDownSinceUnixMs() != 0 || n.GetDrained() {
			state = formatNodeStatus(n.GetDownSinceUnixMs(), n.GetDrained(), now)
		}
		row(tw, n.GetName(), state, fmt.Sprint(n.GetRealizedRevision()),
			fmt.Sprint(lag), formatAgo(n.GetLastReportUnixMs(), now), formatAgo(n.GetLastHeartbeatUnixMs(), now), n.GetError())
	}
	return tw.Flush()
}

// formatAgo renders a Unix-milliseconds time as "12s ago", "never" for 0.
func formatAgo(unixMs int64, now time.Time) string {
	if unixMs == 0 {
		return "never"
	}
	d := now.Sub(time.UnixMilli(unixMs))
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds ago", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

// serverAlarms asks the server for every server's disk alarms (its own
// raft configuration, so it works without a leader); nil when it cannot
// tell.
func serverAlarms(ctx context.Context, c *client) []*sdnv1.Server {
	m, err := c.cluster.Members(ctx, &sdnv1.MembersRequest{Stale: true})
	if err != nil {
		return nil
	}
	var out []*sdnv1.Server
	for _, s := range m.GetServers() {
		if len(s.GetDiskAlarms()) > 0 {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetId() < out[j].GetId() })
	return out
}

// writeDiskAlarms prints one row per disk alarm of a server (nothing when
// there is none): a server with one refuses writes until it clears.
func writeDiskAlarms(w io.Writer, servers []*sdnv1.Server, now time.Time) error {
	if len(servers) == 0 {
		return nil
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "SERVER\tDISK-ALARM\tSINCE")
	for _, s := range servers {
		for _, al := range s.GetDiskAlarms() {
			row(tw, s.GetId(), al.GetProblem(), formatAgo(al.GetSinceUnixMs(), now))
		}
	}
	return tw.Flush()
}
