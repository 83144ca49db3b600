package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func (a *app) deleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete network|workload|node|policy|service NAME",
		Short: "Delete one object",
		Long: "Delete removes one network, workload, node, policy or service. A workload\n" +
			"or service is named network/name; a network's policy network/name, a\n" +
			"cluster-wide one name.\n" +
			"A node that is up (heartbeating) is refused; see `sdnctl node remove --force`.\n" +
			"sdnd refuses to delete a network that still has workloads or policies.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usagef("delete needs a kind and a name, e.g. `sdnctl delete network proj2`")
			}
			return nil
		},
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			kind, name, err := parseDeleteTarget(args[0], args[1])
			if err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := a.callContext(cmd.Context())
			defer cancel()
			resp, err := c.config.Delete(ctx, &sdnv1.DeleteRequest{Kind: string(kind), Name: name})
			if err != nil {
				return a.rpcError(ctx, err)
			}
			fmt.Fprintf(a.stdout, "deleted %s %s (revision %d)\n", kind, name, resp.GetRevision())
			return nil
		}),
	}
}

// parseDeleteTarget checks the kind and name of a delete.
func parseDeleteTarget(kindArg, name string) (kind model.Kind, _ string, _ error) {
	kind, err := parseKind(kindArg, model.KindNetwork, model.KindWorkload, model.KindNode, model.KindPolicy, model.KindService)
	if err != nil {
		return "", "", err
	}
	if name == "" {
		return "", "", usagef("empty %s name", kind)
	}
	if kind == model.KindWorkload || kind == model.KindService {
		network, wl, ok := strings.Cut(name, "/")
		if !ok || network == "" || wl == "" || strings.Contains(wl, "/") {
			return "", "", usagef("a %s is named network/name, e.g. proj1/db1; got %q", kind, name)
		}
	}
	if kind == model.KindPolicy && strings.Count(name, "/") > 1 {
		return "", "", usagef("a policy is named network/name (a network's) or name (cluster-wide); got %q", name)
	}
	return kind, name, nil
}
