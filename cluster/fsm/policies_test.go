package fsm

import (
	"slices"
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func sel(kv ...string) *sdnv1.LabelSelector {
	s := &sdnv1.LabelSelector{MatchLabels: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		s.MatchLabels[kv[i]] = kv[i+1]
	}
	return s
}

// webFromClients is proj1/web: workloads app=web admit app=client of
// proj1 on tcp/http.
func webFromClients() *sdnv1.Policy {
	return &sdnv1.Policy{Name: "web", Network: "proj1", Workloads: sel("app", "web"), Isolate: []string{"ingress"}, Priority: 1000, Origin: hclOrigin,
		Ingress: []*sdnv1.PolicyRule{{Name: "clients", Peers: []*sdnv1.PolicyPeer{{Workloads: sel("app", "client")}}, Ports: []*sdnv1.PolicyPort{{Name: "http"}}}}}
}

// policyLab is two hosts, network proj1 with a web server on h1 and a
// client on h2, and the web policy.
func policyLab(t *testing.T) (*testFSM, *sdnv1.ApplyRequest) {
	tf := newTestFSM(t)
	tf.mustApply(command.RegisterNode, register("h1", "198.18.0.1", 1500))
	tf.mustApply(command.RegisterNode, register("h2", "198.18.0.2", 1500))
	req := &sdnv1.ApplyRequest{
		Networks: []*sdnv1.Network{{Name: "proj1", Labels: map[string]string{"team": "a"}, Origin: hclOrigin}},
		Workloads: []*sdnv1.Workload{
			{Name: "web", Network: "proj1", Node: "h1", Labels: map[string]string{"app": "web"}, Origin: hclOrigin,
				NamedPorts: []*sdnv1.NamedPort{{Name: "http", Port: 8080}}},
			{Name: "client", Network: "proj1", Node: "h2", Labels: map[string]string{"app": "client"}, Origin: hclOrigin},
		},
		Policies: []*sdnv1.Policy{webFromClients()},
	}
	tf.mustApply(command.ApplyConfig, req)
	return tf, req
}

func groups(tf *testFSM) []*sdnv1.AddressGroup {
	var gs []*sdnv1.AddressGroup
	tf.view(func(tx *state.Tx) { gs = tx.AddressGroups() })
	return gs
}

func members(g *sdnv1.AddressGroup) []string {
	var out []string
	for _, m := range g.Members {
		out = append(out, m.Workload)
	}
	return out
}

func TestPolicyStoredWithRevisionsAndChanges(t *testing.T) {
	tf, req := policyLab(t)
	var p *sdnv1.Policy
	var w *sdnv1.Workload
	tf.view(func(tx *state.Tx) {
		p, _ = tx.Policy("proj1/web")
		w, _ = tx.Workload("proj1", "web")
	})
	if p == nil || p.CreateRevision == 0 || p.ModRevision != p.CreateRevision || p.Origin.GetKind() != sdnv1.OriginKind_ORIGIN_KIND_HCL {
		t.Fatalf("stored policy %v", p)
	}
	if len(w.NamedPorts) != 1 || w.NamedPorts[0].Protocol != "tcp" || w.NamedPorts[0].Port != 8080 {
		t.Fatalf("named ports stored as %v, want http tcp/8080", w.NamedPorts)
	}
	// The same apply again changes nothing.
	if r := tf.mustApply(command.ApplyConfig, req); len(r.Changes) != 0 {
		t.Fatalf("re-apply changed %v", r.Changes)
	}
	// A changed rule is an update with details.
	req.Policies[0].Priority = 10
	req.Policies[0].Ingress[0].Ports[0] = &sdnv1.PolicyPort{Port: 80}
	r := tf.mustApply(command.ApplyConfig, req)
	if len(r.Changes) != 1 || r.Changes[0].Kind != "policy" || r.Changes[0].Op != sdnv1.ChangeOp_CHANGE_OP_UPDATE ||
		!slices.Equal(r.Changes[0].Details, []string{"priority: 1000 -> 10", "ingress[0]: changed"}) {
		t.Fatalf("changes %v", r.Changes)
	}
}

func TestPolicyValidation(t *testing.T) {
	tf, req := policyLab(t)
	bad := webFromClients()
	bad.Name = "bad"
	bad.Ingress[0].Ports = []*sdnv1.PolicyPort{{Protocol: "sctp", Port: 9}}
	orphan := webFromClients()
	orphan.Name, orphan.Network = "orphan", "nosuch"
	req.Policies = append(req.Policies, bad, orphan, webFromClients())
	r := tf.apply(command.ApplyConfig, req)
	if r.Err == nil {
		t.Fatal("accepted")
	}
	var got []string
	for _, v := range r.Err.Violations {
		got = append(got, v.Kind+" "+v.Name+" "+v.Field)
	}
	want := []string{"policy proj1/web ", "policy proj1/bad ingress[0].ports[0]", "policy nosuch/orphan network"}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("violations %q, want %q (%v)", got, want, r.Err)
	}
	// Named ports are checked too.
	req.Policies = nil
	req.Workloads[0].NamedPorts = []*sdnv1.NamedPort{{Name: "http", Port: 80}, {Name: "http", Port: 81}}
	if r := tf.apply(command.ApplyConfig, req); r.Err == nil || r.Err.Violations[0].Field != "named_ports" {
		t.Fatalf("duplicate named port: %v", r.Err)
	}
}

