package suites

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/bench"
)

// Raft compares sdn's control plane with etcd under the same write load:
// a 3-server sdnd cluster and a 3-member etcd (Debian's etcd-server), both
// as processes on loopback with their data on the same disk and their
// default durability (an fsync per raft batch), driven by one closed-loop
// load generator. The operation is "create a named record, then delete it"
// with the same payload: for sdn WorkloadService.Attach (an IP allocation)
// and Detach, for etcd a transaction creating the key if absent (its value
// the Attach request's bytes) and a DeleteRange. Clients spread over the
// members, each moving to the next member with every pair (client c sends
// its k-th pair to member (c+k) mod 3), so both systems forward two thirds
// of the writes to their leader whatever the client count and whichever
// member leads. Then failover: SIGKILL of the leader to the first
// acknowledged write of a client retrying on the surviving members, at
// least 10 kills each.
func Raft() bench.Suite {
	r := &raftSuite{clients: []int{1, 16, 64, 256}}
	s := bench.Suite{
		Name: "raft",
		Description: "Write throughput and latency (p50, p99) of a 3-server sdnd cluster vs a 3-member etcd on loopback, " +
			"same load generator, operation, payload, disk and fsync policy, at 1/16/64/256 clients; failover time after SIGKILL of the leader.",
		Setup: r.setup,
	}
	for _, c := range r.clients {
		tp, p50, p99 := raftFigureNames(c)
		s.Batches = append(s.Batches, bench.Batch{
			Figures: []bench.Figure{
				{Name: tp, Unit: "writes/s", HigherIsBetter: true, Ratios: [][2]string{{"sdn", "etcd"}}},
				{Name: p50, Unit: "ms", Ratios: [][2]string{{"sdn", "etcd"}}},
				{Name: p99, Unit: "ms", Ratios: [][2]string{{"sdn", "etcd"}}},
			},
			Variants: []bench.BatchVariant{
				{Name: "sdn", Run: r.load(c, func() raftSystem { return r.sdn })},
				{Name: "etcd", Run: r.load(c, func() raftSystem { return r.etcd })},
			},
		})
	}
	s.Figures = []bench.Figure{{
		Name: "failover: SIGKILL of the leader to the first acknowledged write (s)", Unit: "s",
		MinRuns: 10,
		Variants: []bench.Variant{
			{Name: "sdn", Run: r.failover(func() raftSystem { return r.sdn })},
			{Name: "etcd", Run: r.failover(func() raftSystem { return r.etcd })},
		},
		Ratios: [][2]string{{"sdn", "etcd"}},
	}}
	return s
}

func raftFigureNames(clients int) (throughput, p50, p99 string) {
	c := strconv.Itoa(clients) + " client"
	if clients > 1 {
		c += "s"
	}
	return "write throughput, " + c + " (writes/s)", "write latency p50, " + c + " (ms)", "write latency p99, " + c + " (ms)"
}

// raftSystem is one replicated store under test: members on loopback that
// can be killed and restarted, and the two operations of the load.
type raftSystem interface {
	size() int
	leader(ctx context.Context) (int, error)
	kill(i int) error
	restart(ctx context.Context, i int) error
	// create makes the record key through member; remove deletes it.
	create(ctx context.Context, member int, key string) error
	remove(ctx context.Context, member int, key string) error
	close()
}

type raftSuite struct {
	clients []int
	window  time.Duration
	sdn     raftSystem
	etcd    raftSystem
	runs    atomic.Int64 // names records apart across runs
}

