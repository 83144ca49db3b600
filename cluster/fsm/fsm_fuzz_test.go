package fsm

// FuzzApply applies arbitrary raft entries to a real state file. `make fuzz`
// runs it for long, `make test` briefly; the corpus is under
// testdata/fuzz/FuzzApply.

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// fuzzBase builds the state every fuzzed entry is applied to: the random
// generator's small pools, grown for a while (networks, hosts, workloads),
// as a state file image. It also returns the next commands the generator
// would send, encoded, as seeds.
func fuzzBase(t testing.TB) (image []byte, seeds [][]byte) {
	t.Helper()
	tf := newTestFSM(t)
	gen := newFSMGen(11)
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Cluster: proto.Clone(genSettings).(*sdnv1.ClusterSettings)})
	for range 120 {
		var c genCmd
		tf.view(func(tx *state.Tx) { c = gen.next(tx) })
		tf.apply(c.typ, c.msg)
	}
	encode := func(typ command.Type, msg proto.Message) []byte {
		b, err := command.Encode(typ, msg)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for range 60 {
		var c genCmd
		tf.view(func(tx *state.Tx) { c = gen.next(tx) })
		seeds = append(seeds, encode(c.typ, c.msg))
	}
	var node, network string
	tf.view(func(tx *state.Tx) { node, network = tx.Nodes()[0].Name, tx.Networks()[0].Name })
	seeds = append(seeds,
		encode(command.DrainNode, &sdnv1.DrainNodeRequest{Name: node, Drain: true}),
		encode(command.SetNodeLiveness, &sdnv1.SetNodeLivenessRequest{Name: node, Down: true, AtUnixMs: 1767225600000}),
		encode(command.ReleaseNode, &sdnv1.ReleaseNodeRequest{Name: node, DownSinceUnixMs: 1767225600000}),
		encode(command.Delete, &sdnv1.DeleteRequest{Kind: "network", Name: network}),
		encode(command.Delete, &sdnv1.DeleteRequest{Kind: "policy", Name: network + "/pol1"}),
		encode(command.ApplyConfig, &sdnv1.ApplyRequest{Services: []*sdnv1.Service{
			{Name: "web", Network: network, Selector: &sdnv1.LabelSelector{MatchLabels: map[string]string{"app": "b"}}, Origin: hclOrigin,
				Ports:           []*sdnv1.ServicePort{{Protocol: "tcp", Port: 80, TargetPortName: "http", NodePort: 30080}, {Protocol: "udp", Port: 53}},
				SessionAffinity: &sdnv1.SessionAffinity{TimeoutSeconds: 60}},
			{Name: "db", Network: network, Vip: "172.30.0.9", Origin: hclOrigin, Ports: []*sdnv1.ServicePort{{Protocol: "tcp", Port: 5432}}},
		}}),
		encode(command.Delete, &sdnv1.DeleteRequest{Kind: "service", Name: network + "/web"}),
		encode(command.LabelWorkload, &sdnv1.LabelWorkloadRequest{Network: network, Name: "h1", Set: map[string]string{"app": "b"}, Remove: []string{"tier"}}),
		encode(command.InitCluster|command.IgnoreUnknownFlag, &sdnv1.InitClusterRequest{ClusterId: "0123456789abcdef"}),
		encode(command.RevokeCertificate|command.IgnoreUnknownFlag, &sdnv1.RevokedCertificate{Serial: "a1", Identity: "agent/" + node, Reason: "retired", RevokedBy: "client/admin"}),
		command.EncodeRaw(command.Type(99)|command.IgnoreUnknownFlag, []byte{0x0a, 0x01, 'x'}),
		command.EncodeBatch(seeds[:8]),
		command.EncodeBatch([][]byte{seeds[0], command.EncodeBatch(seeds[1:2])}),
	)
	var img bytes.Buffer
	if _, err := tf.f.WriteImage(&img, nil); err != nil {
		t.Fatal(err)
	}
	return img.Bytes(), seeds
}

// FuzzApply applies one arbitrary raft entry to a state of networks, hosts
// and workloads. An entry the FSM cannot read (a bad envelope or batch, a
// command type it does not know and may not skip, a payload that does not
// decode) must stop it (Halted: the replica stops rather than diverge) and
// write nothing; what package command alone refuses is among those. Any other entry must apply without panicking, and then:
// the applied index moves to the entry; a refused command changes nothing;
// the stored allocations hold no duplicate and the in-memory allocators
// equal those rebuilt from the store; and, when a command was accepted, the
// state file opens again and a second replica applying the same entry gets
// the same results and state.
func FuzzApply(f *testing.F) {
	image, seeds := fuzzBase(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, entry []byte) {
		a := openImage(t, image, "a")
		index := a.f.AppliedIndex() + 1
		before, beforeRev := a.dump(), a.revision()
		stop := ""
		if err := VerifyEntry(index, entry); err != nil {
			stop = err.Error()
		}
		if why := mustStop(entry); why != "" && stop == "" {
			t.Fatalf("entry %x, which package command refuses (%s), passed VerifyEntry", entry, why)
		}
		out, stopped := applyEntry(a.f, index, entry)
		if stopped {
			t.Fatalf("entry %x: the FSM panicked: %v", entry, out)
		}
		if stop != "" {
			if h := a.f.Halted(); h == nil || !strings.Contains(h.Error(), fmt.Sprintf("entry %d", index)) {
				t.Fatalf("an entry the FSM cannot read (%s) gave %v; want the FSM stopped at it (Halted)", stop, out)
			}
			if after := a.dump(); !slices.Equal(before, after) || a.f.AppliedIndex() != index-1 {
				t.Fatalf("a stopping entry changed the state:\n%s", diffLines(before, after))
			}
			return
		}
		if h := a.f.Halted(); h != nil {
			t.Fatalf("entry %x passed VerifyEntry but stopped the FSM: %v", entry, h)
		}
		results := checkResults(t, a, entry, out, before, beforeRev)
		if got := a.f.AppliedIndex(); got != index {
			t.Fatalf("applied index %d after entry %d", got, index)
		}
		a.view(func(tx *state.Tx) {
			if err := checkAllocations(tx); err != nil {
				t.Fatalf("after %s: %v", describe(results), err)
			}
		})
		if err := a.f.CheckAllocators(); err != nil {
			t.Fatalf("after %s: %v", describe(results), err)
		}
		if !slices.ContainsFunc(results, func(r *Result) bool { return r.Err == nil }) {
			return // all refused, so nothing changed (checked): nothing to compare or reload
		}
		b := openImage(t, image, "b")
		outB, _ := applyEntry(b.f, index, entry)
		for i, r := range resultsOf(outB) {
			if da, db := a.digest(results[i]), b.digest(r); da != db {
				t.Fatalf("two replicas disagree on command %d:\n%s\n%s", i, da, db)
			}
		}
		sameState(t, "two replicas after the same entry", a, b)
		reopen(t, a)
	})
}

