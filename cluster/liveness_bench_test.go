package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// BenchmarkLivenessTick measures what the leader's liveness loop does once
// a second (livenessTick without proposals): read every stored host and
// decide over them, at 5,000 hosts (the design's scale), all heartbeating.
//
//	go test -run '^$' -bench LivenessTick -benchmem ./cluster/
func BenchmarkLivenessTick(b *testing.B) {
	const hosts = 5000
	tf := newTestFSM(b)
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Cluster: &sdnv1.ClusterSettings{Cidr: "10.0.0.0/8", HostPrefix: 24}})
	l := NewLiveness(30*time.Second, nil)
	l.Lead(1)
	for i := range hosts {
		name := fmt.Sprintf("host%d", i)
		tf.mustApply(command.RegisterNode, register(name, fmt.Sprintf("198.18.%d.%d", i/250, i%250+1), 1500))
		l.Heartbeat(name)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var nodes []*sdnv1.Node
		if err := tf.f.View(func(tx *state.Tx) error { nodes = tx.Nodes(); return nil }); err != nil {
			b.Fatal(err)
		}
		if trs := l.Decide(nodes, 24*time.Hour, false); len(trs) != 0 {
			b.Fatalf("%d transitions with every host heartbeating", len(trs))
		}
	}
}
