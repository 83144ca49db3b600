package fsm

// Determinism: every replica applies the same raft log and must end in the
// same state, whatever else happened to it: a restore from a snapshot taken
// midway, a restart, plans (dry runs) run only on the leader. Commands come
// from fsmGen (alloc_fsm_test.go).

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// applyData applies already-encoded command bytes as the next raft entry.
func (tf *testFSM) applyData(data []byte) *Result {
	tf.t.Helper()
	tf.index++
	r, _ := tf.f.Apply(Entry{Index: tf.index, Command: true, Data: data}).(*Result)
	if r == nil {
		tf.t.Fatalf("entry %d produced no result", tf.index)
	}
	return r
}

// digest renders what a command produced: its result, and the change record
// it committed, which carries every object it wrote with the VNIDs, subnets
// and addresses allocated to them. Equal digests mean equal allocations.
func (tf *testFSM) digest(r *Result) string {
	tf.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "revision=%d removed=%v compacted=%d", r.Revision, r.Removed, r.Compacted)
	if r.Err != nil {
		fmt.Fprintf(&b, "\nrefused code=%d", r.Err.Code)
		for _, v := range r.Err.Violations {
			fmt.Fprintf(&b, "\n  %v", v)
		}
	}
	for _, c := range r.Changes {
		fmt.Fprintf(&b, "\nchange %v", c)
	}
	if r.Node != nil {
		fmt.Fprintf(&b, "\nnode %v", r.Node)
	}
	if r.Cluster != nil {
		fmt.Fprintf(&b, "\ncluster %v", r.Cluster)
	}
	if r.Workload != nil {
		fmt.Fprintf(&b, "\nworkload %v", r.Workload)
	}
	if r.Err == nil && len(r.Changes) > 0 {
		tf.view(func(tx *state.Tx) {
			tx.ChangesAfter(r.Revision-1, func(ev *sdnv1.WatchEvent) bool {
				fmt.Fprintf(&b, "\ncommitted %v", ev)
				return false
			})
		})
	}
	return b.String()
}

// recorded is one command of a generated sequence and what the reference
// FSM made of it.
type recorded struct {
	cmd    genCmd
	data   []byte
	digest string
}

// recordSequence generates n commands (after one that sets genSettings) on a
// reference FSM that is never snapshotted, restored or restarted, and returns
// them with their digests and the reference's final state.
func recordSequence(t *testing.T, seed uint64, n int) ([]recorded, []string) {
	t.Helper()
	ref := newTestFSM(t)
	gen := newFSMGen(seed)
	seq := make([]recorded, 0, n+1)
	add := func(c genCmd) {
		data, err := command.Encode(c.typ, c.msg)
		if err != nil {
			t.Fatal(err)
		}
		r := ref.applyData(data)
		seq = append(seq, recorded{cmd: c, data: data, digest: ref.digest(r)})
	}
	add(genCmd{command.ApplyConfig, &sdnv1.ApplyRequest{Cluster: proto.Clone(genSettings).(*sdnv1.ClusterSettings)}, "settings"})
	for range n {
		var c genCmd
		ref.view(func(tx *state.Tx) { c = gen.next(tx) })
		add(c)
	}
	return seq, ref.dump()
}

// replay applies seq to tf (its entries following tf's last one) and checks
// every result against the reference's.
func replay(t *testing.T, who string, tf *testFSM, seq []recorded) {
	t.Helper()
	for _, rc := range seq {
		r := tf.applyData(rc.data)
		if got := tf.digest(r); got != rc.digest {
			t.Fatalf("%s, entry %d: %v\n got %s\nwant %s", who, tf.index, rc.cmd, got, rc.digest)
		}
	}
}

func sameState(t *testing.T, what string, a, b *testFSM) {
	t.Helper()
	if da, db := a.dump(), b.dump(); !slices.Equal(da, db) {
		t.Fatalf("%s: states differ:\n%s", what, diffLines(da, db))
	}
	if err := comparePools(a.f.pools, b.f.pools); err != nil {
		t.Fatalf("%s: allocators differ: %v", what, err)
	}
}

