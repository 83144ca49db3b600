package integration

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The linearizability tests' sequential model, the history they record and
// its check with porcupine.
//
// Every operation concerns one key, and the model is partitioned by key, so
// porcupine checks each key's history on its own (a history is
// linearizable if and only if every key's is, for operations on single
// keys). Two kinds of keys:
//   - a register: a network's label v; put(v) is an Apply of the network
//     with that label, get() a linearizable List of networks.
//   - an allocation: a workload; attach() creates it if absent and returns
//     its IP (Attach with a CNI owner, which is create-if-absent), detach()
//     removes it and says whether it was there, read() is a linearizable
//     List of the network's workloads: absent, or present with its IP.

// linKind is what an operation does.
type linKind string

const (
	linPut    linKind = "put"
	linGet    linKind = "get"
	linAttach linKind = "attach"
	linDetach linKind = "detach"
	linRead   linKind = "read"
)

// linInput is an operation's input: its key, what it does, and for put the
// value written.
type linInput struct {
	Key   string
	Kind  linKind
	Value string
}

// linOutput is what an operation returned. Unknown marks an operation whose
// outcome is unknown (it failed after it may have been sent): it may have
// taken effect at any time after its call, or never, so it is recorded
// with its return at the end of the history and any output.
type linOutput struct {
	Unknown bool
	Value   string // get: the label read ("" when the network has none)
	Present bool   // read: the workload exists
	IP      string // attach, read: the workload's address
	Removed bool   // detach: there was a workload to remove
}

// linMeta annotates an operation in the visualization.
type linMeta struct {
	Server   int
	Revision uint64 // the revision the answer came from
	Err      string
}

// linState is one key's state: a register's value, or whether a workload
// exists and its IP. An IP of "" on a present workload means it was created
// by an operation whose output is unknown, and no read has seen it yet:
// the first that does tells which IP it got (it never changes while the
// workload exists).
type linState struct {
	Present bool
	Value   string
}

// linModel is the per-key sequential specification; init is each key's
// initial state.
func linModel(init func(key string) linState) porcupine.Model {
	return porcupine.Model{
		Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[string][]porcupine.Operation{}
			for _, op := range h {
				k := op.Input.(linInput).Key
				byKey[k] = append(byKey[k], op)
			}
			keys := make([]string, 0, len(byKey))
			for k := range byKey {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			out := make([][]porcupine.Operation, 0, len(keys))
			for _, k := range keys {
				out = append(out, byKey[k])
			}
			return out
		},
		// Init cannot know the key; the state starts unset and the first
		// step of a partition takes its key's initial state.
		Init: func() any { return (*linState)(nil) },
		Step: func(st, in, out any) (bool, any) {
			i, o := in.(linInput), out.(linOutput)
			s, ok := st.(*linState)
			var cur linState
			if ok && s != nil {
				cur = *s
			} else {
				cur = init(i.Key)
			}
			next, legal := linStep(cur, i, o)
			return legal, &next
		},
		Equal: func(a, b any) bool {
			sa, sb := a.(*linState), b.(*linState)
			if sa == nil || sb == nil {
				return sa == sb
			}
			return *sa == *sb
		},
		DescribeOperation: func(in, out any) string {
			i, o := in.(linInput), out.(linOutput)
			var res string
			switch {
			case o.Unknown:
				res = "? (outcome unknown)"
			case i.Kind == linPut:
				res = "ok"
			case i.Kind == linGet:
				res = fmt.Sprintf("%q", o.Value)
			case i.Kind == linAttach:
				res = o.IP
			case i.Kind == linDetach:
				res = fmt.Sprintf("removed=%v", o.Removed)
			case i.Kind == linRead && o.Present:
				res = o.IP
			default:
				res = "absent"
			}
			if i.Kind == linPut {
				return fmt.Sprintf("%s(%s, %q) -> %s", i.Kind, i.Key, i.Value, res)
			}
			return fmt.Sprintf("%s(%s) -> %s", i.Kind, i.Key, res)
		},
		DescribeState: func(st any) string {
			s, _ := st.(*linState)
			switch {
			case s == nil:
				return "initial"
			case !s.Present:
				return "absent"
			case s.Value == "":
				return "present (IP not yet seen)"
			}
			return fmt.Sprintf("%q", s.Value)
		},
		DescribeOperationMetadata: func(info any) string {
			m, ok := info.(linMeta)
			if !ok {
				return ""
			}
			s := fmt.Sprintf("via s%d", m.Server)
			if m.Revision != 0 {
				s += fmt.Sprintf(", revision %d", m.Revision)
			}
			if m.Err != "" {
				s += ": " + m.Err
			}
			return s
		},
	}
}

