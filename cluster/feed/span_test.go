package feed

import (
	"testing"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func labelled(name, node, app string) *sdnv1.ObjectChange {
	return model.Put(model.KindWorkload, "n/"+name, &sdnv1.ObjectChange{Workload: &sdnv1.Workload{Name: name, Network: "n", Node: node, Labels: map[string]string{"app": app}}})
}

func pol(app string) *sdnv1.ObjectChange {
	p := &sdnv1.Policy{Name: "p", Network: "n", Workloads: &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": app}}, Isolate: []string{"ingress"}}
	return model.Put(model.KindPolicy, "n/p", &sdnv1.ObjectChange{Policy: p})
}

// TestPolicySpan: a policy reaches the hosts where it selects a workload;
// a host gains it when a selected workload arrives (or a label starts to
// match) and drops it when its last one leaves.
func TestPolicySpan(t *testing.T) {
	x := newIndex()
	steps := []struct {
		name string
		c    *sdnv1.ObjectChange
		want string
	}{
		{"web on h1", labelled("a", "h1", "web"), "h1:CREATE"},
		{"db on h2", labelled("b", "h2", "db"), "h2:CREATE"},
		{"the policy selects web: h1 only", pol("web"), "h1:CREATE"},
		{"a second web on h1: nothing new for the policy", labelled("c", "h1", "web"), "h1:CREATE"},
		{"db relabelled web: h2 gains the policy", labelled("b", "h2", "web"), "h2:CREATE h2:CREATE"},
		{"the first web on h1 leaves: h1 keeps it (c)", del(model.KindWorkload, "n/a"), "h1:DELETE"},
		{"the last web on h1 leaves: h1 drops it", del(model.KindWorkload, "n/c"), "h1:DELETE h1:DELETE"},
		{"the policy now selects db: h2 drops it, nobody gains", pol("db"), "h2:DELETE"},
		{"the policy deleted: nobody had it", del(model.KindPolicy, "n/p"), ""},
	}
	for _, s := range steps {
		if got := who(t, x.apply(s.c)); got != s.want {
			t.Errorf("%s: %q, want %q", s.name, got, s.want)
		}
	}
	if len(x.polsByHost) != 0 {
		t.Errorf("hosts still listed with policies: %v", x.polsByHost)
	}
}

// TestPolicySpanInSnapshots: a host's snapshot holds the policies that
// select its workloads and no others.
func TestPolicySpanInSnapshots(t *testing.T) {
	x := newIndex()
	x.apply(labelled("a", "h1", "web"))
	x.apply(labelled("b", "h2", "db"))
	x.apply(pol("web"))
	count := func(host string) int {
		n := 0
		for _, w := range x.hostWires(host) {
			if decoded(t, entry{wire: w}).Kind == string(model.KindPolicy) {
				n++
			}
		}
		return n
	}
	if count("h1") != 1 || count("h2") != 0 {
		t.Fatalf("policies in snapshots: h1 %d, h2 %d; want 1 and 0", count("h1"), count("h2"))
	}
}

// TestPolicyDuringReplay: without the state before the history, a policy
// goes to every host and no host is told to drop one.
func TestPolicyDuringReplay(t *testing.T) {
	x := newIndex()
	x.known = false
	x.apply(labelled("a", "h1", "web"))
	if got := who(t, x.apply(pol("web"))); got != "*:CREATE" {
		t.Errorf("a policy while replaying: %q", got)
	}
	if got := who(t, x.apply(del(model.KindWorkload, "n/a"))); got != "h1:DELETE" {
		t.Errorf("its last workload leaves while replaying: %q (no policy delete)", got)
	}
}

// TestNetworkChangeRespansClusterPolicies: a cluster-wide policy that
// selects networks by label follows a network's labels; a network change
// that moves no span sends the policy to no one (it once went to the
// whole span again when the policy had come as an update).
func TestNetworkChangeRespansClusterPolicies(t *testing.T) {
	x := newIndex()
	net := func(env string) *sdnv1.ObjectChange {
		return model.Put(model.KindNetwork, "n", &sdnv1.ObjectChange{Network: &sdnv1.Network{Name: "n", Labels: map[string]string{"env": env}}})
	}
	x.apply(net("prod"))
	x.apply(labelled("a", "h1", "web"))
	p := &sdnv1.Policy{Name: "cw", Networks: &sdnv1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}, Isolate: []string{"ingress"}}
	c := model.Put(model.KindPolicy, "cw", &sdnv1.ObjectChange{Policy: p})
	c.Op = sdnv1.ChangeOp_CHANGE_OP_UPDATE
	if got := who(t, x.apply(c)); got != "h1:UPDATE" {
		t.Fatalf("the policy: %q", got)
	}
	n := net("prod")
	n.Network.ModRevision = 9 // changed, labels the same
	if got := who(t, x.apply(n)); got != "*:CREATE" {
		t.Errorf("a network change that moves no span: %q, want the network alone", got)
	}
	if got := who(t, x.apply(net("dev"))); got != "*:CREATE h1:DELETE" {
		t.Errorf("the network relabelled out of the selector: %q", got)
	}
	if got := who(t, x.apply(net("prod"))); got != "*:CREATE h1:UPDATE" {
		t.Errorf("relabelled back: %q", got)
	}
}
