package lab

import (
	"fmt"
	"strings"
	"sync"
	"text/tabwriter"
)

// Matrix says which workload reaches which: Reach[a][b] for workload IDs
// a != b. IDs keeps the order of rows and columns. A matrix from the model
// (ModelMatrix) also says, for a denied pair, which policy denied it
// (Why[a][b], "" for the isolation mode's baseline) and the model's words
// (Reason[a][b]).
type Matrix struct {
	IDs    []string
	Reach  map[string]map[string]bool
	Why    map[string]map[string]string
	Reason map[string]map[string]string
}

func newMatrix(ws []*Workload) Matrix {
	m := Matrix{Reach: map[string]map[string]bool{}, Why: map[string]map[string]string{}, Reason: map[string]map[string]string{}}
	for _, w := range ws {
		m.IDs = append(m.IDs, w.ID())
		m.Reach[w.ID()] = map[string]bool{}
		m.Why[w.ID()] = map[string]string{}
		m.Reason[w.ID()] = map[string]string{}
	}
	return m
}

func (m Matrix) set(a, b string, ok bool) { m.Reach[a][b] = ok }

func (m Matrix) explain(a, b, policy, reason string) {
	m.Why[a][b], m.Reason[a][b] = policy, reason
}

// Matrix pings every ordered pair of distinct workloads once (one echo,
// 1 s timeout), in parallel, and returns who reached whom.
func (l *Lab) Matrix(ws []*Workload) Matrix { return MatrixBy(ws, 64, l.Ping) }

// MatrixBy is Matrix with another way to ping (the VM labs ping over SSH),
// at most par pings at a time.
func MatrixBy(ws []*Workload, par int, ping func(from *Workload, ip string) bool) Matrix {
	m := newMatrix(ws)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, par)
	for _, a := range ws {
		for _, b := range ws {
			if a == b {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				ok := ping(a, b.IP)
				<-sem
				mu.Lock()
				m.set(a.ID(), b.ID(), ok)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	return m
}

// Expected is the matrix the isolation mode promises for ws, given the
// networks (name → admin) and no policies: flat lets every workload reach
// every other; multitenant lets workloads of one network reach each other
// and the admin network reach and be reached by all; policy isolates
// networks (the admin one included) and, with no policy declared, lets a
// network's own workloads talk.
func Expected(isolation string, ws []*Workload, networks map[string]bool) Matrix {
	m := newMatrix(ws)
	for _, a := range ws {
		for _, b := range ws {
			if a == b {
				continue
			}
			var ok bool
			switch isolation {
			case "flat":
				ok = true
			case "policy":
				ok = a.Network == b.Network
			default: // multitenant
				ok = a.Network == b.Network || networks[a.Network] || networks[b.Network]
			}
			m.set(a.ID(), b.ID(), ok)
		}
	}
	return m
}

// Diff lists the ordered pairs where got differs from want, as
// "host1/proj1 -> host2/proj2: reached, expected isolated".
func Diff(got, want Matrix) []string {
	var out []string
	for _, a := range want.IDs {
		for _, b := range want.IDs {
			if a == b {
				continue
			}
			g, w := got.Reach[a][b], want.Reach[a][b]
			if g != w {
				out = append(out, fmt.Sprintf("%s -> %s: %s, expected %s", a, b, reachWord(g), reachWord(w)))
			}
		}
	}
	return out
}

func reachWord(ok bool) string {
	if ok {
		return "reached"
	}
	return "isolated"
}

// String renders the matrix as a table: rows are sources, columns
// destinations; "ok" reached, "-" did not, "." is the workload itself.
// Column headers shorten "host1/proj1" to "h1/proj1".
func (m Matrix) String() string { return m.Explained(Matrix{}) }

// Explained renders m like String, but a pair m did not reach that why (a
// matrix from the model) says a policy denied is "x:NAME" (the policy's
// name without its network), with a legend below naming each such policy
// in full, with the model's words for one of its pairs.
func (m Matrix) Explained(why Matrix) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "FROM \\ TO")
	for _, id := range m.IDs {
		fmt.Fprint(tw, "\t", strings.Replace(id, "host", "h", 1))
	}
	fmt.Fprintln(tw)
	for _, a := range m.IDs {
		fmt.Fprint(tw, a)
		for _, c := range m.IDs {
			cell := "-"
			switch {
			case a == c:
				cell = "."
			case m.Reach[a][c]:
				cell = "ok"
			case why.Why[a][c] != "":
				cell = "x:" + shortPolicy(why.Why[a][c])
			}
			fmt.Fprint(tw, "\t", cell)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	return b.String() + m.legend(why)
}

// legend explains the cells of Explained: each policy that denied a pair,
// with the model's words for the first such pair.
func (m Matrix) legend(why Matrix) string {
	var lines []string
	seen := map[string]bool{}
	for _, a := range m.IDs {
		for _, c := range m.IDs {
			p := why.Why[a][c]
			if a == c || m.Reach[a][c] || p == "" || seen[p] {
				continue
			}
			seen[p] = true
			lines = append(lines, fmt.Sprintf("  x:%s  denied by policy %s, e.g. %s -> %s: %s", shortPolicy(p), p, a, c, why.Reason[a][c]))
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return "ok reached; - isolated by the isolation mode (no policy decided); . itself;\n" + strings.Join(lines, "\n") + "\n"
}
