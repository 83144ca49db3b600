package host

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestNewWorkloadIsolatedFromItsFirstPacket: a workload whose policy
// isolates it gets no forbidden packet even in its first milliseconds. A
// prober sends to its address every 2 ms from before it exists, through
// the realize that plugs it in, and after: no echo comes back. With the
// policy gone, the same prober gets echoes (the control).
func TestNewWorkloadIsolatedFromItsFirstPacket(t *testing.T) {
	t.Parallel()
	l := newLab(t, 1)
	h := l.hosts[0]
	c1 := l.addWorkload(h, "a", "c1", "10.128.0.2")
	flat := sdnv1.IsolationMode_ISOLATION_MODE_FLAT
	l.realize(l.mirror(flat))

	target := netip.MustParseAddr("10.128.0.9")
	conn, err := dialUDP(c1.nsPath, target)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var echoes, sent atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			select {
			case <-stop:
				return
			default:
			}
			sent.Add(1)
			_, _ = conn.Write([]byte("first-packets"))
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Millisecond))
			if n, err := conn.Read(buf); err == nil && n > 0 {
				echoes.Add(1)
			}
		}
	}()
	defer func() { close(stop); <-done }()

	time.Sleep(50 * time.Millisecond)
	nw := l.addWorkload(h, "a", "new", target.String())
	nw.w.Labels = labels("app", "new")
	isolated := &sdnv1.Policy{Name: "new", Network: "a", Workloads: &sdnv1.LabelSelector{MatchLabels: labels("app", "new")},
		Priority: 1000, Isolate: []string{"ingress"}}
	l.realize(l.withPolicies(l.mirror(flat), isolated))
	time.Sleep(300 * time.Millisecond)
	if n := echoes.Load(); n != 0 {
		t.Fatalf("%d of %d probes reached a workload isolated from its start", n, sent.Load())
	}

	l.realize(l.mirror(flat))
	deadline := time.Now().Add(2 * time.Second)
	for echoes.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if echoes.Load() == 0 {
		t.Fatalf("control: no echo from the workload once the policy was gone (%d probes); the prober cannot tell", sent.Load())
	}
}
