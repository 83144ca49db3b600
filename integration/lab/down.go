package lab

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sdn-dev/sdn/datapath/link"
)

// Down removes everything the lab made and nothing else: its sdnd and OVS
// daemons (by pidfile, then any lab daemon whose command line still names
// DIR), its namespaces (by name: NAME-ul, NAME-hN, NAME-sK, NAME-hostN-W; their links
// go with them) and DIR (only if DIR/lab.json says it is this lab's). It is
// safe to call twice and works on a Lab from Open in a fresh process.
func (l *Lab) Down() error {
	var errs []error
	hosts := l.knownHosts()
	// Stop the agents first, so none reacts to its datapath going away.
	for _, i := range hosts {
		if err := l.sdnd(i).stop(15 * time.Second); err != nil {
			errs = append(errs, fmt.Errorf("%s: stop sdnd: %w", HostName(i), err))
		}
	}
	// Separate servers (UpServers), after the agents that talk to them.
	if err := l.stopServers(); err != nil {
		errs = append(errs, err)
	}
	for _, i := range hosts {
		if err := l.stopHost(i); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", HostName(i), err))
		}
	}
	// Also when DIR is gone (removed by hand, or a test's temporary dir).
	for _, pid := range procsUnder(l.Dir) {
		l.logf("stopping leftover process %d (%s)", pid, strings.TrimSpace(strings.ReplaceAll(string(cmdline(pid)), "\x00", " ")))
		if err := kill(pid, 5*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	nss, err := l.namespaces()
	if err != nil {
		errs = append(errs, err)
	}
	for _, ns := range nss {
		if err := link.DeleteNS(ns); err != nil {
			errs = append(errs, err)
		}
	}
	if len(nss) > 0 {
		l.logf("deleted network namespaces %s", strings.Join(nss, " "))
	}
	if err := l.removeDir(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// knownHosts returns the hosts to stop: 1..Hosts and every DIR/hostN.
func (l *Lab) knownHosts() []int {
	seen := map[int]bool{}
	for i := 1; i <= l.Hosts; i++ {
		seen[i] = true
	}
	ents, _ := os.ReadDir(l.Dir)
	for _, e := range ents {
		if n, ok := strings.CutPrefix(e.Name(), "host"); ok && e.IsDir() && isDigits(n) {
			if i, err := strconv.Atoi(n); err == nil && i > 0 {
				seen[i] = true
			}
		}
	}
	var hosts []int
	for i := range seen {
		hosts = append(hosts, i)
	}
	sort.Ints(hosts)
	return hosts
}

// namespaces returns the lab's namespaces that exist, workloads first, then
// hosts, then the underlay, so deleting them in order never strands a link.
func (l *Lab) namespaces() ([]string, error) {
	ents, err := os.ReadDir(link.NSDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var wl, hosts, ul []string
	for _, e := range ents {
		ns := e.Name()
		switch {
		case !nsOfLab(l.Name, ns) && !serverNSOfLab(l.Name, ns):
		case ns == l.UnderlayNS():
			ul = append(ul, ns)
		case strings.HasPrefix(ns, l.Name+"-host"):
			wl = append(wl, ns)
		default:
			hosts = append(hosts, ns)
		}
	}
	return append(append(wl, hosts...), ul...), nil
}

// removeDir removes DIR if its marker names this lab.
func (l *Lab) removeDir() error {
	m, ok, err := readMarker(l.Dir)
	if err != nil {
		return err
	}
	if !ok {
		if _, err := os.Stat(l.Dir); err == nil {
			l.logf("%s holds no lab.json; leaving it", l.Dir)
		}
		return nil
	}
	if m.Name != l.Name {
		return fmt.Errorf("%s belongs to lab %q, not %q; not removing it", l.Dir, m.Name, l.Name)
	}
	if err := os.RemoveAll(l.Dir); err != nil {
		return err
	}
	l.logf("removed %s", l.Dir)
	return nil
}
