package fsm

import (
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func TestAttachHostPorts(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}, {Name: "proj2"}}})
	tf.mustApply(command.RegisterNode, register("host1", "198.18.0.1", 1500))
	tf.mustApply(command.RegisterNode, register("host2", "198.18.0.2", 1500))
	attach := func(network, name, node, cid string, pms ...*sdnv1.PortMapping) *Result {
		return tf.apply(command.AttachWorkload, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{Name: name, Network: network, Node: node,
			PortMappings: pms, Bandwidth: &sdnv1.Bandwidth{EgressRate: 1e6, EgressBurst: 1e5},
			Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_CNI, ContainerId: cid, Ifname: "eth0"}}})
	}
	web := attach("proj1", "web", "host1", "c1", &sdnv1.PortMapping{HostPort: 8080, ContainerPort: 80}, &sdnv1.PortMapping{HostPort: 8080, ContainerPort: 80, Protocol: "udp"})
	if web.Err != nil {
		t.Fatal(web.Err)
	}
	w := web.Workload
	if len(w.PortMappings) != 2 || w.PortMappings[0].Protocol != "tcp" || w.PortMappings[1].Protocol != "udp" || w.Bandwidth.GetEgressRate() != 1e6 {
		t.Fatalf("stored workload: %v", w)
	}
	// A retried ADD of the same owner is not its own clash.
	if r := attach("proj1", "web", "host1", "c1", &sdnv1.PortMapping{HostPort: 8080, ContainerPort: 80}); r.Err != nil || r.Workload.Ip != w.Ip {
		t.Fatalf("retried attach: %v", r.Err)
	}
	// Another workload of the same host, even in another network, cannot
	// take the port; the refusal names the holder.
	r := attach("proj2", "api", "host1", "c2", &sdnv1.PortMapping{HostPort: 8080, ContainerPort: 9000, HostIp: "198.18.0.1"})
	want := "host port 8080/tcp of host host1 is already mapped by workload proj1/web (8080/tcp -> 80)"
	if r.Err == nil || r.Err.Code != CodeConflict || !strings.Contains(r.Err.Error(), want) {
		t.Fatalf("clash: %v; want %q", r.Err, want)
	}
	// Another protocol, another port, or another host is fine.
	for _, c := range []struct {
		node string
		pm   *sdnv1.PortMapping
	}{
		{"host1", &sdnv1.PortMapping{HostPort: 8081, ContainerPort: 80}},
		{"host2", &sdnv1.PortMapping{HostPort: 8080, ContainerPort: 80}},
	} {
		if r := attach("proj2", "api-"+c.node, c.node, "c-"+c.node, c.pm); r.Err != nil {
			t.Errorf("attach %v on %s: %v", c.pm, c.node, r.Err)
		}
	}
	// Once the holder is gone, the port is free.
	tf.mustApply(command.DetachWorkload, &sdnv1.DetachWorkloadRequest{ContainerId: "c1", Ifname: "eth0"})
	if r := attach("proj2", "api", "host1", "c2", &sdnv1.PortMapping{HostPort: 8080, ContainerPort: 9000}); r.Err != nil {
		t.Fatalf("attach after the holder left: %v", r.Err)
	}
}

func TestAttachRefusesBadRuntimeFields(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}}})
	tf.mustApply(command.RegisterNode, register("host1", "198.18.0.1", 1500))
	for _, c := range []struct {
		w    *sdnv1.Workload
		want string
	}{
		{&sdnv1.Workload{PortMappings: []*sdnv1.PortMapping{{HostPort: 0, ContainerPort: 80}}}, "workload proj1/w: port mapping 1: host port 0 is not a port"},
		{&sdnv1.Workload{PortMappings: []*sdnv1.PortMapping{{HostPort: 80, ContainerPort: 80, Protocol: "sctp"}}}, `protocol "sctp" is not tcp or udp`},
		{&sdnv1.Workload{Bandwidth: &sdnv1.Bandwidth{IngressRate: 1e6}}, "workload proj1/w: ingress rate 1000000 and burst 0"},
	} {
		c.w.Name, c.w.Network, c.w.Node = "w", "proj1", "host1"
		r := tf.apply(command.AttachWorkload, &sdnv1.AttachWorkloadRequest{Workload: c.w})
		if r.Err == nil || r.Err.Code != CodeInvalid || !strings.Contains(r.Err.Error(), c.want) {
			t.Errorf("attach %v: %v; want %q", c.w, r.Err, c.want)
		}
	}
	tf.view(func(tx *state.Tx) {
		if ws := tx.Workloads(""); len(ws) != 0 {
			t.Errorf("refused attaches stored %v", ws)
		}
	})
}
