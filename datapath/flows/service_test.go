package flows

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/datapath/ovs"
)

// withServices is the sample host with three services: web (tcp 80 and
// udp 53, over a local and a remote endpoint, one not serving udp), sticky
// (affinity) and empty (no endpoints).
func withServices() *Host {
	h := sample(Multitenant)
	a, remote := netip.MustParseAddr("10.128.0.2"), netip.MustParseAddr("10.128.2.5")
	h.Services = []Service{
		{Key: "proj1/web", VIP: netip.MustParseAddr("172.30.0.10"),
			Ports: []ServicePort{{"tcp", 80}, {"udp", 53}},
			Endpoints: []Endpoint{
				{Name: "proj1/x", IP: remote, Ports: []uint16{8080, 0}},
				{Name: "proj1/a", IP: a, Ports: []uint16{8080, 5353}, Local: true},
			}},
		{Key: "proj1/sticky", VIP: netip.MustParseAddr("172.30.0.11"), AffinityTimeout: 600,
			Ports:     []ServicePort{{"tcp", 443}},
			Endpoints: []Endpoint{{Name: "proj1/a", IP: a, Ports: []uint16{8443}, Local: true}}},
		{Key: "proj1/empty", VIP: netip.MustParseAddr("172.30.0.12"), Ports: []ServicePort{{"tcp", 80}}},
	}
	return h
}

func renderGroups(gs []ovs.Group) string {
	var b strings.Builder
	for _, g := range gs {
		fmt.Fprintf(&b, "group_id=%d,type=%s,selection_method=%s,fields(%s)", g.ID, g.Type, g.SelectionMethod, strings.Join(g.Fields, ","))
		for _, bk := range g.Buckets {
			fmt.Fprintf(&b, ",bucket=weight:%d,actions=%s", bk.Weight, bk.Actions)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestServicesGolden(t *testing.T) {
	h := withServices()
	got := render(h) + "# groups\n" + renderGroups(CompileAll(h).Groups)
	path := filepath.Join("testdata", "services.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./datapath/flows -update)", err)
	}
	if got != string(want) {
		t.Fatalf("flows differ from %s (review, then -update):\n%s", path, got)
	}
}

func TestServiceFlows(t *testing.T) {
	c := CompileAll(withServices())
	flows := strings.Split(render(withServices()), "\n")
	t.Run("no endpoints, no flow: the packet goes on to the gateway", func(t *testing.T) {
		for _, f := range flows {
			if strings.Contains(f, "172.30.0.12") {
				t.Errorf("flow for the service without endpoints: %s", f)
			}
		}
	})
	t.Run("one group per served port; a port no endpoint serves has none", func(t *testing.T) {
		if len(c.Groups) != 3 { // web tcp, web udp, sticky tcp
			t.Fatalf("groups: %s", renderGroups(c.Groups))
		}
		for _, g := range c.Groups {
			if g.ID < GroupRange.Min || g.ID > GroupRange.Max {
				t.Errorf("group %d outside %v", g.ID, GroupRange)
			}
		}
	})
	t.Run("the learned flows' cookie is not ours to reconcile", func(t *testing.T) {
		if ovs.CookieTag(AffinityCookie) == ovs.AppTag {
			t.Error("AffinityCookie carries the reconciler's tag: a reconcile would delete learned flows")
		}
	})
	t.Run("group ids depend on their key alone", func(t *testing.T) {
		h := withServices()
		h.Services = h.Services[:1]
		h.Services[0].Endpoints = h.Services[0].Endpoints[:1]
		ids := map[uint32]bool{}
		for _, g := range c.Groups {
			ids[g.ID] = true
		}
		for _, g := range CompileAll(h).Groups {
			if !ids[g.ID] {
				t.Errorf("group %d: its id moved when other services and endpoints changed", g.ID)
			}
		}
	})
}

func TestGroupIDCollisions(t *testing.T) {
	ids := newGroupIDs()
	keys := []string{}
	for i := range 20000 {
		k := fmt.Sprintf("net/svc%d/tcp/80", i)
		keys = append(keys, k)
		ids.want(k)
	}
	ids.assign()
	seen := map[uint32]string{}
	for _, k := range keys {
		id := ids.of(k)
		if other, dup := seen[id]; dup {
			t.Fatalf("%s and %s share group %d", k, other, id)
		}
		seen[id] = k
	}
	again := newGroupIDs()
	for _, k := range keys {
		again.want(k)
	}
	again.assign()
	for _, k := range keys {
		if again.of(k) != ids.of(k) {
			t.Fatalf("%s: group %d, then %d", k, ids.of(k), again.of(k))
		}
	}
}

func TestLargeServiceSplits(t *testing.T) {
	h := ServiceScale(1, 1500)
	gs := CompileAll(h).Groups
	top := gs[len(gs)-1]
	total := 0
	for _, g := range gs[:len(gs)-1] {
		if len(g.Buckets) > MaxBuckets {
			t.Errorf("sub-group %d has %d buckets", g.ID, len(g.Buckets))
		}
		total += len(g.Buckets)
	}
	var weights int
	for _, b := range top.Buckets {
		weights += int(b.Weight)
		if !strings.HasPrefix(b.Actions, "group:") {
			t.Errorf("top bucket %q does not point to a sub-group", b.Actions)
		}
	}
	if total != 1500 || weights != 1500 || len(top.Buckets) != len(gs)-1 {
		t.Errorf("1500 endpoints: %d in sub-groups, top weights %d, %d top buckets for %d sub-groups", total, weights, len(top.Buckets), len(gs)-1)
	}
}
