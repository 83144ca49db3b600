package feed

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// decoded reads an entry's wire back into a change.
func decoded(t *testing.T, e entry) *sdnv1.ObjectChange {
	t.Helper()
	num, typ, n := protowire.ConsumeTag(e.wire)
	if num != fieldChanges || typ != protowire.BytesType {
		t.Fatalf("wire starts with field %d type %d", num, typ)
	}
	b, m := protowire.ConsumeBytes(e.wire[n:])
	if m < 0 || n+m != len(e.wire) {
		t.Fatal("wire is not one length-delimited field")
	}
	c := &sdnv1.ObjectChange{}
	if err := proto.Unmarshal(b, c); err != nil {
		t.Fatal(err)
	}
	return c
}

// who renders entries as "to:op" for comparison.
func who(t *testing.T, es []entry) string {
	var out []string
	for _, e := range es {
		to := strings.Join(e.hosts, ",")
		if e.all {
			to = "*"
		}
		out = append(out, to+":"+strings.TrimPrefix(decoded(t, e).Op.String(), "CHANGE_OP_"))
	}
	return strings.Join(out, " ")
}

func wl(name, node string) *sdnv1.ObjectChange {
	return model.Put(model.KindWorkload, "n/"+name, &sdnv1.ObjectChange{Workload: &sdnv1.Workload{Name: name, Network: "n", Node: node}})
}

func del(kind model.Kind, name string) *sdnv1.ObjectChange {
	return &sdnv1.ObjectChange{Op: sdnv1.ChangeOp_CHANGE_OP_DELETE, Kind: string(kind), Name: name}
}

func TestWorkloadAudience(t *testing.T) {
	x := newIndex()
	steps := []struct {
		c    *sdnv1.ObjectChange
		want string
	}{
		{wl("a", "h1"), "h1:CREATE"},
		{wl("a", "h1"), "h1:CREATE"},                  // an update goes to its host
		{wl("a", "h2"), "h1:DELETE h2:CREATE"},        // a move: the old host drops it
		{del(model.KindWorkload, "n/a"), "h2:DELETE"}, // a delete: only its host
		{del(model.KindWorkload, "n/a"), ""},          // already gone: no one
	}
	for i, s := range steps {
		if got := who(t, x.apply(s.c)); got != s.want {
			t.Errorf("step %d: %q, want %q", i, got, s.want)
		}
	}
	if len(x.byNode) != 0 || len(x.workloads) != 0 {
		t.Errorf("index not empty after the delete: %v %v", x.byNode, x.workloads)
	}
}

func TestNodeAudience(t *testing.T) {
	x := newIndex()
	n := &sdnv1.Node{Name: "h1", UnderlayIp: "198.18.0.1", Subnet: "10.0.0.0/24", GatewayIp: "10.0.0.1"}
	put := func(n *sdnv1.Node) *sdnv1.ObjectChange {
		return model.Put(model.KindNode, n.Name, &sdnv1.ObjectChange{Node: proto.Clone(n).(*sdnv1.Node)})
	}
	if got := who(t, x.apply(put(n))); got != "*:CREATE" {
		t.Fatalf("a new host: %q", got)
	}
	// Liveness, drain, labels, bookkeeping: no agent's flows change.
	n.DownSinceUnixMs, n.Drained, n.Labels, n.ModRevision = 5, true, map[string]string{"a": "b"}, 9
	if got := x.apply(put(n)); len(got) != 0 {
		t.Fatalf("a down mark reached %q", who(t, got))
	}
	if c := decoded(t, entry{wire: x.nodes["h1"]}); c.Node.DownSinceUnixMs != 0 || c.Node.Labels != nil {
		t.Fatalf("the node agents get is not cut: %v", c.Node)
	}
	n.UnderlayIp = "198.18.0.9"
	if got := who(t, x.apply(put(n))); got != "*:CREATE" {
		t.Fatalf("a new underlay address: %q", got)
	}
	if got := who(t, x.apply(del(model.KindNode, "h1"))); got != "*:DELETE" {
		t.Fatalf("a removed host: %q", got)
	}
}

func TestGroupAudience(t *testing.T) {
	x := newIndex()
	g := func(members string, nodes ...string) *sdnv1.ObjectChange {
		ag := &sdnv1.AddressGroup{Name: "g", Nodes: nodes}
		for _, ip := range strings.Fields(members) {
			ag.Members = append(ag.Members, &sdnv1.GroupMember{Ip: ip})
		}
		return model.Put(model.KindAddressGroup, "g", &sdnv1.ObjectChange{AddressGroup: ag})
	}
	steps := []struct {
		c    *sdnv1.ObjectChange
		want string
	}{
		{g("10.0.0.1", "h1", "h2"), "h1,h2:CREATE"},
		{g("10.0.0.1", "h2", "h1", "h3"), "h3:CREATE"},        // only the newcomer
		{g("10.0.0.2", "h1", "h3"), "h2:DELETE h1,h3:CREATE"}, // h2 left; members changed
		{del(model.KindAddressGroup, "g"), "h1,h3:DELETE"},
	}
	for i, s := range steps {
		if got := who(t, x.apply(s.c)); got != s.want {
			t.Errorf("step %d: %q, want %q", i, got, s.want)
		}
	}
}

// TestReplayWithoutPriorState: replaying history without the state before
// it, a delete or a put whose previous form is unknown reaches every host
// (a bare delete of what a host never had changes nothing).
func TestReplayWithoutPriorState(t *testing.T) {
	x := newIndex()
	x.known = false
	if got := who(t, x.apply(wl("a", "h1"))); got != "*:DELETE h1:CREATE" {
		t.Errorf("a workload first seen: %q", got)
	}
	if got := who(t, x.apply(del(model.KindWorkload, "n/b"))); got != "*:DELETE" {
		t.Errorf("a workload never seen, deleted: %q", got)
	}
	if got := who(t, x.apply(wl("a", "h2"))); got != "h1:DELETE h2:CREATE" {
		t.Errorf("a workload seen before moves: %q", got)
	}
}
