package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	metrics "github.com/armon/go-metrics"
	"github.com/hashicorp/raft"

	"github.com/sdn-dev/sdn/cluster/command"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// BenchmarkWriteLatency shows where one client's write spends its time: 3
// servers in this process, raft over TCP on loopback (as sdnd, without
// gRPC), data on the real disk (the test's temporary directory), raft's
// default timeouts. One client proposes attach, detach, attach, ... on the
// leader, one at a time. Besides the latency (p50, p99) it reports raft's
// own stage timings (hashicorp/raft's metrics, means per entry):
//
//	leader-store   the leader's StoreLogs (raft-boltdb commit) before it
//	               replicates: dispatchLog
//	append-rpc     the leader's AppendEntries round trip to a follower,
//	               its StoreLogs included
//	follower-store a follower's StoreLogs
//	commit         from dispatch to commit on the leader (the two above)
//	fsm-apply      the FSM's ApplyBatch (one bbolt transaction)
//
//	go test -run - -bench WriteLatency -benchtime 400x ./cluster/
func BenchmarkWriteLatency(b *testing.B) {
	for _, v := range []struct {
		name string
		cfg  Config
	}{
		// state fsynced per apply, raft.db's freelist written per commit
		{"before", Config{syncState: true, logFreelistSync: true}},
		// the state without fsync
		{"state-nosync", Config{logFreelistSync: true}},
		// and raft.db without its freelist: what sdnd runs
		{"after", Config{}},
		// not a setting: the raft log without fsync (unsafe), to measure
		// what its fsyncs cost
		{"measure-log-nosync", Config{unsafeLogNoSync: true}},
	} {
		b.Run(v.name, func(b *testing.B) { benchWriteLatency(b, v.cfg) })
	}
}

func benchWriteLatency(b *testing.B, knobs Config) {
	sink := metrics.NewInmemSink(time.Hour, time.Hour)
	cfg := metrics.DefaultConfig("")
	cfg.EnableHostname, cfg.EnableRuntimeMetrics, cfg.EnableHostnameLabel = false, false, false
	if _, err := metrics.NewGlobal(cfg, sink); err != nil {
		b.Fatal(err)
	}
	defer metrics.NewGlobal(metrics.DefaultConfig(""), &metrics.BlackholeSink{})

	var trans []raft.Transport
	var peers []Peer
	for i := range 3 {
		tr, err := raft.NewTCPTransport("127.0.0.1:0", nil, 3, 10*time.Second, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		trans = append(trans, tr)
		peers = append(peers, Peer{ID: fmt.Sprintf("s%d", i+1), Address: string(tr.LocalAddr())})
	}
	var servers []*Server
	for i := range 3 {
		s, err := NewServer(Config{DataDir: b.TempDir(), ID: peers[i].ID, Transport: trans[i], Peers: peers,
			Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
			syncState: knobs.syncState, logFreelistSync: knobs.logFreelistSync, unsafeLogNoSync: knobs.unsafeLogNoSync})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Shutdown()
		servers = append(servers, s)
	}
	var l *Server
	for deadline := time.Now().Add(20 * time.Second); l == nil; time.Sleep(10 * time.Millisecond) {
		for _, s := range servers {
			if s.IsLeader() {
				l = s
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("no leader")
		}
	}
	ctx := context.Background()
	if _, err := l.Propose(ctx, command.ApplyConfig, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "p"}}}); err != nil {
		b.Fatal(err)
	}
	if _, err := l.Propose(ctx, command.RegisterNode, register("h0", netip.MustParseAddr("198.19.0.1").String(), 1500)); err != nil {
		b.Fatal(err)
	}
	op := func(i int) error {
		w := fmt.Sprintf("w%d", i/2)
		if i%2 == 0 {
			_, err := l.Propose(ctx, command.AttachWorkload, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{Name: w, Network: "p", Node: "h0"}})
			return err
		}
		_, err := l.Propose(ctx, command.DetachWorkload, &sdnv1.DetachWorkloadRequest{Network: "p", Name: w})
		return err
	}
	for i := range 20 { // warm up: connections, pipelining
		if err := op(-2 - i); err != nil {
			b.Fatal(err)
		}
	}
	sink.Data() // the interval so far is warm-up: start a fresh one below
	sink = metrics.NewInmemSink(time.Hour, time.Hour)
	if _, err := metrics.NewGlobal(cfg, sink); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if err := op(i); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	if b.N%2 == 1 {
		_ = op(b.N)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
	stages := []struct{ metric, unit string }{
		{"raft.leader.dispatchLog", "leader-store-ms"},
		{"raft.replication.appendEntries.rpc", "append-rpc-ms"},
		{"raft.rpc.appendEntries.storeLogs", "follower-store-ms"},
		{"raft.commitTime", "commit-ms"},
		{"raft.fsm.applyBatch", "fsm-apply-ms"},
	}
	for _, iv := range sink.Data() {
		for _, st := range stages {
			var sum float64
			var n int
			for k, v := range iv.Samples {
				// The append round trip is labelled by peer: both peers.
				if k == st.metric || strings.HasPrefix(k, st.metric+";") {
					sum += v.Sum
					n += v.Count
				}
			}
			if n > 0 {
				b.ReportMetric(sum/float64(n), st.unit)
			}
		}
	}
}