func (r *raftSuite) setup(ctx context.Context, env *bench.Env) (func(), error) {
	r.window = 5 * time.Second
	if env.Quick {
		r.window = time.Second
	}
	teardown := func() {
		if r.sdn != nil {
			r.sdn.close()
		}
		if r.etcd != nil {
			r.etcd.close()
		}
	}
	env.Logf("starting a 3-member etcd")
	etcd, err := startEtcd(ctx, env.Dir+"/etcd", 3)
	if err != nil {
		return teardown, err
	}
	r.etcd = etcdSystem{etcd, attachPayload()}
	env.Logf("starting a 3-server sdnd cluster")
	sdn, err := startSDNCluster(ctx, env, env.Dir+"/sdn", 3)
	if err != nil {
		return teardown, err
	}
	r.sdn = sdn
	env.Note("operation", fmt.Sprintf("a pair per record: create then delete, each one acknowledged write; sdn: WorkloadService.Attach (IP allocation; "+
		"request %d bytes) and Detach; etcd: Txn(create_revision(key)==0 → Put(key, the same %d bytes)) and DeleteRange(key)", len(attachPayload()), len(attachPayload())))
	env.Note("load", fmt.Sprintf("closed loop, %v per round and client count; client c sends its k-th create/delete pair to member (c+k) mod 3, "+
		"so two thirds of the writes reach a follower and are forwarded, at every client count; one gRPC connection per member (plaintext, loopback); "+
		"throughput = writes acknowledged inside the window / window; latency = each acknowledged write's time, nearest rank", r.window))
	env.Note("etcd", "Debian's etcd-server 3.4 (`etcd --version`), 3 members on loopback, default settings (WAL fsync per batch, snapshot-count 100000), data under the suite's scratch directory")
	env.Note("failover", "per round: find the leader, SIGKILL it, then one client retries create on the surviving members (each try bounded by 500 ms, 20 ms between failed tries) until one is acknowledged; "+
		"figure = SIGKILL to that acknowledgement; afterwards (untimed) the record is deleted, the killed member restarted and the cluster has a leader again")
	return teardown, nil
}

// load returns a batch variant running the load with clients clients
// against the system sys() returns (set up in setup).
func (r *raftSuite) load(clients int, sys func() raftSystem) func(context.Context, *bench.Env) (map[string]float64, error) {
	return func(ctx context.Context, env *bench.Env) (map[string]float64, error) {
		s := sys()
		run := r.runs.Add(1)
		res, err := runLoad(ctx, clients, r.window, func(ctx context.Context, c, seq int) error {
			key := "b" + strconv.FormatInt(run, 10) + "-c" + strconv.Itoa(c) + "-" + strconv.Itoa(seq/2)
			m := (c + seq/2) % s.size()
			if seq%2 == 0 {
				return s.create(ctx, m, key)
			}
			return s.remove(ctx, m, key)
		})
		if err != nil {
			return nil, err
		}
		tp, p50, p99 := raftFigureNames(clients)
		return map[string]float64{tp: res.Throughput(), p50: res.Percentile(50), p99: res.Percentile(99)}, nil
	}
}

// failover kills the leader and times the first acknowledged write.
func (r *raftSuite) failover(sys func() raftSystem) func(context.Context, *bench.Env) (float64, error) {
	return func(ctx context.Context, env *bench.Env) (float64, error) {
		s := sys()
		l, err := s.leader(ctx)
		if err != nil {
			return 0, err
		}
		run := r.runs.Add(1)
		key := "f" + strconv.FormatInt(run, 10)
		start := time.Now()
		if err := s.kill(l); err != nil {
			return 0, err
		}
		var took time.Duration
		var last error
		var keys []string // a timed-out try may still commit: each try its own record
		for try := 0; ; try++ {
			m := (l + 1 + try%(s.size()-1)) % s.size()
			k := key + "-" + strconv.Itoa(try)
			keys = append(keys, k)
			cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			last = s.create(cctx, m, k)
			cancel()
			if last == nil {
				took = time.Since(start)
				break
			}
			if time.Since(start) > time.Minute || ctx.Err() != nil {
				return 0, errors.Join(fmt.Errorf("no write acknowledged within %v of killing the leader: %w", time.Since(start).Round(time.Millisecond), last), s.restart(ctx, l))
			}
			time.Sleep(20 * time.Millisecond)
		}
		m := (l + 1) % s.size()
		for _, k := range keys {
			if err := s.remove(ctx, m, k); err != nil {
				return 0, errors.Join(err, s.restart(ctx, l))
			}
		}
		if err := s.restart(ctx, l); err != nil {
			return 0, err
		}
		return took.Seconds(), nil
	}
}

// attachPayload is the Attach request sdn's load sends, marshalled: the
// bytes etcd's load stores as the value, so both carry the same payload.
func attachPayload() []byte {
	b, err := proto.Marshal(attachRequest("b1-c0-0", raftHost(0)))
	if err != nil {
		panic(err)
	}
	return b
}
