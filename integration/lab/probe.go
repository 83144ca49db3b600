package lab

import (
	"bufio"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Target is one probe of a workload: a protocol ("tcp" or "udp") and port
// on its address.
type Target struct {
	To       *Workload
	Protocol string
	Port     int
}

// String is sdnprobe's form, "10.128.0.5:tcp:80".
func (t Target) String() string { return t.To.IP + ":" + t.Protocol + ":" + strconv.Itoa(t.Port) }

// Server is `sdnprobe serve` running in a workload's namespace.
type Server struct {
	W   *Workload
	cmd *exec.Cmd
}

// Serve starts `sdnprobe serve` (from the lab's Bin) in w's namespace,
// accepting TCP on tcpPorts and echoing UDP on udpPorts, and returns once it
// listens. Stop it with Stop.
func (l *Lab) Serve(w *Workload, tcpPorts, udpPorts []int) (*Server, error) {
	join := func(ps []int) string {
		var s []string
		for _, p := range ps {
			s = append(s, strconv.Itoa(p))
		}
		return strings.Join(s, ",")
	}
	cmd := exec.Command("ip", "netns", "exec", w.NS, filepath.Join(l.Bin, "sdnprobe"), "serve",
		"-tcp", join(tcpPorts), "-udp", join(udpPorts))
	return startReady(cmd, w)
}

// startReady starts an sdnprobe server and returns once it printed
// "ready".
func startReady(cmd *exec.Cmd, w *Workload) (*Server, error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s in %s: %w", filepath.Base(cmd.Args[4])+" "+cmd.Args[5], w.ID(), err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ready <- sc.Scan() && sc.Text() == "ready"
		for sc.Scan() {
		}
	}()
	select {
	case ok := <-ready:
		if ok {
			return &Server{W: w, cmd: cmd}, nil
		}
	case <-time.After(10 * time.Second):
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return nil, fmt.Errorf("%s in %s did not get ready: %s", filepath.Base(cmd.Args[4])+" "+cmd.Args[5], w.ID(), strings.TrimSpace(stderr.String()))
}

// Stop ends the server.
func (s *Server) Stop() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

// Probe tries every target from inside from's namespace at once (one
// sdnprobe process), each with timeout, and returns which were reached.
func (l *Lab) Probe(from *Workload, targets []Target, timeout time.Duration) (map[Target]bool, error) {
	if len(targets) == 0 {
		return map[Target]bool{}, nil
	}
	var list []string
	for _, t := range targets {
		list = append(list, t.String())
	}
	out, err := l.Exec(from.NS, filepath.Join(l.Bin, "sdnprobe"), "probe",
		"-targets", strings.Join(list, ","), "-timeout", timeout.String())
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(targets) {
		return nil, fmt.Errorf("sdnprobe probe in %s: %d lines for %d targets:\n%s", from.ID(), len(lines), len(targets), out)
	}
	got := map[Target]bool{}
	for i, t := range targets {
		if !strings.HasPrefix(lines[i], list[i]+" ") {
			return nil, fmt.Errorf("sdnprobe probe in %s: line %q is not about %s", from.ID(), lines[i], list[i])
		}
		got[t] = strings.HasSuffix(lines[i], " ok")
	}
	return got, nil
}

// ProbeFrom maps each source workload to the targets it probes.
type ProbeFrom map[*Workload][]Target

// ProbeAll runs Probe for every source at once (one process per source
// namespace) and returns what each reached, keyed by source then target.
func (l *Lab) ProbeAll(plan ProbeFrom, timeout time.Duration) (map[*Workload]map[Target]bool, error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	res := map[*Workload]map[Target]bool{}
	for from, ts := range plan {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := l.Probe(from, ts, timeout)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			res[from] = got
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return res, nil
}