// TestReplicasApplyIdentically feeds two FSMs the same random commands and
// compares every result and, regularly, the whole state and the allocators
// (cursors included). One replica also runs plans of other random commands
// between entries, as a leader does for `sdnctl plan`; a plan must change
// nothing, so the replicas must not drift apart. And a plan of each apply
// must say what the apply then does.
func TestReplicasApplyIdentically(t *testing.T) {
	seeds := []uint64{7, 8, 9}
	steps := 800
	if testing.Short() {
		seeds, steps = seeds[:1], 300
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			a, b := newTestFSM(t), newTestFSM(t)
			gen, planGen := newFSMGen(seed), newFSMGen(seed+1000)
			first := &sdnv1.ApplyRequest{Cluster: proto.Clone(genSettings).(*sdnv1.ClusterSettings)}
			a.mustApply(command.ApplyConfig, first)
			b.mustApply(command.ApplyConfig, first)
			plans, groups := 0, 0
			for i := range steps {
				var c, other genCmd
				a.view(func(tx *state.Tx) { c = gen.next(tx) })
				b.view(func(tx *state.Tx) { other = planGen.next(tx) })
				if _, err := b.f.DryRun(other.typ, other.msg); err != nil {
					t.Fatalf("step %d: plan of %v: %v", i, other, err)
				}
				plans++
				var plan *Result
				if c.typ == command.ApplyConfig {
					var err error
					if plan, err = a.f.DryRun(c.typ, c.msg); err != nil {
						t.Fatalf("step %d: plan of %v: %v", i, c, err)
					}
				}
				ra, rb := a.apply(c.typ, c.msg), b.apply(c.typ, c.msg)
				if da, db := a.digest(ra), b.digest(rb); da != db {
					t.Fatalf("step %d: %v\nreplica A: %s\nreplica B (which ran plans): %s", i, c, da, db)
				}
				if plan != nil {
					if refusal(plan.Err) != refusal(ra.Err) || fmt.Sprint(plan.Changes) != fmt.Sprint(ra.Changes) {
						t.Fatalf("step %d: %v\nplanned %v %v\napplied %v %v", i, c, plan.Err, plan.Changes, ra.Err, ra.Changes)
					}
				}
				if i%50 == 0 {
					sameState(t, fmt.Sprintf("step %d", i), a, b)
					groups += checkGroups(t, fmt.Sprintf("step %d", i), a)
				}
			}
			sameState(t, "end", a, b)
			if groups == 0 {
				t.Fatal("no address group was ever derived: the generator does not exercise policies")
			}
			for _, tf := range []*testFSM{a, b} {
				if err := checkPoolsMatchStore(tf.f); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("%d commands on two replicas, %d plans on one", steps, plans)
		})
	}
}

// checkGroups checks the stored address groups are those the policies and
// workloads derive (CheckState does), and returns how many there are.
func checkGroups(t *testing.T, what string, tf *testFSM) int {
	t.Helper()
	n := 0
	tf.view(func(tx *state.Tx) {
		if err := CheckState(tx); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		n = len(tx.AddressGroups())
	})
	return n
}

func refusal(e *Error) string {
	if e == nil {
		return "accepted"
	}
	return fmt.Sprintf("refused (code %d): %v", e.Code, e.Violations)
}

// TestPlanOfCIDRChangeChangesNothing: planning a new cluster CIDR (allowed
// while no host holds a subnet) must not swap the live subnet pool, or the
// next host gets a block of a CIDR the store does not have, on this replica
// only, and the state file no longer loads.
func TestPlanOfCIDRChangeChangesNothing(t *testing.T) {
	planned, plain := newTestFSM(t), newTestFSM(t)
	res, err := planned.f.DryRun(command.ApplyConfig, &sdnv1.ApplyRequest{Cluster: &sdnv1.ClusterSettings{Cidr: "10.200.0.0/16", HostPrefix: 24}})
	if err != nil || res.Err != nil || len(res.Changes) != 1 {
		t.Fatalf("plan: %v %v %v", err, res.Err, res.Changes)
	}
	rp := planned.mustApply(command.RegisterNode, register("n1", "198.18.0.1", 1500))
	rq := plain.mustApply(command.RegisterNode, register("n1", "198.18.0.1", 1500))
	if rp.Node.Subnet != "10.128.0.0/23" || rq.Node.Subnet != rp.Node.Subnet {
		t.Fatalf("after a plan of another CIDR, n1 got %s (without the plan %s); want 10.128.0.0/23, the stored CIDR's", rp.Node.Subnet, rq.Node.Subnet)
	}
	sameState(t, "after plan", planned, plain)
	if err := checkPoolsMatchStore(planned.f); err != nil {
		t.Fatal(err)
	}
}

