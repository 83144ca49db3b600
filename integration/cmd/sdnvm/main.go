// Command sdnvm prints the connectivity matrix of a lab whose hosts are
// virtual machines reached over SSH: the Vagrant lab (`make vm-lab`,
// `make vm-matrix`; docs/vagrant.md).
//
// Usage (from the module's root, on the machine that ran `vagrant up`):
//
//	vagrant ssh-config > FILE
//	sdnvm matrix --dir .vm-lab/lab --ssh-config FILE [--name vagrant]
//
// DIR is the lab's directory as `sdnlab prepare` made it (lab.json, hcl/);
// every host hostI of the lab is the SSH host of that name in FILE, and its
// workloads are the ones vm/provision.sh attached there (records in
// /var/lib/sdn-lab/hostI/workloads/). Every workload pings every other
// once (one echo, 1 s), all of one host's pings in one SSH session, and
// the matrix is printed as `make lab` prints it (lab.Matrix.String) and
// checked against what the HCL's isolation mode promises with no policies
// (lab.Expected); sdnvm exits 1 if a pair differs.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sdn-dev/sdn/integration/lab"
	"github.com/sdn-dev/sdn/integration/vm"
)

// remoteDir is the lab's directory inside every VM (vm/provision.sh's
// SDN_LAB_DIR default).
const remoteDir = "/var/lib/sdn-lab"

func main() {
	if len(os.Args) < 2 || os.Args[1] != "matrix" {
		usage()
	}
	fs := flag.NewFlagSet("sdnvm matrix", flag.ExitOnError)
	name := fs.String("name", "vagrant", "the lab's name (sdnlab prepare --name)")
	dir := fs.String("dir", ".vm-lab/lab", "the lab's directory (sdnlab prepare --dir)")
	sshConfig := fs.String("ssh-config", "", "an ssh_config naming every host hostI (vagrant ssh-config > FILE)")
	if err := fs.Parse(os.Args[2:]); err != nil || fs.NArg() > 0 || *sshConfig == "" {
		usage()
	}
	if err := matrix(os.Stdout, *name, *dir, *sshConfig); err != nil {
		fmt.Fprintln(os.Stderr, "sdnvm:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: sdnvm matrix --ssh-config FILE [--dir .vm-lab/lab] [--name vagrant]")
	os.Exit(2)
}

// hosts runs commands on the lab's VMs over SSH with one ssh_config.
type hosts struct {
	config string
	n      int
}

// asRoot is the remote command that runs the script on its standard
// input as root: the local box logs in as root (and has no sudo), a
// public box as vagrant.
const asRoot = `$([ "$(id -u)" = 0 ] || echo sudo -n) sh`

// run runs a shell script as root on host i and returns its stdout.
func (h hosts) run(i int, script string) (string, error) {
	cmd := exec.Command("ssh", "-F", h.config, "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", lab.HostName(i), asRoot)
	var out, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(script), &out, &stderr
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %s: %w: %s", lab.HostName(i), firstLine(script), err, strings.TrimSpace(stderr.String()))
	}
	return out.String(), nil
}

