package integration

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/integration/lab"
)

// The policy tests' probes: two TCP ports and one UDP port, served by
// `sdnprobe serve` in every workload.
var (
	probeTCP   = []int{80, 81}
	probeUDP   = []int{53}
	probePorts = []probePort{{"tcp", 80}, {"tcp", 81}, {"udp", 53}}
)

// probeTimeout is how long a probe waits for an answer: a blocked probe
// needs none (no RST, no ICMP), so this bounds every blocked cell.
const probeTimeout = 400 * time.Millisecond

type probePort struct {
	proto string
	n     int
}

func (p probePort) String() string { return fmt.Sprintf("%s/%d", p.proto, p.n) }

// pw is a workload of a policy test: where it runs and what it declares.
type pw struct {
	id     string // the test's short name, e.g. "p1x"
	host   string
	net    string
	labels map[string]string
	ports  map[string]string // named ports, e.g. http -> tcp/80
	w      *lab.Workload
}

// policyLab brings up a 2-host lab from examples/ and attaches ws by the
// real CNI plugin (each serving probeTCP and probeUDP), in parallel.
func policyLab(t *testing.T, prefix string, ws []*pw) *lab.Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, progress := upLab(ctx, t, prefix, 2)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []string
	)
	for _, x := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := l.AttachWith(x.host, x.net, x.id, x.labels, x.ports)
			if err == nil {
				var s *lab.Server
				if s, err = l.Serve(w, probeTCP, probeUDP); err == nil {
					t.Cleanup(s.Stop)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err.Error())
			}
			x.w = w
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("attach: %s\n%s", strings.Join(errs, "\n"), progress)
	}
	if err := l.WaitRealized(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	return l
}

// waitRealized waits until every host realized the current revision.
func waitRealized(t *testing.T, l *lab.Lab) {
	t.Helper()
	if err := l.WaitRealized(context.Background(), time.Minute); err != nil {
		t.Fatal(err)
	}
}

// cell is one probe: from, to, port.
type cell struct {
	from, to *pw
	port     probePort
}

// observed is what the packets and the model said of a cell.
type observed struct {
	packets bool
	verdict bool
	reason  string // the model's words when it denied
}

// observe probes every cell by real packets (one sdnprobe per source, all
// at once) and asks the model (Verdict RPC) about each. A cell whose
// packets were blocked against the expectation is probed once more with
// a longer timeout, so a lost first packet is not a failure.
func observe(t *testing.T, l *lab.Lab, cells []cell, want func(cell) bool) map[cell]observed {
	t.Helper()
	got := map[cell]observed{}
	reached, err := probeCells(l, cells, probeTimeout)
	if err != nil {
		t.Fatal(err)
	}
	var again []cell
	for _, c := range cells {
		if !reached[c] && want(c) {
			again = append(again, c)
		}
	}
	if len(again) > 0 {
		second, err := probeCells(l, again, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for c, ok := range second {
			reached[c] = ok
		}
	}
	v, err := l.Verdicter()
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	sem := make(chan struct{}, 8)
	for _, c := range cells {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r, err := v.Verdict(ctx, c.from.w, c.to.w, c.port.proto, c.port.n)
			cancel()
			<-sem
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			o := observed{packets: reached[c], verdict: r.GetAllowed()}
			if d := lab.Denial(r); d != nil {
				o.reason = d.GetReason()
			}
			got[c] = o
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	return got
}

// probeCells runs the packet probes of cells.
func probeCells(l *lab.Lab, cells []cell, timeout time.Duration) (map[cell]bool, error) {
	plan := lab.ProbeFrom{}
	back := map[*lab.Workload]map[lab.Target]cell{}
	for _, c := range cells {
		tg := lab.Target{To: c.to.w, Protocol: c.port.proto, Port: c.port.n}
		plan[c.from.w] = append(plan[c.from.w], tg)
		if back[c.from.w] == nil {
			back[c.from.w] = map[lab.Target]cell{}
		}
		back[c.from.w][tg] = c
	}
	res, err := l.ProbeAll(plan, timeout)
	if err != nil {
		return nil, err
	}
	out := map[cell]bool{}
	for from, m := range res {
		for tg, ok := range m {
			out[back[from][tg]] = ok
		}
	}
	return out, nil
}

// checkCells compares packets and verdicts with want for every cell and,
// on any difference, fails with the whole table (each cell: the expected
// answer per port, "a" allowed, "." denied; a "!" marks a cell where the
// packets or the model differ) and each differing cell with the model's
// reason.
func checkCells(t *testing.T, ws []*pw, cells []cell, want func(cell) bool, got map[cell]observed) {
	t.Helper()
	var bad []string
	wrong := map[[2]*pw]bool{}
	for _, c := range cells {
		o := got[c]
		e := want(c)
		if o.packets == e && o.verdict == e {
			continue
		}
		wrong[[2]*pw{c.from, c.to}] = true
		bad = append(bad, fmt.Sprintf("%s -> %s %s: expected %s, packets %s, verdict %s%s",
			c.from.id, c.to.id, c.port, word(e), word(o.packets), word(o.verdict), because(o.reason)))
	}
	if len(bad) == 0 {
		return
	}
	sort.Strings(bad)
	width := 4
	for _, w := range ws {
		width = max(width, len(w.id))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d cells differ from the expectation (cells: expected %s, a allowed, . denied; ! differs):\n%-*s", len(bad), portsWord(), width, "")
	for _, to := range ws {
		fmt.Fprintf(&b, " %-*s", width, to.id)
	}
	b.WriteString("\n")
	for _, from := range ws {
		fmt.Fprintf(&b, "%-*s", width, from.id)
		for _, to := range ws {
			s := ""
			for _, p := range probePorts {
				switch {
				case from == to:
					s += "-"
				case want(cell{from, to, p}):
					s += "a"
				default:
					s += "."
				}
			}
			if wrong[[2]*pw{from, to}] {
				s += "!"
			}
			fmt.Fprintf(&b, " %-*s", width, s)
		}
		b.WriteString("\n")
	}
	t.Errorf("%s%s", b.String(), strings.Join(bad, "\n"))
}

func word(ok bool) string {
	if ok {
		return "allowed"
	}
	return "denied"
}

func because(reason string) string {
	if reason == "" {
		return ""
	}
	return " (model: " + reason + ")"
}

func portsWord() string {
	var s []string
	for _, p := range probePorts {
		s = append(s, p.String())
	}
	return strings.Join(s, ",")
}

// allCells is every ordered pair of distinct workloads on every probe port.
func allCells(ws []*pw) []cell {
	var cells []cell
	for _, a := range ws {
		for _, b := range ws {
			if a == b {
				continue
			}
			for _, p := range probePorts {
				cells = append(cells, cell{a, b, p})
			}
		}
	}
	return cells
}