// linStep is the model's step: whether an operation with this output is
// legal in state s, and the state after it.
func linStep(s linState, in linInput, out linOutput) (linState, bool) {
	switch in.Kind {
	case linPut:
		return linState{Present: true, Value: in.Value}, true
	case linGet:
		return s, s.Value == out.Value
	case linAttach:
		switch {
		case out.Unknown && s.Present:
			return s, true
		case out.Unknown:
			return linState{Present: true}, true
		case !s.Present || s.Value == "":
			return linState{Present: true, Value: out.IP}, true
		}
		return s, s.Value == out.IP
	case linDetach:
		if out.Unknown {
			return linState{}, true
		}
		return linState{}, out.Removed == s.Present
	case linRead:
		if out.Present != s.Present {
			return s, false
		}
		if !s.Present {
			return s, true
		}
		if s.Value == "" {
			return linState{Present: true, Value: out.IP}, true
		}
		return s, s.Value == out.IP
	}
	return s, false
}

// linHistory records operations from concurrent clients. Times are
// nanoseconds since the history began, on the monotonic clock.
type linHistory struct {
	base time.Time

	mu      sync.Mutex
	ops     []porcupine.Operation
	clients int
	perKey  map[string]int
}

func newLinHistory() *linHistory {
	return &linHistory{base: time.Now(), perKey: map[string]int{}}
}

func (h *linHistory) now() int64 { return int64(time.Since(h.base)) }

// newClient returns a fresh client id. A client whose operation's outcome
// is unknown goes on under a new id: the old one never returned.
func (h *linHistory) newClient() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clients++
	return h.clients - 1
}

// pendingReturn marks an operation whose outcome is unknown; check gives it
// a return after every other event.
const pendingReturn = math.MaxInt64

// add records one operation.
func (h *linHistory) add(client int, in linInput, call, ret int64, out linOutput, meta linMeta) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if out.Unknown {
		ret = pendingReturn
	}
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret, Metadata: meta})
	h.perKey[in.Key]++
}

// count is how many operations were recorded on a key.
func (h *linHistory) count(key string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.perKey[key]
}

// linStats summarises a history.
type linStats struct {
	ops, pending int
	perKey       map[string]int
	kinds        map[linKind]int
	unknownBy    map[string]int // operations of unknown outcome, by gRPC code
}

func (s linStats) String() string {
	keys := make([]string, 0, len(s.perKey))
	for k := range s.perKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var per []string
	for _, k := range keys {
		per = append(per, fmt.Sprintf("%s %d", k, s.perKey[k]))
	}
	codes := make([]string, 0, len(s.unknownBy))
	for c, n := range s.unknownBy {
		codes = append(codes, fmt.Sprintf("%s %d", c, n))
	}
	sort.Strings(codes)
	return fmt.Sprintf("%d operations: put %d, get %d, attach %d, detach %d, read %d; %d writes of unknown outcome (%s); per key: %s",
		s.ops, s.kinds[linPut], s.kinds[linGet], s.kinds[linAttach], s.kinds[linDetach], s.kinds[linRead], s.pending, strings.Join(codes, ", "), strings.Join(per, ", "))
}