// each runs fn for every host in parallel and joins the errors.
func (h hosts) each(fn func(i int) error) error {
	errs := make([]error, h.n)
	var wg sync.WaitGroup
	for i := 1; i <= h.n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i-1] = fn(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func matrix(w io.Writer, name, dir, sshConfig string) error {
	l, err := lab.Open(name, dir, io.Discard)
	if err != nil {
		return err
	}
	if l.Hosts < 1 {
		return fmt.Errorf("%s holds no lab %q (no lab.json): run sdnlab prepare first", dir, name)
	}
	networks, isolation, err := l.Networks()
	if err != nil {
		return err
	}
	h := hosts{config: sshConfig, n: l.Hosts}
	ws, err := workloads(h)
	if err != nil {
		return err
	}
	if len(ws) < 2 {
		return fmt.Errorf("%d workloads attached in the VMs; vm/provision.sh attaches one per network per host", len(ws))
	}
	// Right after provisioning the last host, the others may not have
	// realized its workloads yet: ping only once every host has.
	status := func() (string, error) {
		return h.run(1, fmt.Sprintf("%s/sdnctl --server unix://%s/host1/api.sock --tls-ca %s/tls/ca.crt --tls-cert %s/tls/client-admin.crt --tls-key %s/tls/client-admin.key status -o json",
			vm.RemoteBin, vm.RemoteDir, vm.RemoteDir, vm.RemoteDir, vm.RemoteDir))
	}
	if err := vm.WaitRealized(status, l.Hosts, 3*time.Minute); err != nil {
		return err
	}
	if err := warmUnderlay(h, l); err != nil {
		return err
	}
	start := time.Now()
	got, err := pingAll(h, ws)
	if err != nil {
		return err
	}
	want := lab.Expected(isolation, ws, networks)
	fmt.Fprintf(w, "connectivity (%s isolation, %d workloads, %d pings in %.1fs):\n",
		isolation, len(ws), len(ws)*(len(ws)-1), time.Since(start).Seconds())
	fmt.Fprint(w, got.String())
	if diff := lab.Diff(got, want); len(diff) > 0 {
		// Ping the differing pairs again, as `make lab` does: a pair that
		// answers now lost only its first packet, which says where to look.
		again, err := pingAll(h, ws)
		if err != nil {
			return err
		}
		k := 0
		for _, a := range want.IDs {
			for _, b := range want.IDs {
				if a != b && got.Reach[a][b] != want.Reach[a][b] {
					diff[k] += fmt.Sprintf(" (pinged again: %s)", word(again.Reach[a][b]))
					k++
				}
			}
		}
		return fmt.Errorf("connectivity differs from what %s isolation promises in %d pairs:\n  %s",
			isolation, len(diff), strings.Join(diff, "\n  "))
	}
	fmt.Fprintf(w, "matches %s isolation (no policies applied)\n", isolation)
	return nil
}

// workloads reads every host's workload records.
func workloads(h hosts) ([]*lab.Workload, error) {
	var (
		mu sync.Mutex
		ws []*lab.Workload
	)
	err := h.each(func(i int) error {
		out, err := h.run(i, fmt.Sprintf("cat %s/%s/workloads/*.json", remoteDir, lab.HostName(i)))
		if err != nil {
			return err
		}
		dec := json.NewDecoder(strings.NewReader(out))
		for {
			var wl lab.Workload
			if err := dec.Decode(&wl); err == io.EOF {
				return nil
			} else if err != nil {
				return fmt.Errorf("%s: workload records: %w", lab.HostName(i), err)
			}
			mu.Lock()
			ws = append(ws, &wl)
			mu.Unlock()
		}
	})
	sort.Slice(ws, func(a, b int) bool {
		ia, ib := lab.ParseHost(ws[a].Host), lab.ParseHost(ws[b].Host)
		if ia != ib {
			return ia < ib
		}
		return ws[a].Name < ws[b].Name
	})
	return ws, err
}

// pingAll pings every ordered pair once, each host's pings in one SSH
// session, in parallel there (vm.PingMatrix, as the QEMU lab's matrix).
func pingAll(h hosts, ws []*lab.Workload) (lab.Matrix, error) {
	return vm.PingMatrix(ws, h.n, 1, func(w *lab.Workload) int { return lab.ParseHost(w.Host) }, h.run)
}

// warmUnderlay pings every host's underlay address from every other host
// once, as the netns lab does before its matrix: the kernel then knows
// each tunnel destination's MAC address before the workloads' first
// packets cross.
func warmUnderlay(h hosts, l *lab.Lab) error {
	return h.each(func(i int) error {
		var script strings.Builder
		for j := 1; j <= l.Hosts; j++ {
			if j != i {
				fmt.Fprintf(&script, "ping -c 1 -W 1 -n -q %s >/dev/null 2>&1 &\n", l.HostIP(j))
			}
		}
		script.WriteString("wait\n")
		_, err := h.run(i, script.String())
		return err
	})
}

func word(ok bool) string {
	if ok {
		return "reached"
	}
	return "isolated"
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
