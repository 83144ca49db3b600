package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func (a *app) ipamReleaseCommand() *cobra.Command {
	var dry, includeDown bool
	cmd := &cobra.Command{
		Use:   "release [--dry-run] [--include-down]",
		Short: "Release what ipam check finds, printing each action",
		Long: "release fixes what `ipam check` finds: of two workloads holding one address it detaches the\n" +
			"newer (the older held it first); it detaches the workloads of hosts gone from the cluster\n" +
			"(and, with --include-down, of hosts down: they may come back, so not by default); and it asks\n" +
			"every host's agent to release its gone attachments and remove its leftovers now, as its leak\n" +
			"loop would (leftovers in their grace period stay). --dry-run prints what it would do.",
		Args: cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			st, err := a.ipamCheck(cmd.Context())
			if err != nil {
				return err
			}
			failed := a.ipamRelease(cmd.Context(), st, dry, includeDown)
			if failed > 0 {
				return &exitError{code: 1, msg: fmt.Sprintf("ipam release: %d actions failed (see above)", failed)}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&dry, "dry-run", false, "print what would be done, do nothing")
	cmd.Flags().BoolVar(&includeDown, "include-down", false, "also detach the workloads of hosts that are down")
	return cmd
}

// ipamRelease acts on st and returns how many actions failed.
func (a *app) ipamRelease(ctx context.Context, st *ipamState, dry, includeDown bool) int {
	var detach []*sdnv1.Workload
	why := map[*sdnv1.Workload]string{}
	for _, ip := range sortedKeysOf(st.twice) {
		holders := slices.Clone(st.twice[ip])
		slices.SortFunc(holders, func(x, y *sdnv1.Workload) int { return cmp.Compare(x.GetCreateRevision(), y.GetCreateRevision()) })
		for _, w := range holders[1:] {
			detach, why[w] = append(detach, w), fmt.Sprintf("holds %s, which %s/%s held first", ip, holders[0].GetNetwork(), holders[0].GetName())
		}
	}
	for _, w := range st.hostGone {
		detach, why[w] = append(detach, w), "its host "+w.GetNode()+" is gone from the cluster"
	}
	if includeDown {
		for _, w := range st.hostDown {
			detach, why[w] = append(detach, w), "its host "+w.GetNode()+" is down"
		}
	}
	failed := a.detachAll(ctx, detach, why, dry)
	for _, h := range st.hosts {
		if len(h.GetGone()) == 0 && len(h.GetLeftovers()) == 0 {
			continue
		}
		n := st.nodes[h.GetNode()]
		var resp *sdnv1.ReleaseHostLeaksResponse
		err := a.callHost(ctx, n, func(ctx context.Context, c sdnv1.IPAMServiceClient) error {
			var err error
			resp, err = c.ReleaseHostLeaks(ctx, &sdnv1.ReleaseHostLeaksRequest{DryRun: dry})
			return err
		})
		if err != nil {
			fmt.Fprintf(a.stdout, "host %s: %v\n", h.GetNode(), err)
			failed++
			continue
		}
		for _, s := range resp.GetActions() {
			fmt.Fprintf(a.stdout, "host %s: %s\n", h.GetNode(), s)
		}
		for _, s := range resp.GetSkipped() {
			fmt.Fprintf(a.stdout, "host %s: skipped %s\n", h.GetNode(), s)
		}
	}
	if !includeDown && len(st.hostDown) > 0 {
		fmt.Fprintf(a.stdout, "left alone: %d workloads of hosts down (--include-down detaches them)\n", len(st.hostDown))
	}
	return failed
}

// detachAll detaches workloads by name on the servers.
func (a *app) detachAll(ctx context.Context, ws []*sdnv1.Workload, why map[*sdnv1.Workload]string, dry bool) int {
	if len(ws) == 0 {
		return 0
	}
	if dry {
		for _, w := range ws {
			fmt.Fprintf(a.stdout, "would detach %s/%s (%s): %s\n", w.GetNetwork(), w.GetName(), w.GetIp(), why[w])
		}
		return 0
	}
	c, err := a.connect()
	if err != nil {
		fmt.Fprintf(a.stdout, "cannot detach %d workloads: %v\n", len(ws), err)
		return len(ws)
	}
	defer c.Close()
	failed := 0
	for _, w := range ws {
		dctx, cancel := a.callContext(ctx)
		_, err := sdnv1.NewWorkloadServiceClient(c.conn).Detach(dctx, &sdnv1.DetachWorkloadRequest{Network: w.GetNetwork(), Name: w.GetName()})
		if err != nil {
			fmt.Fprintf(a.stdout, "detach %s/%s failed: %v\n", w.GetNetwork(), w.GetName(), a.rpcError(dctx, err))
			failed++
		} else {
			fmt.Fprintf(a.stdout, "detached %s/%s (%s): %s\n", w.GetNetwork(), w.GetName(), w.GetIp(), why[w])
		}
		cancel()
	}
	return failed
}