// operations returns the history for porcupine: operations whose outcome
// is unknown return after everything else.
func (h *linHistory) operations() ([]porcupine.Operation, linStats) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := linStats{perKey: map[string]int{}, kinds: map[linKind]int{}, unknownBy: map[string]int{}}
	var end int64
	for _, op := range h.ops {
		if op.Return != pendingReturn {
			end = max(end, op.Return)
		}
		end = max(end, op.Call)
	}
	ops := make([]porcupine.Operation, len(h.ops))
	copy(ops, h.ops)
	for i := range ops {
		if ops[i].Return == pendingReturn {
			ops[i].Return = end + 1
			st.pending++
			st.unknownBy[ops[i].Metadata.(linMeta).Err]++
		}
		in := ops[i].Input.(linInput)
		st.perKey[in.Key]++
		st.kinds[in.Kind]++
	}
	st.ops = len(ops)
	return ops, st
}

// linCheck checks a history with porcupine (within timeout) and, unless it
// is linearizable, writes porcupine's visualization of it to a file whose
// path it returns (under $SDN_TEST_ARTIFACTS when set, else under dir) and
// logs which keys have no linearization, and where theirs stops.
func linCheck(t *testing.T, model porcupine.Model, ops []porcupine.Operation, timeout time.Duration, dir, name string) (porcupine.CheckResult, time.Duration, string) {
	t.Helper()
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(model, ops, timeout)
	took := time.Since(start)
	if res == porcupine.Ok {
		return res, took, ""
	}
	if res == porcupine.Illegal {
		t.Log(linExplain(model, ops, info))
	}
	if a := os.Getenv("SDN_TEST_ARTIFACTS"); a != "" {
		dir = a
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("visualization: %v", err)
		return res, took, ""
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%s.html", name, time.Now().Format("20060102-150405")))
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		t.Errorf("visualization: %v", err)
		return res, took, ""
	}
	return res, took, path
}

