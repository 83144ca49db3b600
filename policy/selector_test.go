package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func req(key, op string, values ...string) *sdnv1.LabelRequirement {
	return &sdnv1.LabelRequirement{Key: key, Operator: op, Values: values}
}

func TestMatches(t *testing.T) {
	web := map[string]string{"app": "web", "tier": "frontend"}
	none := map[string]string{}
	for _, tc := range []struct {
		name   string
		s      *sdnv1.LabelSelector
		labels map[string]string
		want   bool
	}{
		{"nil matches nothing", nil, web, false},
		{"nil matches nothing, even no labels", nil, none, false},
		{"empty matches everything", &sdnv1.LabelSelector{}, web, true},
		{"empty matches no labels", &sdnv1.LabelSelector{}, nil, true},
		{"match_labels equal", &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, web, true},
		{"match_labels other value", &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}, web, false},
		{"match_labels missing key", &sdnv1.LabelSelector{MatchLabels: map[string]string{"env": ""}}, web, false},
		{"match_labels all must hold", &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": "web", "tier": "backend"}}, web, false},
		{"In holds", &sdnv1.LabelSelector{MatchExpressions: []*sdnv1.LabelRequirement{req("tier", OpIn, "edge", "frontend")}}, web, true},
		{"In other value", &sdnv1.LabelSelector{MatchExpressions: []*sdnv1.LabelRequirement{req("tier", OpIn, "edge")}}, web, false},
		{"In missing key", &sdnv1.LabelSelector{MatchExpressions: []*sdnv1.LabelRequirement{req("env", OpIn, "prod")}}, web, false},
		{"NotIn other value", &sdnv1.LabelSelector{MatchExpressions: []*sdnv1.LabelRequirement{req("tier", OpNotIn, "edge")}}, web, true},
		{"NotIn listed value", &sdnv1.LabelSelector{MatchExpressions: []*sdnv1.LabelRequirement{req("tier", OpNotIn, "frontend")}}, web, false},
		{"NotIn missing key holds", &sdnv1.LabelSelector{MatchExpressions: []*sdnv1.LabelRequirement{req("env", OpNotIn, "prod")}}, web, true},
		{"Exists", &sdnv1.LabelSelector{MatchExpressions: []*sdnv1.LabelRequirement{req("app", OpExists)}}, web, true},
		{"Exists missing", &sdnv1.LabelSelector{MatchExpressions: []*sdnv1.LabelRequirement{req("env", OpExists)}}, web, false},
		{"DoesNotExist", &sdnv1.LabelSelector{MatchExpressions: []*sdnv1.LabelRequirement{req("env", OpDoesNotExist)}}, web, true},
		{"DoesNotExist present", &sdnv1.LabelSelector{MatchExpressions: []*sdnv1.LabelRequirement{req("app", OpDoesNotExist)}}, web, false},
		{"unknown operator matches nothing", &sdnv1.LabelSelector{MatchExpressions: []*sdnv1.LabelRequirement{req("app", "in", "web")}}, web, false},
		{"labels and expressions AND", &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": "web"},
			MatchExpressions: []*sdnv1.LabelRequirement{req("tier", OpIn, "frontend"), req("legacy", OpDoesNotExist)}}, web, true},
		{"labels and expressions AND, one fails", &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": "web"},
			MatchExpressions: []*sdnv1.LabelRequirement{req("tier", OpIn, "frontend"), req("app", OpDoesNotExist)}}, web, false},
	} {
		if got := Matches(tc.s, tc.labels); got != tc.want {
			t.Errorf("%s: Matches = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCheckSelector(t *testing.T) {
	for _, tc := range []struct {
		s    *sdnv1.LabelSelector
		want string // "" for valid
	}{
		{nil, ""},
		{&sdnv1.LabelSelector{}, ""},
		{&sdnv1.LabelSelector{MatchExpressions: []*sdnv1.LabelRequirement{req("a", OpIn)}}, "needs at least one value"},
		{&sdnv1.LabelSelector{MatchExpressions: []*sdnv1.LabelRequirement{req("a", OpExists, "x")}}, "takes no values"},
		{&sdnv1.LabelSelector{MatchExpressions: []*sdnv1.LabelRequirement{req("a", "in", "x")}}, "is not one of In, NotIn"},
		{&sdnv1.LabelSelector{MatchExpressions: []*sdnv1.LabelRequirement{req("bad key", OpExists)}}, "key \"bad key\" is invalid"},
		{&sdnv1.LabelSelector{MatchLabels: map[string]string{"a": "bad value"}}, "the value of \"a\" is invalid"},
	} {
		err := CheckSelector("workloads", tc.s)
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckSelector(%v) = %v, want %q", tc.s, err, tc.want)
		}
	}
}

// SelectorString is canonical: equal selectors render equally whatever the
// order of their labels, expressions and values; nil and empty differ.
func TestSelectorStringCanonical(t *testing.T) {
	a := &sdnv1.LabelSelector{MatchLabels: map[string]string{"b": "2", "a": "1"},
		MatchExpressions: []*sdnv1.LabelRequirement{req("tier", OpIn, "y", "x", "x"), req("legacy", OpDoesNotExist), req("debug", OpExists), req("env", OpNotIn, "dev")}}
	b := &sdnv1.LabelSelector{MatchLabels: map[string]string{"a": "1", "b": "2"},
		MatchExpressions: []*sdnv1.LabelRequirement{req("env", OpNotIn, "dev"), req("debug", OpExists), req("tier", OpIn, "x", "y"), req("legacy", OpDoesNotExist)}}
	const want = "a=1,b=2,!legacy,debug,env notin (dev),tier in (x,y)"
	if got := SelectorString(a); got != want {
		t.Errorf("SelectorString = %q, want %q", got, want)
	}
	if SelectorString(a) != SelectorString(b) {
		t.Errorf("equal selectors render differently: %q vs %q", SelectorString(a), SelectorString(b))
	}
	if SelectorString(nil) != "" || SelectorString(&sdnv1.LabelSelector{}) != "{}" {
		t.Errorf("nil %q, empty %q", SelectorString(nil), SelectorString(&sdnv1.LabelSelector{}))
	}
}

// Group keys and names are stable (pinned: every server and agent derives
// the same) and canonical (equal peers, equal names; different peers,
// different names).
func TestGroupKeys(t *testing.T) {
	web := &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	prod := &sdnv1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
	netPol := &sdnv1.Policy{Name: "p", Network: "proj1"}
	clusterPol := &sdnv1.Policy{Name: "c"}
	for _, tc := range []struct {
		p    *sdnv1.Policy
		peer *sdnv1.PolicyPeer
		key  string
	}{
		{netPol, &sdnv1.PolicyPeer{Workloads: web}, "in network proj1: workloads{app=web}"},
		{clusterPol, &sdnv1.PolicyPeer{Workloads: web}, "in any network: workloads{app=web}"},
		{netPol, &sdnv1.PolicyPeer{Networks: prod}, "in networks{env=prod}: all workloads"},
		{clusterPol, &sdnv1.PolicyPeer{Networks: prod, Workloads: web}, "in networks{env=prod}: workloads{app=web}"},
		{netPol, &sdnv1.PolicyPeer{Workloads: &sdnv1.LabelSelector{}}, "in network proj1: workloads{{}}"},
	} {
		g, ok := PeerGroup(tc.p, tc.peer)
		if !ok || g.Key() != tc.key {
			t.Errorf("PeerGroup key %q (ok %v), want %q", g.Key(), ok, tc.key)
		}
	}
	g, _ := PeerGroup(netPol, &sdnv1.PolicyPeer{Workloads: web})
	if got := g.Name(); got != GroupName("in network proj1: workloads{app=web}") || len(got) != 17 || got[0] != 'g' {
		t.Errorf("Name = %q", got)
	}
	// "g" and the first 8 bytes of sha256 of the key, in hex.
	const pinnedGroupName = "g6e891d4160577bb9"
	if got := GroupName("in network proj1: workloads{app=web}"); got != pinnedGroupName {
		t.Errorf("GroupName changed: %q, was %q; stored groups and agents' flows are keyed on it", got, pinnedGroupName)
	}
	same, _ := PeerGroup(&sdnv1.Policy{Name: "other", Network: "proj1"}, &sdnv1.PolicyPeer{Workloads: &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}})
	if same.Name() != g.Name() {
		t.Error("the same peer in another policy of the network is another group")
	}
	other, _ := PeerGroup(&sdnv1.Policy{Name: "p", Network: "proj2"}, &sdnv1.PolicyPeer{Workloads: web})
	if other.Name() == g.Name() {
		t.Error("the same selector in another network is the same group")
	}
	if _, ok := PeerGroup(netPol, &sdnv1.PolicyPeer{Cidr: "10.0.0.0/8"}); ok {
		t.Error("a cidr peer has a group")
	}
	pol := &sdnv1.Policy{Name: "p", Network: "proj1", Ingress: []*sdnv1.PolicyRule{{Peers: []*sdnv1.PolicyPeer{{Workloads: web}, {Cidr: "10.0.0.0/8"}}}},
		Egress: []*sdnv1.PolicyRule{{Peers: []*sdnv1.PolicyPeer{{Workloads: &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}, {Networks: prod}}}}}
	if gs := Groups(pol); len(gs) != 2 {
		t.Errorf("Groups = %v, want 2 (one shared by both rules, one by network)", gs)
	}
}

