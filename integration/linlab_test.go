package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc"

	"github.com/sdn-dev/sdn/integration/lab"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// linLab is a lab of three `sdnd --server` processes, each in its own
// namespace on the underlay, that the linearizability tests kill, restart
// and cut off from each other (iptables in the servers' own namespaces).
type linLab struct {
	t     *testing.T
	l     *lab.Lab
	n     int
	conns []*grpc.ClientConn // by server number; [0] unused

	mu     sync.Mutex
	down   map[int]bool // killed and not restarted
	cut    map[int]bool // cut off from the other servers
	faults [][2]int64   // history times from a fault's start to its end
}

// needPartitions skips unless this machine can run servers in namespaces
// and drop their traffic.
func needPartitions(t *testing.T) {
	t.Helper()
	needDatapath(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("iptables is not installed (make deps installs it)")
	}
}

// upLinLab brings up a lab called name with n servers (and the one host a
// lab needs, underlay only), running the binaries in bin (binaries(t), or
// unsafeReadsBinaries(t)), and removes it when the test ends.
func upLinLab(t *testing.T, ctx context.Context, name string, n int, bin string) *linLab {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "lab")
	var progress strings.Builder
	ll := &linLab{t: t, n: n, down: map[int]bool{}, cut: map[int]bool{}}
	t.Cleanup(func() {
		ll.healAll()
		ol, err := lab.Open(name, dir, nil)
		if err == nil {
			err = ol.Down()
		}
		if err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	l, err := lab.Up(ctx, lab.Config{Name: name, Hosts: 1, Dir: dir, Bin: bin, UnderlayOnly: true, Logger: &progress})
	if err != nil {
		t.Fatalf("lab up: %v\n%s", err, progress.String())
	}
	if err := l.UpServers(ctx, n); err != nil {
		t.Fatalf("servers: %v\n%s", err, progress.String())
	}
	ll.l = l
	ll.conns = make([]*grpc.ClientConn, n+1)
	for k := 1; k <= n; k++ {
		c, err := l.DialServer(k)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		ll.conns[k] = c
	}
	return ll
}

// leader returns the server that says it leads (the highest term wins when
// a deposed one still thinks so), 0 when none does; cut-off servers are
// not asked.
func (ll *linLab) leader(ctx context.Context) int {
	best, term := 0, uint64(0)
	for k := 1; k <= ll.n; k++ {
		if ll.isDown(k) || ll.isCut(k) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		r, err := sdnv1.NewClusterServiceClient(ll.conns[k]).Info(cctx, &sdnv1.InfoRequest{})
		cancel()
		if err == nil && r.Server.GetLeader() && r.Server.GetTerm() >= term {
			best, term = k, r.Server.GetTerm()
		}
	}
	return best
}

// waitLeader waits up to d for a leader among the servers that are up and
// connected.
func (ll *linLab) waitLeader(ctx context.Context, d time.Duration) int {
	ll.t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(50 * time.Millisecond) {
		if k := ll.leader(ctx); k != 0 {
			return k
		}
	}
	ll.t.Fatalf("no leader after %s", d)
	return 0
}

func (ll *linLab) isDown(k int) bool {
	ll.mu.Lock()
	defer ll.mu.Unlock()
	return ll.down[k]
}

func (ll *linLab) isCut(k int) bool {
	ll.mu.Lock()
	defer ll.mu.Unlock()
	return ll.cut[k]
}

// kill crashes server k (SIGKILL).
func (ll *linLab) kill(k int) error {
	ll.mu.Lock()
	ll.down[k] = true
	ll.mu.Unlock()
	return ll.l.KillServer(k)
}

// restart starts server k again and waits until it serves.
func (ll *linLab) restart(ctx context.Context, k int) error {
	if err := ll.l.StartServer(ctx, k); err != nil {
		return err
	}
	ll.mu.Lock()
	ll.down[k] = false
	ll.mu.Unlock()
	return nil
}

// dropRules are the iptables rules, in server k's namespace, that cut it
// off from every other server: what it sends them and what it receives
// from them is dropped. Only the servers' underlay addresses are named;
// the API's unix socket (the tests' clients) is not affected.
func (ll *linLab) dropRules(k int) [][]string {
	var rules [][]string
	for j := 1; j <= ll.n; j++ {
		if j == k {
			continue
		}
		ip := ll.l.ServerIP(j).String()
		rules = append(rules, []string{"INPUT", "-s", ip, "-j", "DROP"}, []string{"OUTPUT", "-d", ip, "-j", "DROP"})
	}
	return rules
}

func (ll *linLab) iptables(k int, op string, rule []string) error {
	args := append([]string{"iptables", "-w", "5", op}, rule...)
	_, err := ll.l.Exec(ll.l.ServerNS(k), args...)
	return err
}

// partition cuts server k off from the others.
func (ll *linLab) partition(k int) error {
	ll.mu.Lock()
	ll.cut[k] = true
	ll.mu.Unlock()
	for _, r := range ll.dropRules(k) {
		if err := ll.iptables(k, "-A", r); err != nil {
			return err
		}
	}
	return nil
}

// heal removes server k's drop rules.
func (ll *linLab) heal(k int) error {
	var first error
	for _, r := range ll.dropRules(k) {
		// -C first: delete only what is there (a heal after a failed
		// partition).
		if ll.iptables(k, "-C", r) != nil {
			continue
		}
		if err := ll.iptables(k, "-D", r); err != nil && first == nil {
			first = err
		}
	}
	ll.mu.Lock()
	ll.cut[k] = false
	ll.mu.Unlock()
	return first
}

// healAll removes every drop rule the test added (also when it failed
// halfway); the lab's Down removes the namespaces after it.
func (ll *linLab) healAll() {
	if ll.l == nil {
		return
	}
	ll.mu.Lock()
	var cut []int
	for k, c := range ll.cut {
		if c {
			cut = append(cut, k)
		}
	}
	ll.mu.Unlock()
	for _, k := range cut {
		if err := ll.heal(k); err != nil {
			ll.t.Errorf("heal s%d: %v", k, err)
		}
	}
}

// linFault is one step of the fault schedule: kill a server (then restart
// it) or cut it off (then heal), the leader or a follower, for a while,
// then a quiet gap.
type linFault struct {
	Kill      bool // else partition
	Leader    bool // the leader at the time, else a follower
	Follower  int  // which follower (0 or 1, in server order) when not the leader
	For, Then time.Duration
}

func (f linFault) String() string {
	what := "partition"
	if f.Kill {
		what = "kill"
	}
	who := "leader"
	if !f.Leader {
		who = fmt.Sprintf("follower#%d", f.Follower)
	}
	return fmt.Sprintf("%s %s for %s, then %s quiet", what, who, f.For.Round(time.Millisecond), f.Then.Round(time.Millisecond))
}

// linSchedule draws faults from seed until they fill window: each lasts
// 1.5-3 s and is followed by 1-2 s without faults. Kills and partitions
// alternate, starting at random; the leader is the target half of the
// time, and at least once of each kind.
func linSchedule(seed uint64, window time.Duration) []linFault {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	var out []linFault
	kill := rng.IntN(2) == 0
	for used := time.Duration(0); ; kill = !kill {
		f := linFault{Kill: kill, Leader: rng.IntN(2) == 0, Follower: rng.IntN(2),
			For:  1500*time.Millisecond + time.Duration(rng.Int64N(int64(1500*time.Millisecond))),
			Then: time.Second + time.Duration(rng.Int64N(int64(time.Second)))}
		if used+f.For+f.Then > window {
			break
		}
		used += f.For + f.Then
		out = append(out, f)
	}
	// The leader at least once for each kind of fault.
	for _, k := range []bool{true, false} {
		hit := false
		for _, f := range out {
			hit = hit || (f.Kill == k && f.Leader)
		}
		if !hit {
			for i := range out {
				if out[i].Kill == k {
					out[i].Leader = true
					break
				}
			}
		}
	}
	return out
}

// linSeed is the schedule's seed: $SDN_LIN_SEED to replay one, else drawn.
func linSeed(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv("SDN_LIN_SEED"); s != "" {
		var seed uint64
		if _, err := fmt.Sscan(s, &seed); err != nil {
			t.Fatalf("SDN_LIN_SEED=%q: want an unsigned integer", s)
		}
		return seed
	}
	return rand.Uint64()
}

// runFaults applies the schedule, logging each step with its time in the
// history, and leaves every server up and connected. It returns the first
// error.
func (ll *linLab) runFaults(ctx context.Context, h *linHistory, sched []linFault, logf func(string, ...any)) error {
	at := func() string { return time.Duration(h.now()).Round(time.Millisecond).String() }
	for _, f := range sched {
		lead := ll.leader(ctx)
		target := lead
		if !f.Leader || lead == 0 {
			var followers []int
			for k := 1; k <= ll.n; k++ {
				if k != lead {
					followers = append(followers, k)
				}
			}
			target = followers[f.Follower%len(followers)]
		}
		role := "follower"
		if target == lead {
			role = "leader"
		}
		began := h.now()
		if f.Kill {
			logf("%s: SIGKILL s%d (%s)", at(), target, role)
			if err := ll.kill(target); err != nil {
				return fmt.Errorf("kill s%d: %w", target, err)
			}
		} else {
			logf("%s: cut s%d (%s) off from the other servers", at(), target, role)
			if err := ll.partition(target); err != nil {
				return fmt.Errorf("partition s%d: %w", target, err)
			}
		}
		if !sleepCtx(ctx, f.For) {
			return ctx.Err()
		}
		if f.Kill {
			if err := ll.restart(ctx, target); err != nil {
				return fmt.Errorf("restart s%d: %w", target, err)
			}
			logf("%s: s%d restarted and serving", at(), target)
		} else {
			if err := ll.heal(target); err != nil {
				return fmt.Errorf("heal s%d: %w", target, err)
			}
			logf("%s: s%d healed", at(), target)
		}
		ll.mu.Lock()
		ll.faults = append(ll.faults, [2]int64{began, h.now()})
		ll.mu.Unlock()
		if !sleepCtx(ctx, f.Then) {
			return ctx.Err()
		}
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// duringFaults counts the operations of a history that were called while a
// fault was on and completed.
func (ll *linLab) duringFaults(ops []porcupine.Operation) int {
	ll.mu.Lock()
	defer ll.mu.Unlock()
	n := 0
	for _, op := range ops {
		if op.Output.(linOutput).Unknown {
			continue
		}
		for _, f := range ll.faults {
			if op.Call >= f[0] && op.Call <= f[1] {
				n++
				break
			}
		}
	}
	return n
}