// TestLinearizabilityModel checks the model on small hand-made histories: what it must
// accept (writes of unknown outcome that did or did not happen, an IP first
// seen after such an attach) and what it must refuse (a stale read, an IP
// that changes while the workload exists, a detach that found nothing
// although the workload existed).
func TestLinearizabilityModel(t *testing.T) {
	init := func(key string) linState {
		if key == "r" {
			return linState{Present: true, Value: "0"}
		}
		return linState{}
	}
	op := func(client int, call, ret int64, in linInput, out linOutput) porcupine.Operation {
		if out.Unknown {
			ret = 1000
		}
		return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
	}
	put := func(v string) linInput { return linInput{Key: "r", Kind: linPut, Value: v} }
	get := linInput{Key: "r", Kind: linGet}
	attach := linInput{Key: "w", Kind: linAttach}
	detach := linInput{Key: "w", Kind: linDetach}
	read := linInput{Key: "w", Kind: linRead}
	unknown := linOutput{Unknown: true}
	for _, tc := range []struct {
		name string
		ok   bool
		h    []porcupine.Operation
	}{
		{"register in order", true, []porcupine.Operation{
			op(0, 0, 1, put("a"), linOutput{}), op(1, 2, 3, get, linOutput{Value: "a"})}},
		{"stale read after a write returned", false, []porcupine.Operation{
			op(0, 0, 1, put("a"), linOutput{}), op(1, 2, 3, get, linOutput{Value: "0"})}},
		{"concurrent read sees either", true, []porcupine.Operation{
			op(0, 0, 5, put("a"), linOutput{}), op(1, 1, 2, get, linOutput{Value: "0"}), op(2, 3, 4, get, linOutput{Value: "a"})}},
		{"unknown write never applied", true, []porcupine.Operation{
			op(0, 0, 0, put("a"), unknown), op(1, 2, 3, get, linOutput{Value: "0"})}},
		{"unknown write applied later", true, []porcupine.Operation{
			op(0, 0, 0, put("a"), unknown), op(1, 2, 3, get, linOutput{Value: "0"}), op(2, 4, 5, get, linOutput{Value: "a"})}},
		{"unknown write undone", false, []porcupine.Operation{
			op(0, 0, 0, put("a"), unknown), op(1, 2, 3, get, linOutput{Value: "a"}), op(2, 4, 5, get, linOutput{Value: "0"})}},
		{"attach is create-if-absent", true, []porcupine.Operation{
			op(0, 0, 1, attach, linOutput{IP: "10.0.0.2"}), op(1, 2, 3, attach, linOutput{IP: "10.0.0.2"}),
			op(0, 4, 5, read, linOutput{Present: true, IP: "10.0.0.2"}), op(1, 6, 7, detach, linOutput{Removed: true}),
			op(0, 8, 9, read, linOutput{}), op(1, 10, 11, attach, linOutput{IP: "10.0.0.3"})}},
		{"IP changes while present", false, []porcupine.Operation{
			op(0, 0, 1, attach, linOutput{IP: "10.0.0.2"}), op(1, 2, 3, attach, linOutput{IP: "10.0.0.3"})}},
		{"detach finds nothing after an attach", false, []porcupine.Operation{
			op(0, 0, 1, attach, linOutput{IP: "10.0.0.2"}), op(1, 2, 3, detach, linOutput{Removed: false})}},
		{"unknown attach, IP seen by a read", true, []porcupine.Operation{
			op(0, 0, 0, attach, unknown), op(1, 2, 3, read, linOutput{Present: true, IP: "10.0.0.9"}),
			op(1, 4, 5, attach, linOutput{IP: "10.0.0.9"})}},
		{"unknown attach, IP then changes", false, []porcupine.Operation{
			op(0, 0, 0, attach, unknown), op(1, 2, 3, read, linOutput{Present: true, IP: "10.0.0.9"}),
			op(1, 4, 5, read, linOutput{Present: true, IP: "10.0.0.8"})}},
		{"keys are independent", true, []porcupine.Operation{
			op(0, 0, 1, put("a"), linOutput{}), op(1, 2, 3, read, linOutput{}), op(2, 4, 5, get, linOutput{Value: "a"})}},
	} {
		if got := porcupine.CheckOperations(linModel(init), tc.h); got != tc.ok {
			t.Errorf("%s: linearizable = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

// linExplain says, for each key whose history has no linearization, the
// end of the longest linearizable part porcupine found and the earliest
// operations that cannot follow it.
func linExplain(model porcupine.Model, ops []porcupine.Operation, info porcupine.LinearizationInfo) string {
	var b strings.Builder
	parts := model.Partition(ops)
	partials := info.PartialLinearizationsOperations()
	ms := func(ns int64) string { return time.Duration(ns).Round(time.Millisecond).String() }
	describe := func(op porcupine.Operation) string {
		m, _ := op.Metadata.(linMeta)
		ret := ms(op.Return)
		if op.Output.(linOutput).Unknown {
			ret = "end"
		}
		return fmt.Sprintf("[%s..%s] client %d: %s (%s)", ms(op.Call), ret, op.ClientId, model.DescribeOperation(op.Input, op.Output), model.DescribeOperationMetadata(m))
	}
	for p, part := range parts {
		if p >= len(partials) {
			break
		}
		var longest []porcupine.Operation
		for _, l := range partials[p] {
			if len(l) > len(longest) {
				longest = l
			}
		}
		if len(longest) == len(part) {
			continue
		}
		key := part[0].Input.(linInput).Key
		fmt.Fprintf(&b, "key %s: none of the orders of its %d operations is legal; the longest legal prefix porcupine found has %d, ending:\n", key, len(part), len(longest))
		var st any = model.Init()
		states := make([]any, len(longest))
		for i, op := range longest {
			_, st = model.Step(st, op.Input, op.Output)
			states[i] = st
		}
		for i := max(0, len(longest)-6); i < len(longest); i++ {
			fmt.Fprintf(&b, "    %s  => %s\n", describe(longest[i]), model.DescribeState(states[i]))
		}
		in := map[[2]int64]bool{}
		for _, op := range longest {
			in[[2]int64{op.Call, int64(op.ClientId)}] = true
		}
		var rest []porcupine.Operation
		for _, op := range part {
			if !in[[2]int64{op.Call, int64(op.ClientId)}] {
				rest = append(rest, op)
			}
		}
		sort.Slice(rest, func(i, j int) bool { return rest[i].Call < rest[j].Call })
		fmt.Fprintf(&b, "  and none of these can come next (earliest called first):\n")
		for _, op := range rest[:min(4, len(rest))] {
			fmt.Fprintf(&b, "    %s\n", describe(op))
		}
	}
	return b.String()
}