func snapshot(t *testing.T, tf *testFSM) []byte {
	t.Helper()
	snap, err := tf.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := snap.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestSnapshotRestoreContinuesIdentically takes a snapshot midway, restores
// it into a fresh FSM and into one with another history, and feeds all of
// them the rest of the log: every result and the final state match a replica
// that was never snapshotted. That holds only if the allocators, cursors
// included, are rebuilt from the snapshot exactly.
func TestSnapshotRestoreContinuesIdentically(t *testing.T) {
	seeds := []uint64{11, 12}
	steps := 800
	if testing.Short() {
		seeds, steps = seeds[:1], 300
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			seq, want := recordSequence(t, seed, steps)
			k := len(seq) / 2

			a := newTestFSM(t)
			replay(t, "snapshotted replica", a, seq[:k])
			img := snapshot(t, a)

			fresh := newTestFSM(t)
			if err := fresh.f.Restore(io.NopCloser(bytes.NewReader(img))); err != nil {
				t.Fatal(err)
			}
			// A replica with a history of its own (another cluster CIDR,
			// hosts, networks): the restore replaces all of it.
			other := newTestFSM(t)
			otherSeq, _ := recordSequence(t, seed+500, 200)
			replay(t, "other replica", other, otherSeq)
			if err := other.f.Restore(io.NopCloser(bytes.NewReader(img))); err != nil {
				t.Fatal(err)
			}

			for _, tf := range []*testFSM{fresh, other} {
				if got := tf.f.AppliedIndex(); got != uint64(k) {
					t.Fatalf("restored applied index %d, want %d", got, k)
				}
				tf.index = uint64(k)
				sameState(t, "right after restore", a, tf)
			}
			replay(t, "snapshotted replica", a, seq[k:])
			replay(t, "replica restored fresh", fresh, seq[k:])
			replay(t, "replica restored over another history", other, seq[k:])
			for _, tf := range []*testFSM{a, fresh, other} {
				if got := tf.dump(); !slices.Equal(got, want) {
					t.Fatalf("final state differs from the reference:\n%s", diffLines(want, got))
				}
			}
			sameState(t, "end", a, fresh)
			sameState(t, "end", a, other)
		})
	}
}

// TestReopenContinuesIdentically closes the FSM and opens its state file
// again at several points, as a restarted server does, and checks that raft's
// replay of entries the state already covers is skipped and that every
// result and the final state match a replica that never restarted.
func TestReopenContinuesIdentically(t *testing.T) {
	seeds := []uint64{21, 22}
	steps := 800
	if testing.Short() {
		seeds, steps = seeds[:1], 300
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			seq, want := recordSequence(t, seed, steps)
			tf := newTestFSM(t)
			done := 0
			for _, stop := range []int{len(seq) / 4, len(seq) / 2, 3 * len(seq) / 4, len(seq)} {
				replay(t, "restarted replica", tf, seq[done:stop])
				done = stop
				before := tf.dump()
				tf.f.Close()
				f, err := OpenFSM(tf.path, state.Options{NoSync: true}, nil, logger)
				if err != nil {
					t.Fatalf("reopen after entry %d: %v", done, err)
				}
				t.Cleanup(func() { f.Close() })
				tf.f = f
				if after := tf.dump(); !slices.Equal(before, after) {
					t.Fatalf("reopen after entry %d changed the state:\n%s", done, diffLines(before, after))
				}
				if got := f.AppliedIndex(); got != uint64(done) {
					t.Fatalf("reopened at applied index %d, want %d", got, done)
				}
				// Raft replays the log from its last snapshot, which
				// may be older than the state: those entries are
				// skipped.
				for i := max(0, done-40); i < done; i++ {
					if r := f.Apply(Entry{Index: uint64(i + 1), Command: true, Data: seq[i].data}); r != nil {
						t.Fatalf("replayed entry %d applied again: %v", i+1, r)
					}
				}
				if after := tf.dump(); !slices.Equal(before, after) {
					t.Fatalf("replay after reopen changed the state:\n%s", diffLines(before, after))
				}
			}
			if got := tf.dump(); !slices.Equal(got, want) {
				t.Fatalf("final state differs from the reference:\n%s", diffLines(want, got))
			}
			if err := checkPoolsMatchStore(tf.f); err != nil {
				t.Fatal(err)
			}
		})
	}
}
