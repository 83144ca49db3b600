package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// parseKind accepts an object kind in singular or plural form ("network",
// "networks"), in any case, and returns it. valid lists the kinds the
// command accepts.
func parseKind(s string, valid ...model.Kind) (model.Kind, error) {
	k := strings.ToLower(strings.TrimSpace(s))
	for _, v := range valid {
		if k == string(v) || k == v.Plural() {
			return v, nil
		}
	}
	names := make([]string, len(valid))
	for i, v := range valid {
		names[i] = v.Plural()
	}
	return "", usagef("unknown kind %q; valid kinds: %s", s, strings.Join(names, ", "))
}

func (a *app) getCommand() *cobra.Command {
	var (
		output, network, node string
		stale                 bool
	)
	kinds := []model.Kind{model.KindCluster, model.KindNode, model.KindNetwork, model.KindWorkload, model.KindPolicy, model.KindAddressGroup, model.KindService}
	cmd := &cobra.Command{
		Use:   "get cluster|nodes|networks|workloads|policies|addressgroups|services [-o table|wide|json] [--network N] [--node N] [--stale]",
		Short: "List objects of one kind",
		Long: "Get lists the cluster settings, nodes, networks, workloads, policies,\n" +
			"address groups or services (singular forms accepted) as a table or, with -o\n" +
			"json, as JSON (an array for lists, an object for the cluster and for services:\n" +
			"{services, serviceEndpoints}). -o wide adds columns: workloads' named ports,\n" +
			"policies' per-rule counters, every endpoint of a service. Policies show what\n" +
			"they select and on how many of those workloads' hosts they are realized;\n" +
			"--network filters them (\"-\" for the cluster-wide ones).",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("get needs one kind: cluster, nodes, networks, workloads, policies, addressgroups or services")
			}
			return nil
		},
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			kind, err := parseKind(args[0], kinds...)
			if err != nil {
				return err
			}
			if err := checkGetFormat(kind, output); err != nil {
				return err
			}
			if err := checkGetFilters(kind, network, node); err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := a.callContext(cmd.Context())
			defer cancel()
			if kind == model.KindPolicy {
				return a.getPolicies(ctx, c, network, output)
			}
			resp, err := listAll(ctx, c, &sdnv1.ListRequest{
				Kind:    kind.Plural(),
				Network: network,
				Node:    node,
				Stale:   stale,
			})
			if err != nil {
				return a.rpcError(ctx, err)
			}
			if kind == model.KindWorkload && output != formatJSON {
				// STATUS says when a workload's host is down or gone.
				nodes, err := listAll(ctx, c, &sdnv1.ListRequest{Kind: model.KindNode.Plural(), Stale: stale})
				if err != nil {
					return a.rpcError(ctx, err)
				}
				return writeWorkloadsTableOn(a.stdout, resp.GetWorkloads(), nodesByName(nodes.GetNodes()), output == formatWide)
			}
			return a.writeList(kind, output, resp, stale)
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", formatTable, "output format: table, wide (workloads, policies) or json")
	cmd.Flags().StringVar(&network, "network", "", "only workloads (policies, services) of this network")
	cmd.Flags().StringVar(&node, "node", "", "only workloads on this node (address groups: those it receives)")
	cmd.Flags().BoolVar(&stale, "stale", false, "allow a possibly stale read from the server asked (no leader round trip)")
	return cmd
}

// nodesByName indexes nodes by name.
func nodesByName(nodes []*sdnv1.Node) map[string]*sdnv1.Node {
	out := make(map[string]*sdnv1.Node, len(nodes))
	for _, n := range nodes {
		out[n.GetName()] = n
	}
	return out
}

// checkGetFormat accepts -o wide for the kinds that have it.
func checkGetFormat(kind model.Kind, output string) error {
	if output == formatWide {
		if kind == model.KindWorkload || kind == model.KindPolicy || kind == model.KindService {
			return nil
		}
		return usagef("-o wide is for workloads, policies and services; use -o table or -o json")
	}
	return checkFormat(output)
}

// checkGetFilters refuses filters the kind does not take.
func checkGetFilters(kind model.Kind, network, node string) error {
	switch {
	case kind == model.KindWorkload:
	case (kind == model.KindPolicy || kind == model.KindService) && node == "":
	case kind == model.KindAddressGroup && network == "":
	case network != "" || node != "":
		return usagef("--network filters workloads, policies and services, --node workloads and address groups")
	}
	return nil
}

// writeList prints the objects of kind from resp in format; stale says
// the answer came from a server's own copy (no heartbeats in it).
func (a *app) writeList(kind model.Kind, format string, resp *sdnv1.ListResponse, stale bool) error {
	if format == formatJSON {
		var (
			b   []byte
			err error
		)
		switch kind {
		case model.KindCluster:
			b, err = marshalJSON(resp.GetCluster())
		case model.KindNode:
			b, err = marshalJSONList(sortedNodes(resp.GetNodes()))
		case model.KindNetwork:
			b, err = marshalJSONList(sortedNetworks(resp.GetNetworks()))
		case model.KindWorkload:
			b, err = marshalJSONList(sortedWorkloads(resp.GetWorkloads()))
		case model.KindAddressGroup:
			b, err = marshalJSONList(resp.GetAddressGroups())
		case model.KindService:
			b, err = marshalJSON(&sdnv1.ListResponse{Services: resp.GetServices(), ServiceEndpoints: resp.GetServiceEndpoints()})
		default:
			return fmt.Errorf("no JSON output for kind %q", kind)
		}
		if err != nil {
			return fmt.Errorf("render %s as JSON: %w", kind.Plural(), err)
		}
		_, err = a.stdout.Write(b)
		return err
	}
	switch kind {
	case model.KindCluster:
		return writeClusterTable(a.stdout, resp.GetCluster(), resp.GetRevision())
	case model.KindNode:
		return writeNodesTable(a.stdout, resp.GetNodes(), !stale, a.now())
	case model.KindNetwork:
		return writeNetworksTable(a.stdout, resp.GetNetworks())
	case model.KindWorkload:
		return writeWorkloadsTable(a.stdout, resp.GetWorkloads(), format == formatWide)
	case model.KindAddressGroup:
		return writeGroupsTable(a.stdout, resp.GetAddressGroups())
	case model.KindService:
		return writeServicesTable(a.stdout, resp, format == formatWide)
	}
	return fmt.Errorf("no table output for kind %q", kind)
}
