package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/pki"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func (a *app) ipamCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ipam check|release",
		Short: "Find and release leaked addresses, attachments and interfaces",
		Long: "ipam check reports what holds an address for nothing: addresses held by two workloads,\n" +
			"workloads whose host is gone from the cluster or down, and, asked of every host's agent over\n" +
			"its datapath service (--datapath-listen; mutual TLS with your client certificate), attachments\n" +
			"whose host veth is gone (namespace destroyed, DEL never came) and veths or OVS ports that no\n" +
			"workload owns. It exits 0 when all is clean, 1 when something was found (or a host could not\n" +
			"be asked). ipam release fixes what check finds, printing each action.",
	}
	cmd.AddCommand(a.ipamCheckCommand(), a.ipamReleaseCommand())
	return cmd
}

// ipamState is what check found.
type ipamState struct {
	workloads  []*sdnv1.Workload
	nodes      map[string]*sdnv1.Node
	twice      map[string][]*sdnv1.Workload // address -> holders
	hostGone   []*sdnv1.Workload
	hostDown   []*sdnv1.Workload
	hosts      []*sdnv1.HostLeaksResponse
	unasked    []string // "host: why"
	problems   int
	addrsInUse int
}

func (a *app) ipamCheckCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Report doubly-held addresses, workloads of gone or down hosts, and each host's leaks",
		Args:  cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			st, err := a.ipamCheck(cmd.Context())
			if err != nil {
				return err
			}
			st.print(a.stdout)
			if st.problems > 0 {
				return &exitError{code: 1}
			}
			return nil
		}),
	}
}

// ipamCheck lists the workloads and hosts and asks every host.
func (a *app) ipamCheck(ctx context.Context) (*ipamState, error) {
	c, err := a.connect()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	lctx, cancel := a.callContext(ctx)
	defer cancel()
	ws, err := listAll(lctx, c, &sdnv1.ListRequest{Kind: model.KindWorkload.Plural()})
	if err != nil {
		return nil, a.rpcError(lctx, err)
	}
	ns, err := listAll(lctx, c, &sdnv1.ListRequest{Kind: model.KindNode.Plural()})
	if err != nil {
		return nil, a.rpcError(lctx, err)
	}
	st := &ipamState{workloads: ws.GetWorkloads(), nodes: nodesByName(ns.GetNodes()), twice: map[string][]*sdnv1.Workload{}}
	st.compare()
	for _, n := range sortedNodes(ns.GetNodes()) {
		rep, err := a.askHost(ctx, n, func(ctx context.Context, c sdnv1.IPAMServiceClient) (*sdnv1.HostLeaksResponse, error) {
			return c.HostLeaks(ctx, &sdnv1.HostLeaksRequest{})
		})
		if err != nil {
			st.unasked = append(st.unasked, fmt.Sprintf("%s: %v", n.GetName(), err))
			st.problems++
			continue
		}
		st.hosts = append(st.hosts, rep)
		st.problems += len(rep.GetGone())
		for _, lo := range rep.GetLeftovers() {
			if !lo.GetInGrace() {
				st.problems++
			}
		}
	}
	return st, nil
}

// compare finds what the servers' state alone shows.
func (st *ipamState) compare() {
	byIP := map[string][]*sdnv1.Workload{}
	for _, w := range sortedWorkloads(st.workloads) {
		if w.GetIp() != "" {
			byIP[w.GetIp()] = append(byIP[w.GetIp()], w)
		}
		n, ok := st.nodes[w.GetNode()]
		switch {
		case w.GetNode() == "":
		case !ok:
			st.hostGone = append(st.hostGone, w)
		case n.GetDownSinceUnixMs() != 0:
			st.hostDown = append(st.hostDown, w)
		}
	}
	st.addrsInUse = len(byIP)
	for ip, holders := range byIP {
		if len(holders) > 1 {
			st.twice[ip] = holders
		}
	}
	st.problems = len(st.twice) + len(st.hostGone) + len(st.hostDown)
}

