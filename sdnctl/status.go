package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func (a *app) statusCommand() *cobra.Command {
	var (
		output     string
		checkState bool
	)
	cmd := &cobra.Command{
		Use:   "status [-o table|json] [--check-state]",
		Short: "Show the desired revision, what each host realized, and whether the servers' states agree",
		Long: "status shows the desired revision and, per host, what it realized and when it was last heard from.\n" +
			"It also shows the leader's latest comparison of the servers' states (each hashes its whole state at\n" +
			"the leader's revision; the leader compares every --state-check-interval, 5m by default): a server whose\n" +
			"state differs is named, with what to do. --check-state compares now.",
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
			resp, err := c.status.Status(ctx, &sdnv1.StatusRequest{CheckState: checkState})
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
	cmd.Flags().BoolVar(&checkState, "check-state", false, "compare every server's state with the leader's now (each hashes its whole state)")
	return cmd
}

func sortNodeStatus(nodes []*sdnv1.NodeStatus) {
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].GetName() < nodes[j].GetName() })
}

// writeStatus prints the cluster's id, the desired revision, the latest
// comparison of the servers' states (writeStateCheck) and a table of
// hosts; LAG is how many revisions a host is behind (0 when it realized
// every revision that concerns it: a host hears only of those, so
// REALIZED may stay below the cluster's revision), LAST-REPORT how long ago it reported
// and HEARTBEAT how long ago the leader last heard from it (relative to
// now); STATE is ready, drained or down (for how long).
func writeStatus(w io.Writer, resp *sdnv1.StatusResponse, now time.Time) error {
	if id := resp.GetClusterId(); id != "" {
		fmt.Fprintf(w, "cluster %s\n", id)
	}
	fmt.Fprintf(w, "revision %d (watch history from %d)\n", resp.GetRevision(), resp.GetCompactedRevision())
	writeStateCheck(w, resp.GetStateCheck(), now)
	nodes := append([]*sdnv1.NodeStatus(nil), resp.GetNodes()...)
	sortNodeStatus(nodes)
	tw := newTable(w)
	fmt.Fprintln(tw, "NODE\tSTATE\tREALIZED\tLAG\tLAST-REPORT\tHEARTBEAT\tERROR")
	for _, n := range nodes {
		lag := uint64(0)
		if r := n.GetRealizedRevision(); r < resp.GetRevision() && !n.GetCurrent() {
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

// writeStateCheck prints the leader's latest comparison of the servers'
// states: one line when they agree, a block naming each server and what to
// do when one differs; nothing before the first comparison.
func writeStateCheck(w io.Writer, rep *sdnv1.StateCheckReport, now time.Time) {
	if rep == nil {
		return
	}
	when := fmt.Sprintf("%s at revision %d (raft index %d)", formatAgo(rep.GetCheckedUnixMs(), now), rep.GetRevision(), rep.GetAppliedIndex())
	agree, total := 1, 1+len(rep.GetServers())
	var notCompared []string
	for _, sc := range rep.GetServers() {
		switch sc.GetResult() {
		case sdnv1.StateCheckResult_STATE_CHECK_RESULT_AGREES:
			agree++
		case sdnv1.StateCheckResult_STATE_CHECK_RESULT_NOT_COMPARED:
			notCompared = append(notCompared, fmt.Sprintf("%s (%s)", sc.GetId(), sc.GetDetail()))
		}
	}
	if rep.GetAdvice() == "" {
		line := fmt.Sprintf("state check %s: %d of %d servers agree (hash %s, %d records)", when, agree, total, shortHex(rep.GetLeaderHash()), rep.GetRecords())
		if agree == total {
			line = fmt.Sprintf("state check %s: all %d servers agree (hash %s, %d records)", when, total, shortHex(rep.GetLeaderHash()), rep.GetRecords())
		}
		if len(notCompared) > 0 {
			line += "; not compared: " + strings.Join(notCompared, "; ")
		}
		fmt.Fprintln(w, line)
		return
	}
	fmt.Fprintf(w, "STATE CHECK FAILED %s: the servers do not all hold the same state\n", when)
	tw := newTable(w)
	fmt.Fprintln(tw, "  SERVER\tSTATE\tHASH\tDETAIL")
	row(tw, "  "+rep.GetLeaderId(), "leader", shortHex(rep.GetLeaderHash()), "")
	for _, sc := range rep.GetServers() {
		row(tw, "  "+sc.GetId(), stateCheckWord(sc.GetResult()), shortHex(sc.GetHash()), sc.GetDetail())
	}
	tw.Flush()
	fmt.Fprintf(w, "  what to do: %s\n", rep.GetAdvice())
}

// stateCheckWord is a server's result in a comparison, for tables.
func stateCheckWord(r sdnv1.StateCheckResult) string {
	switch r {
	case sdnv1.StateCheckResult_STATE_CHECK_RESULT_AGREES:
		return "agrees"
	case sdnv1.StateCheckResult_STATE_CHECK_RESULT_DIFFERS:
		return "DIFFERS"
	case sdnv1.StateCheckResult_STATE_CHECK_RESULT_NOT_COMPARED:
		return "not compared"
	}
	return "-"
}

// shortHex is the start of a hash, enough to tell two apart.
func shortHex(b []byte) string {
	s := hex.EncodeToString(b)
	if len(s) > 16 {
		s = s[:16]
	}
	return s
}