func TestNetworkWithPoliciesStays(t *testing.T) {
	tf, req := policyLab(t)
	if r := tf.apply(command.Delete, &sdnv1.DeleteRequest{Kind: "network", Name: "proj1"}); r.Err == nil {
		t.Fatal("deleted a network that has workloads and policies")
	}
	// Prune with the workloads gone but the policy still declared: its
	// network must stay.
	req.Networks, req.Workloads, req.Prune = nil, nil, true
	if r := tf.apply(command.ApplyConfig, req); r.Err == nil || !strings.Contains(r.Err.Error(), "unknown network") {
		t.Fatalf("prune of a network its declared policy needs: %v", r.Err)
	}
	// Everything pruned together works, and removes the groups too.
	req.Policies = nil
	r := tf.mustApply(command.ApplyConfig, req)
	var kinds []string
	for _, c := range r.Changes {
		kinds = append(kinds, c.Kind+" "+c.Op.String())
	}
	if !slices.Contains(kinds, "policy CHANGE_OP_DELETE") || !slices.Contains(kinds, "network CHANGE_OP_DELETE") {
		t.Fatalf("prune changes %v", kinds)
	}
	if gs := groups(tf); len(gs) != 0 {
		t.Fatalf("groups left: %v", gs)
	}
}

func TestDeletePolicy(t *testing.T) {
	tf, _ := policyLab(t)
	if r := tf.apply(command.Delete, &sdnv1.DeleteRequest{Kind: "policy", Name: "proj1/nosuch"}); r.Err == nil || r.Err.Code != CodeNotFound {
		t.Fatalf("delete of a missing policy: %v", r.Err)
	}
	tf.mustApply(command.Delete, &sdnv1.DeleteRequest{Kind: "policy", Name: "proj1/web"})
	if gs := groups(tf); len(gs) != 0 {
		t.Fatalf("groups left after the policy went: %v", gs)
	}
	tf.mustApply(command.Delete, &sdnv1.DeleteRequest{Kind: "workload", Name: "proj1/web"})
	tf.mustApply(command.Delete, &sdnv1.DeleteRequest{Kind: "workload", Name: "proj1/client"})
	tf.mustApply(command.Delete, &sdnv1.DeleteRequest{Kind: "network", Name: "proj1"})
}

