package lab

import (
	"fmt"
	"strings"
	"sync"
	"text/tabwriter"
)

// Matrix says which workload reaches which: Reach[a][b] for workload IDs
// a != b. IDs keeps the order of rows and columns.
type Matrix struct {
	IDs   []string
	Reach map[string]map[string]bool
}

func newMatrix(ws []*Workload) Matrix {
	m := Matrix{Reach: map[string]map[string]bool{}}
	for _, w := range ws {
		m.IDs = append(m.IDs, w.ID())
		m.Reach[w.ID()] = map[string]bool{}
	}
	return m
}

func (m Matrix) set(a, b string, ok bool) { m.Reach[a][b] = ok }

// Matrix pings every ordered pair of distinct workloads once (one echo,
// 1 s timeout), in parallel, and returns who reached whom.
func (l *Lab) Matrix(ws []*Workload) Matrix {
	m := newMatrix(ws)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, a := range ws {
		for _, b := range ws {
			if a == b {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				ok := l.Ping(a, b.IP)
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
func (m Matrix) String() string {
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
			}
			fmt.Fprint(tw, "\t", cell)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	return b.String()
}
