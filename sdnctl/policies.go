package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// getPolicies prints `sdnctl get policies`: the policies with their
// status, from PolicyService.ListPolicies (counters with -o wide).
func (a *app) getPolicies(ctx context.Context, c *client, network, output string) error {
	resp, err := c.policy.ListPolicies(ctx, &sdnv1.ListPoliciesRequest{Network: network, Counters: output == formatWide})
	if err != nil {
		return a.rpcError(ctx, err)
	}
	ps := sortedPolicies(resp.GetPolicies())
	if output == formatJSON {
		b, err := marshalJSONList(ps)
		if err != nil {
			return fmt.Errorf("render policies as JSON: %w", err)
		}
		_, err = a.stdout.Write(b)
		return err
	}
	return writePoliciesTable(a.stdout, ps, output == formatWide)
}

// sortedPolicies orders policies as they are keyed: cluster-wide ones
// (no network) first, then by network and name.
func sortedPolicies(in []*sdnv1.Policy) []*sdnv1.Policy {
	out := append([]*sdnv1.Policy(nil), in...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.GetNetwork() != b.GetNetwork() {
			return a.GetNetwork() < b.GetNetwork()
		}
		return a.GetName() < b.GetName()
	})
	return out
}

// writePoliciesTable prints one line per policy; wide adds a line per
// rule with its counters (when the hosts reported them).
func writePoliciesTable(w io.Writer, ps []*sdnv1.Policy, wide bool) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tNETWORK\tPRIORITY\tISOLATES\tRULES\tSELECTED\tREALIZED")
	for _, p := range ps {
		network := p.GetNetwork()
		if network == "" {
			network = "(cluster)"
		}
		isolates := strings.Join(p.GetIsolate(), ",")
		if isolates == "" {
			isolates = "none"
		}
		st := p.GetStatus()
		row(tw, p.GetName(), network, fmt.Sprint(p.GetPriority()), isolates,
			fmt.Sprintf("%d ingress / %d egress", len(p.GetIngress()), len(p.GetEgress())),
			count(len(st.GetWorkloads()), "workload"),
			fmt.Sprintf("%d/%d hosts", st.GetRealizedHosts(), st.GetHosts()))
		if !wide {
			continue
		}
		if ws := st.GetWorkloads(); len(ws) > 0 {
			fmt.Fprintf(tw, "  selects %s\t\t\t\t\t\t\n", listSome(ws, 8))
		}
		for _, rc := range st.GetCounters() {
			fmt.Fprintf(tw, "  %s %s\t%s\t%d packets\t%d connections\t\t\t\n", rc.GetDirection(), rc.GetRule(), rc.GetAction(), rc.GetPackets(), rc.GetConnections())
		}
		for _, e := range st.GetCounterErrors() {
			fmt.Fprintf(tw, "  counters: %s\t\t\t\t\t\t\n", e)
		}
	}
	return tw.Flush()
}

// listSome joins the first n items and says how many more there are.
func listSome(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}

// writeGroupsTable prints the derived address groups.
func writeGroupsTable(w io.Writer, gs []*sdnv1.AddressGroup) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tSELECTOR\tMEMBERS\tHOSTS")
	sorted := append([]*sdnv1.AddressGroup(nil), gs...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].GetName() < sorted[j].GetName() })
	for _, g := range sorted {
		hosts := strings.Join(g.GetNodes(), ",")
		row(tw, g.GetName(), g.GetSelector(), fmt.Sprint(len(g.GetMembers())), hosts)
	}
	return tw.Flush()
}

// parseLabelArgs reads kubectl-style label arguments: "k=v" sets, "k-"
// removes. Keys and values are checked by model's rules.
func parseLabelArgs(args []string) (set map[string]string, remove []string, _ error) {
	set = map[string]string{}
	for _, arg := range args {
		if k, ok := strings.CutSuffix(arg, "-"); ok && !strings.Contains(arg, "=") {
			if err := model.ValidateLabelKey(k); err != nil {
				return nil, nil, usagef("label %q: key %q: %v", arg, k, err)
			}
			remove = append(remove, k)
			continue
		}
		k, v, ok := strings.Cut(arg, "=")
		if !ok {
			return nil, nil, usagef("label %q: write KEY=VALUE to set a label, KEY- to remove it", arg)
		}
		if err := model.ValidateLabelKey(k); err != nil {
			return nil, nil, usagef("label %q: key %q: %v", arg, k, err)
		}
		if err := model.ValidateLabelValue(v); err != nil {
			return nil, nil, usagef("label %q: value %q: %v", arg, v, err)
		}
		if _, dup := set[k]; dup {
			return nil, nil, usagef("label %q is set twice", k)
		}
		set[k] = v
	}
	for _, k := range remove {
		if _, both := set[k]; both {
			return nil, nil, usagef("label %q is both set and removed", k)
		}
	}
	return set, remove, nil
}
