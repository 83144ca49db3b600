package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func (a *app) labelCommand() *cobra.Command {
	var (
		wait        bool
		waitTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "label workload NETWORK/NAME KEY=VALUE... KEY-... [--wait]",
		Short: "Set or remove labels of a running workload",
		Long: "Label changes a workload's labels, as kubectl label does: KEY=VALUE sets a\n" +
			"label, KEY- removes one. The policies that select the workload, and the\n" +
			"address groups it is in, follow. It prints the new labels and the revision;\n" +
			"with --wait it returns when every registered host realized that revision.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 3 {
				return usagef("label needs a kind, a workload and labels, e.g. `sdnctl label workload proj1/web app=web tier-`")
			}
			return nil
		},
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			if _, err := parseKind(args[0], model.KindWorkload); err != nil {
				return err
			}
			network, name, ok := strings.Cut(args[1], "/")
			if !ok || network == "" || name == "" || strings.Contains(name, "/") {
				return usagef("a workload is named network/name, e.g. proj1/web; got %q", args[1])
			}
			set, remove, err := parseLabelArgs(args[2:])
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("wait-timeout") && !wait {
				return usagef("--wait-timeout needs --wait")
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := a.callContext(cmd.Context())
			defer cancel()
			resp, err := c.policy.LabelWorkload(ctx, &sdnv1.LabelWorkloadRequest{Network: network, Name: name, Set: set, Remove: remove})
			if err != nil {
				return a.rpcError(ctx, err)
			}
			fmt.Fprintf(a.stdout, "workload %s labels: %s (revision %d)\n", args[1], formatLabels(resp.GetWorkload().GetLabels()), resp.GetRevision())
			if !wait {
				return nil
			}
			return a.waitRealized(cmd.Context(), c, resp.GetRevision(), waitTimeout)
		}),
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until every registered host realized the change")
	cmd.Flags().DurationVar(&waitTimeout, "wait-timeout", 2*time.Minute, "how long --wait waits")
	return cmd
}
