package scalesim

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func verifyFixture() *Expected {
	return NewExpected(40,
		[]*sdnv1.Network{{Name: "a", Vnid: 1, ModRevision: 3, Labels: map[string]string{"env": "x"}}, {Name: "b", Vnid: 2, ModRevision: 5}},
		[]*sdnv1.Node{
			{Name: "h1", UnderlayIp: "198.18.0.1", UnderlayMtu: 1500, Subnet: "10.0.0.0/22", GatewayIp: "10.0.0.1", ModRevision: 10, LastHeartbeatUnixMs: 99},
			{Name: "h2", UnderlayIp: "198.18.0.2", UnderlayMtu: 1500, Subnet: "10.0.4.0/22", GatewayIp: "10.0.4.1", ModRevision: 12},
		},
		[]*sdnv1.Workload{
			{Name: "w1", Network: "a", Node: "h1", Ip: "10.0.0.2", Mac: "0a:58:0a:00:00:02", ModRevision: 30},
			{Name: "w2", Network: "a", Node: "h2", Ip: "10.0.4.2", Mac: "0a:58:0a:00:04:02", ModRevision: 35},
		})
}

// holding returns what host h1 holds when it is right: the objects as a
// filtered watch cuts them (nodes without their bookkeeping fields).
func holding(e *Expected) *model.Desired {
	d := model.NewDesired()
	d.Revision = 30
	for k, n := range e.Networks {
		d.Networks[k] = n
	}
	for k, n := range e.Nodes {
		d.Nodes[k] = &sdnv1.Node{Name: n.Name, UnderlayIp: n.UnderlayIp, UnderlayMtu: n.UnderlayMtu, Subnet: n.Subnet, GatewayIp: n.GatewayIp}
	}
	d.Workloads["a/w1"] = e.Workloads["h1"]["a/w1"]
	return d
}

func TestExpectedDiff(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(d *model.Desired)
		want   string // a part of the difference; "" for none
	}{
		{"right", func(d *model.Desired) {}, ""},
		{"ahead is fine", func(d *model.Desired) { d.Revision = 41 }, ""},
		{"behind its own workload", func(d *model.Desired) { d.Revision = 29 }, "revision 29, but revision 30"},
		{"behind a node", func(d *model.Desired) { d.Workloads = map[string]*sdnv1.Workload{}; d.Revision = 11 }, "workload a/w1 missing"},
		{"network missing", func(d *model.Desired) { delete(d.Networks, "b") }, "network b missing"},
		{"network labels differ", func(d *model.Desired) { d.Networks["a"] = &sdnv1.Network{Name: "a", Vnid: 1} }, "network a differs"},
		{"extra node", func(d *model.Desired) { d.Nodes["h3"] = &sdnv1.Node{Name: "h3"} }, "node h3 held but not in the state"},
		{"node subnet differs", func(d *model.Desired) {
			d.Nodes["h2"] = &sdnv1.Node{Name: "h2", UnderlayIp: "198.18.0.2", UnderlayMtu: 1500, Subnet: "10.0.8.0/22", GatewayIp: "10.0.4.1"}
		}, "node h2 differs"},
		{"another host's workload", func(d *model.Desired) { d.Workloads["a/w2"] = &sdnv1.Workload{Name: "w2", Network: "a", Node: "h2"} }, "workload a/w2 held but not in the state"},
		{"own workload's address differs", func(d *model.Desired) {
			w := proto.Clone(d.Workloads["a/w1"]).(*sdnv1.Workload)
			w.Ip = "10.0.0.9"
			d.Workloads["a/w1"] = w
		}, "workload a/w1 differs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := verifyFixture()
			d := holding(e)
			tc.change(d)
			got := e.Diff("h1", d)
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("Diff = %q, want %q", got, tc.want)
			}
		})
	}
}

// A host without workloads needs only the networks and nodes: its
// revision must reach the last that changed them (12).
func TestExpectedDiffHostWithoutWorkloads(t *testing.T) {
	e := verifyFixture()
	d := holding(e)
	d.Workloads = map[string]*sdnv1.Workload{}
	d.Revision = 12
	if got := e.Diff("h3", d); got != "" {
		t.Errorf("Diff = %q, want none", got)
	}
	d.Revision = 11
	if got := e.Diff("h3", d); !strings.Contains(got, "revision 11, but revision 12") {
		t.Errorf("Diff = %q, want the revision behind", got)
	}
}