func TestLabelWorkload(t *testing.T) {
	tf, _ := policyLab(t)
	r := tf.mustApply(command.LabelWorkload, &sdnv1.LabelWorkloadRequest{Network: "proj1", Name: "client", Set: map[string]string{"tier": "x"}, Remove: []string{"app"}})
	if r.Workload == nil || len(r.Workload.Labels) != 1 || r.Workload.Labels["tier"] != "x" || r.Workload.ModRevision != r.Revision {
		t.Fatalf("labelled workload %v at %d", r.Workload, r.Revision)
	}
	// The same labels again: no new revision.
	again := tf.mustApply(command.LabelWorkload, &sdnv1.LabelWorkloadRequest{Network: "proj1", Name: "client", Set: map[string]string{"tier": "x"}})
	if again.Revision != r.Revision || len(again.Changes) != 0 {
		t.Fatalf("no-op label made revision %d (was %d), changes %v", again.Revision, r.Revision, again.Changes)
	}
	for _, bad := range []*sdnv1.LabelWorkloadRequest{
		{Network: "proj1", Name: "nosuch", Set: map[string]string{"a": "b"}},
		{Network: "proj1", Name: "client", Set: map[string]string{"-bad": "b"}},
		{Network: "proj1", Name: "client", Set: map[string]string{"a": "b"}, Remove: []string{"a"}},
	} {
		if r := tf.apply(command.LabelWorkload, bad); r.Err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if r := tf.apply(command.LabelWorkload, &sdnv1.LabelWorkloadRequest{Network: "proj1", Name: "nosuch"}); r.Err.Code != CodeNotFound {
		t.Errorf("unknown workload: code %d", r.Err.Code)
	}
}

// Groups follow labels: relabelling the client takes it out of the
// group, and back; the group goes to the host whose workloads the policy
// selects (h1, the web server's), not the client's.
func TestGroupsFollowLabelsAndSelection(t *testing.T) {
	tf, req := policyLab(t)
	gs := groups(tf)
	if len(gs) != 1 {
		t.Fatalf("groups %v", gs)
	}
	g := gs[0]
	if g.Selector != "in network proj1: workloads{app=client}" || !slices.Equal(members(g), []string{"proj1/client"}) || !slices.Equal(g.Nodes, []string{"h1"}) {
		t.Fatalf("group %v", g)
	}
	r := tf.mustApply(command.LabelWorkload, &sdnv1.LabelWorkloadRequest{Network: "proj1", Name: "client", Set: map[string]string{"app": "bar"}})
	var evs []*sdnv1.ObjectChange
	tf.view(func(tx *state.Tx) {
		tx.ChangesAfter(r.Revision-1, func(ev *sdnv1.WatchEvent) bool { evs = ev.Changes; return false })
	})
	if len(evs) != 2 || evs[1].Kind != string(model.KindAddressGroup) || evs[1].Op != sdnv1.ChangeOp_CHANGE_OP_UPDATE || len(evs[1].AddressGroup.Members) != 0 {
		t.Fatalf("revision %d's changes: %v", r.Revision, evs)
	}
	if len(r.Changes) != 1 {
		t.Fatalf("the derived group shows in the command's changes: %v", r.Changes)
	}
	tf.mustApply(command.LabelWorkload, &sdnv1.LabelWorkloadRequest{Network: "proj1", Name: "client", Set: map[string]string{"app": "client"}})
	if g := groups(tf)[0]; !slices.Equal(members(g), []string{"proj1/client"}) || g.Members[0].Vnid == 0 {
		t.Fatalf("relabelled back: %v", g)
	}
	// The web server moves to h2: the group's nodes follow.
	req.Workloads[0].Node = "h2"
	tf.mustApply(command.ApplyConfig, req)
	if g := groups(tf)[0]; !slices.Equal(g.Nodes, []string{"h2"}) {
		t.Fatalf("nodes after the web server moved: %v", g.Nodes)
	}
	// A heartbeat-like command (a registration that changes no workload)
	// records no group change.
	r = tf.mustApply(command.RegisterNode, register("h3", "198.18.0.3", 1500))
	tf.view(func(tx *state.Tx) {
		tx.ChangesAfter(r.Revision-1, func(ev *sdnv1.WatchEvent) bool {
			for _, c := range ev.Changes {
				if c.Kind == string(model.KindAddressGroup) {
					t.Errorf("registration changed group %v", c)
				}
			}
			return false
		})
		if err := CheckState(tx); err != nil {
			t.Fatal(err)
		}
	})
}

// A cluster-wide policy's peer with a networks selector: membership
// follows the network's labels.
func TestGroupsFollowNetworkLabels(t *testing.T) {
	tf, req := policyLab(t)
	req.Policies = append(req.Policies, &sdnv1.Policy{Name: "from-team-a", Origin: hclOrigin, Workloads: sel(),
		Ingress: []*sdnv1.PolicyRule{{Peers: []*sdnv1.PolicyPeer{{Networks: sel("team", "a")}}}}})
	tf.mustApply(command.ApplyConfig, req)
	find := func() *sdnv1.AddressGroup {
		for _, g := range groups(tf) {
			if strings.HasPrefix(g.Selector, "in networks{team=a}") {
				return g
			}
		}
		t.Fatal("no group for the networks peer")
		return nil
	}
	if g := find(); !slices.Equal(members(g), []string{"proj1/web", "proj1/client"}) || !slices.Equal(g.Nodes, []string{"h1", "h2"}) {
		t.Fatalf("group %v", g)
	}
	req.Networks[0].Labels = map[string]string{"team": "b"}
	tf.mustApply(command.ApplyConfig, req)
	if g := find(); len(g.Members) != 0 {
		t.Fatalf("members after the network was relabelled: %v", members(g))
	}
}