func (st *ipamState) print(w io.Writer) {
	for _, ip := range sortedKeysOf(st.twice) {
		for _, h := range st.twice[ip] {
			fmt.Fprintf(w, "address %s held twice: %s/%s on %s (created at revision %d)\n", ip, h.GetNetwork(), h.GetName(), h.GetNode(), h.GetCreateRevision())
		}
	}
	for _, x := range st.hostGone {
		fmt.Fprintf(w, "host gone: %s/%s (%s) is on host %s, which is not in the cluster\n", x.GetNetwork(), x.GetName(), x.GetIp(), x.GetNode())
	}
	for _, x := range st.hostDown {
		since := time.UnixMilli(st.nodes[x.GetNode()].GetDownSinceUnixMs()).UTC().Format(time.RFC3339)
		fmt.Fprintf(w, "host down: %s/%s (%s) is on host %s, down since %s\n", x.GetNetwork(), x.GetName(), x.GetIp(), x.GetNode(), since)
	}
	gone, left, grace := 0, 0, 0
	for _, h := range st.hosts {
		for _, g := range h.GetGone() {
			gone++
			fmt.Fprintf(w, "attachment gone: %s/%s (%s) on %s: host veth %s missing (container %s interface %s)\n",
				g.GetNetwork(), g.GetName(), g.GetIp(), h.GetNode(), g.GetHostIfname(), g.GetContainerId(), g.GetIfname())
		}
		for _, lo := range h.GetLeftovers() {
			note := ""
			if lo.GetInGrace() {
				note, grace = " (in its grace period: an ADD may be making it)", grace+1
			} else {
				left++
			}
			fmt.Fprintf(w, "leftover on %s: %s%s\n", h.GetNode(), describeLeftover(lo), note)
		}
	}
	for _, u := range st.unasked {
		fmt.Fprintf(w, "host not asked: %s\n", u)
	}
	verdict := "clean"
	if st.problems > 0 {
		verdict = fmt.Sprintf("%d found", st.problems)
	}
	fmt.Fprintf(w, "ipam check: %s: %d workloads, %d addresses; %d held twice, %d on hosts gone, %d on hosts down, %d attachments gone, %d leftovers (%d in grace) on %d hosts asked, %d not asked\n",
		verdict, len(st.workloads), st.addrsInUse, len(st.twice), len(st.hostGone), len(st.hostDown), gone, left, grace, len(st.hosts), len(st.unasked))
}

func describeLeftover(lo *sdnv1.LocalLeftover) string {
	switch {
	case lo.GetVeth() && lo.GetPort():
		return "veth and OVS port " + lo.GetName() + " with no workload"
	case lo.GetVeth():
		return "veth " + lo.GetName() + " with no workload"
	}
	return "OVS port " + lo.GetName() + " with no workload (its veth is gone)"
}

func sortedKeysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// askHost calls one host's IPAMService on its datapath service address,
// with this sdnctl's certificate (mutual TLS, the host's certificate
// checked to name the host) or plaintext (sdnd --dev).
func (a *app) askHost(ctx context.Context, n *sdnv1.Node, call func(context.Context, sdnv1.IPAMServiceClient) (*sdnv1.HostLeaksResponse, error)) (*sdnv1.HostLeaksResponse, error) {
	var out *sdnv1.HostLeaksResponse
	err := a.callHost(ctx, n, func(ctx context.Context, c sdnv1.IPAMServiceClient) error {
		var err error
		out, err = call(ctx, c)
		return err
	})
	return out, err
}

func (a *app) callHost(ctx context.Context, n *sdnv1.Node, call func(context.Context, sdnv1.IPAMServiceClient) error) error {
	if n.GetDatapathAddress() == "" {
		return fmt.Errorf("registered no datapath service address (--datapath-listen off, or an older agent)")
	}
	creds := insecure.NewCredentials()
	if a.useTLS() {
		cfg, err := pki.HostClientTLS(a.tlsCert, a.tlsKey, a.tlsCA, nil)
		if err != nil {
			return fmt.Errorf("TLS: %w", err)
		}
		creds = credentials.NewTLS(cfg)
	}
	conn, err := grpc.NewClient("passthrough:///"+n.GetDatapathAddress(), grpc.WithTransportCredentials(creds), grpc.WithAuthority(n.GetName()))
	if err != nil {
		return fmt.Errorf("datapath service at %s: %v", n.GetDatapathAddress(), err)
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	if err := call(cctx, sdnv1.NewIPAMServiceClient(conn)); err != nil {
		msg := err.Error()
		if s, ok := status.FromError(err); ok {
			msg = s.Message()
		}
		return fmt.Errorf("could not ask its agent at %s: %s (is it running, and its --datapath-listen reachable from here?)", n.GetDatapathAddress(), msg)
	}
	return nil
}