// openImage opens a copy of a state file image as a replica's FSM.
func openImage(t *testing.T, image []byte, name string) *testFSM {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".db")
	if err := os.WriteFile(path, image, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFSM(path, state.Options{NoSync: true}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &testFSM{t: t, f: f, path: path, index: f.AppliedIndex()}
}

// reopen closes tf's state file and opens it again, as a restart does.
func reopen(t *testing.T, tf *testFSM) {
	t.Helper()
	want := tf.dump()
	if err := tf.f.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFSM(tf.path, state.Options{NoSync: true}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("the state file does not open after the entry: %v", err)
	}
	tf.f = f
	if got := tf.dump(); !slices.Equal(got, want) {
		t.Fatalf("the reopened state differs:\n%s", diffLines(want, got))
	}
}

// applyEntry applies one command entry; stopped reports a panic, and out
// is then what it panicked with.
func applyEntry(f *FSM, index uint64, entry []byte) (out any, stopped bool) {
	defer func() {
		if p := recover(); p != nil {
			out, stopped = p, true
		}
	}()
	return f.Apply(Entry{Index: index, Command: true, Data: entry}), false
}

// mustStop says why the FSM must refuse to apply entry by stopping, or ""
// when it must apply it: judged with package command alone.
func mustStop(entry []byte) string {
	typ, payload, err := command.Decode(entry)
	if err != nil {
		return err.Error()
	}
	if typ.Base() != command.Batch {
		return unknownType(typ)
	}
	cmds, err := command.DecodeBatch(payload)
	if err != nil {
		return err.Error()
	}
	for i, c := range cmds {
		typ, _, err := command.Decode(c)
		if err != nil {
			return fmt.Sprintf("command %d of the batch: %v", i, err)
		}
		if typ.Base() == command.Batch {
			continue // refused, not a stop
		}
		if why := unknownType(typ); why != "" {
			return fmt.Sprintf("command %d of the batch: %s", i, why)
		}
	}
	return ""
}

func unknownType(typ command.Type) string {
	if _, known := handlers[typ.Base()]; known || typ.Ignorable() {
		return ""
	}
	return fmt.Sprintf("unknown command type %d, not skippable", uint16(typ.Base()))
}

// resultsOf lists what Apply returned: one result, or a batch's.
func resultsOf(out any) []*Result {
	switch r := out.(type) {
	case *Result:
		return []*Result{r}
	case []*Result:
		return r
	}
	return nil
}

// checkResults checks what Apply returned for an entry it applied: a
// result per command, and no change to the state when every command was
// refused.
func checkResults(t *testing.T, tf *testFSM, entry []byte, out any, before []string, beforeRev uint64) []*Result {
	t.Helper()
	results := resultsOf(out)
	typ, payload, _ := command.Decode(entry)
	want := 1
	if typ.Base() == command.Batch {
		cmds, _ := command.DecodeBatch(payload)
		want = len(cmds)
		if _, ok := out.([]*Result); !ok {
			t.Fatalf("a batch entry gave %T, want []*Result", out)
		}
	}
	if len(results) != want || slices.Contains(results, nil) {
		t.Fatalf("entry of %d commands gave %d results: %v", want, len(results), out)
	}
	refused := 0
	for _, r := range results {
		if r.Err != nil {
			refused++
			if r.Err.Error() == "" || len(r.Err.Violations) == 0 {
				t.Fatalf("a refusal that says nothing: %#v", r.Err)
			}
		}
		if r.Revision < beforeRev {
			t.Fatalf("revision went back from %d to %d", beforeRev, r.Revision)
		}
	}
	if refused == len(results) {
		if after := tf.dump(); !slices.Equal(before, after) {
			t.Fatalf("refused commands changed the state (%s):\n%s", describe(results), diffLines(before, after))
		}
	}
	return results
}

// describe renders results for failure messages.
func describe(results []*Result) string {
	var parts []string
	for _, r := range results {
		if r.Err != nil {
			parts = append(parts, "refused: "+r.Err.Error())
		} else {
			parts = append(parts, fmt.Sprintf("revision %d, %d changes", r.Revision, len(r.Changes)))
		}
	}
	return strings.Join(parts, "; ")
}