// CIDRPrefixes covers exactly the cidr minus its excepts: checked address
// by address on small prefixes, for random excepts.
func TestCIDRPrefixesExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := netip.MustParsePrefix("10.1.2.0/24")
	for trial := range 300 {
		peer := &sdnv1.PolicyPeer{Cidr: base.String()}
		for range rng.IntN(4) {
			bits := 25 + rng.IntN(8)
			a := base.Addr().As4()
			a[3] = byte(rng.IntN(256))
			peer.Except = append(peer.Except, netip.PrefixFrom(netip.AddrFrom4(a), bits).Masked().String())
		}
		ps := CIDRPrefixes(peer)
		if !slices.IsSortedFunc(ps, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) }) {
			t.Fatalf("trial %d: prefixes not sorted: %v", trial, ps)
		}
		for i := range 256 {
			a := netip.AddrFrom4([4]byte{10, 1, 2, byte(i)})
			in := 0
			for _, p := range ps {
				if p.Contains(a) {
					in++
				}
			}
			want := CIDRContains(peer, a)
			if in > 1 || (in == 1) != want {
				t.Fatalf("trial %d: %s covered %d times by %v, want in=%v (except %v)", trial, a, in, ps, want, peer.Except)
			}
		}
		for _, a := range []string{"10.1.1.255", "10.1.3.0"} {
			for _, p := range ps {
				if p.Contains(netip.MustParseAddr(a)) {
					t.Fatalf("trial %d: %s outside the cidr is covered by %v", trial, a, p)
				}
			}
		}
	}
	// The fewest prefixes: a /24 minus a /26 is a /25 and a /26.
	got := fmt.Sprint(CIDRPrefixes(&sdnv1.PolicyPeer{Cidr: "10.0.0.0/24", Except: []string{"10.0.0.64/26"}}))
	if got != "[10.0.0.0/26 10.0.0.128/25]" {
		t.Errorf("10.0.0.0/24 except 10.0.0.64/26 = %s", got)
	}
	if got := CIDRPrefixes(&sdnv1.PolicyPeer{Cidr: "0.0.0.0/0"}); fmt.Sprint(got) != "[0.0.0.0/0]" {
		t.Errorf("0.0.0.0/0 = %v", got)
	}
}
