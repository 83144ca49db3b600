package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/sdn-dev/sdn/cluster/command"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// BenchmarkProposeClients measures committed writes per second on a
// 3-server in-memory cluster (real bbolt files, fsync on) as the number of
// concurrent clients grows, and reports raft entries per command: group
// commit lets throughput grow with clients.
//
//	go test -run - -bench ProposeClients ./cluster/
func BenchmarkProposeClients(b *testing.B) {
	for _, clients := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			// raft's default timeouts: the shortened ones of the tests flap
			// under a benchmark's load on a small machine.
			mc := newMemClusterTB(b, 3, func(*raft.Config) {})
			l := mc.leader()
			ctx := context.Background()
			// One network; every write attaches a workload to it.
			if _, err := l.Propose(ctx, command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "p"}}}); err != nil {
				b.Fatal(err)
			}
			for h := 0; h < clients; h++ {
				ip := netip.AddrFrom4([4]byte{198, 19, 0, byte(h + 1)})
				if _, err := l.Propose(ctx, command.RegisterNode, register(fmt.Sprintf("h%d", h), ip.String(), 1500)); err != nil {
					b.Fatal(err)
				}
			}
			e0, c0 := l.FSM().Counts()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for c := 0; c < clients; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						w := &sdnv1.Workload{Name: fmt.Sprintf("w%d", i), Network: "p", Node: fmt.Sprintf("h%d", c)}
						if _, err := l.Propose(ctx, command.AttachWorkload, &sdnv1.AttachWorkloadRequest{Workload: w}); err != nil {
							b.Error(err)
							return
						}
						// A host's /23 holds 510 workloads; free the address again.
						if _, err := l.Propose(ctx, command.DetachWorkload, &sdnv1.DetachWorkloadRequest{Network: "p", Name: w.Name}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			e1, c1 := l.FSM().Counts()
			b.ReportMetric(float64(e1-e0)/float64(c1-c0), "entries/cmd")
		})
	}
}
