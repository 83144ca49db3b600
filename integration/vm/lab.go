package vm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/sdn-dev/sdn/integration/lab"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Remote paths inside every VM (vm/provision.sh's defaults).
const (
	RemoteBin = "/opt/sdn/bin"
	RemoteDir = "/var/lib/sdn-lab"
)

// Hosts is what a VM lab needs of its machines, 1-based: run a shell
// command line as root on host i (combined output), start one in the
// background, copy files there. *Cluster (QEMU) is one; anything that
// reaches VMs over SSH (a Vagrant lab's) can be another and reuse
// Provision, Matrix and WaitRealized.
type Hosts interface {
	N() int
	Run(i int, command string) (string, error)
	Start(i int, command string, out *bytes.Buffer) (*exec.Cmd, error)
	Copy(i int, dest string, local ...string) error
}

// Setup says how to provision a lab on Hosts.
type Setup struct {
	Name      string // the lab's name: host i must have address lab.Subnet(Name)+i on Iface
	Iface     string // the underlay interface in the VMs; default eth0
	Bin       string // sdnd, sdnctl, sdn, sdnlab and sdnprobe, built for the VMs
	Script    string // vm/provision.sh
	Dir       string // where lab.Prepare writes the lab's files on this machine
	Isolation string // overrides the HCL files' isolation; "" keeps it
	Examples  string // the HCL applied (lab.Config.Examples); "" = the module's examples/
	Logger    io.Writer
}

// Lab is an sdn lab on VMs: the files lab.Prepare made on this machine
// (its CA and certificates, the HCL applied), copied into every VM, and
// each VM provisioned by vm/provision.sh, the script the Vagrantfile runs
// too.
type Lab struct {
	*lab.Lab // this machine's view: DIR with tls/ and hcl/; Hosts; HostIP(i) = the VMs' addresses
	C        Hosts
	// Workloads are the workloads provision.sh attached, one per network
	// per host, as the netns lab attaches them.
	Workloads []*lab.Workload

	setup Setup
}

func (l *Lab) logf(format string, args ...any) {
	if l.setup.Logger != nil {
		fmt.Fprintf(l.setup.Logger, "vm: "+format+"\n", args...)
	}
}

// Provision prepares the lab's files in s.Dir (lab.Prepare), copies the
// binaries, those files and vm/provision.sh into every VM and runs the
// script there, host1 first, then waits until every host has realized
// every workload.
func Provision(ctx context.Context, h Hosts, s Setup) (*Lab, error) {
	if s.Iface == "" {
		s.Iface = "eth0"
	}
	l, err := lab.Prepare(lab.Config{Name: s.Name, Hosts: h.N(), Dir: s.Dir, Bin: s.Bin, Isolation: s.Isolation, Examples: s.Examples, Logger: s.Logger})
	if err != nil {
		return nil, err
	}
	stage, err := stageFiles(l)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage)
	vl := &Lab{Lab: l, C: h, setup: s}
	if err := each(h.N(), func(i int) error { return vl.copyIn(i, s.Bin, s.Script, stage) }); err != nil {
		return nil, err
	}
	vl.logf("copied the binaries and the lab's files into %d VMs", h.N())
	for i := 1; i <= h.N(); i++ {
		// host1 applies the HCL the others' workloads attach to.
		if err := vl.provision(i); err != nil {
			return nil, err
		}
	}
	lab.SortWorkloads(vl.Workloads)
	// As the netns lab's AttachDefaults: every host knows every workload.
	return vl, vl.WaitRealized(3 * time.Minute)
}

// WaitRealized waits until every host has realized the cluster's current
// revision (sdnctl status on host1, as lab.WaitRealized asks the API).
func (l *Lab) WaitRealized(timeout time.Duration) error {
	return WaitRealized(func() (string, error) { return l.Sdnctl("status", "-o", "json") }, l.C.N(), timeout)
}

// WaitRealized polls status (the output of `sdnctl status -o json`) until
// hosts hosts are registered and every one has realized the cluster's
// current revision, for at most timeout: a lab's matrix pings only then.
func WaitRealized(status func() (string, error), hosts int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		out, err := status()
		var st sdnv1.StatusResponse
		if err == nil {
			err = protojson.Unmarshal([]byte(out), &st)
		}
		var behind []string
		for _, n := range st.GetNodes() {
			if n.GetRealizedRevision() < st.GetRevision() && !n.GetCurrent() {
				behind = append(behind, fmt.Sprintf("%s at %d of %d %s", n.GetName(), n.GetRealizedRevision(), st.GetRevision(), n.GetError()))
			}
		}
		if err == nil && len(behind) == 0 && len(st.GetNodes()) == hosts {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s, not every host realized the current revision: %v; behind: %s", timeout, err, strings.Join(behind, ", "))
		}
		time.Sleep(2 * time.Second)
	}
}

// stageFiles copies what a VM gets of the lab's DIR (lab.json, hcl/, tls/
// without the CA's key) into a temporary directory.
func stageFiles(l *lab.Lab) (string, error) {
	stage, err := os.MkdirTemp("", "sdn-vm-stage-")
	if err != nil {
		return "", err
	}
	out, err := exec.Command("cp", "-a", filepath.Join(l.Dir, "lab.json"), filepath.Join(l.Dir, "hcl"), filepath.Join(l.Dir, "tls"), stage).CombinedOutput()
	if err != nil {
		os.RemoveAll(stage)
		return "", fmt.Errorf("stage the lab's files: %w: %s", err, out)
	}
	return stage, os.Remove(filepath.Join(stage, "tls", "ca.key"))
}

func (l *Lab) copyIn(i int, bin, script, stage string) error {
	if _, err := l.C.Run(i, "mkdir -p "+RemoteBin+" "+RemoteDir); err != nil {
		return err
	}
	var bins []string
	for _, b := range []string{"sdnd", "sdnctl", "sdn", "sdnlab", "sdnprobe"} {
		bins = append(bins, filepath.Join(bin, b))
	}
	if err := l.C.Copy(i, RemoteBin+"/", bins...); err != nil {
		return err
	}
	if err := l.C.Copy(i, "/opt/sdn/provision.sh", script); err != nil {
		return err
	}
	ents, _ := os.ReadDir(stage)
	var files []string
	for _, e := range ents {
		files = append(files, filepath.Join(stage, e.Name()))
	}
	return l.C.Copy(i, RemoteDir+"/", files...)
}

// provision runs vm/provision.sh on VM i and records its workloads.
func (l *Lab) provision(i int) error {
	out, err := l.C.Run(i, fmt.Sprintf("SDN_LAB_NAME=%s /opt/sdn/provision.sh %d %d %s 2>/tmp/provision.log", l.Name, i, l.C.N(), l.setup.Iface))
	logs, _ := l.C.Run(i, "cat /tmp/provision.log")
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		l.logf("  %s", line)
	}
	if err != nil {
		return fmt.Errorf("provision host%d: %w", i, err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var ws []*lab.Workload
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &ws); err != nil {
		return fmt.Errorf("provision host%d: the last line is not the workloads' JSON: %w\n%s", i, err, out)
	}
	l.Workloads = append(l.Workloads, ws...)
	return nil
}

// Host is the VM of workload w.
func (l *Lab) Host(w *lab.Workload) int { return lab.ParseHost(w.Host) }

// Sdnctl runs sdnctl on host1 against its API socket as client-admin.
func (l *Lab) Sdnctl(args ...string) (string, error) {
	return l.C.Run(1, fmt.Sprintf("%s/sdnctl --server unix://%s/host1/api.sock --tls-ca %s/tls/ca.crt --tls-cert %s/tls/client-admin.crt --tls-key %s/tls/client-admin.key %s",
		RemoteBin, RemoteDir, RemoteDir, RemoteDir, RemoteDir, shellJoin(args)))
}

// InNS runs a command line inside workload w's namespace on its VM.
func (l *Lab) InNS(w *lab.Workload, command string) (string, error) {
	return l.C.Run(l.Host(w), "ip netns exec "+w.NS+" "+command)
}

// Matrix pings every ordered pair of ws (one echo, 2 s: TCG is slow), all of a VM's
// pings in one SSH command, and returns who reached whom (lab.MatrixBy,
// as the netns lab's Matrix).
func (l *Lab) Matrix(ws []*lab.Workload) (lab.Matrix, error) {
	return PingMatrix(ws, l.C.N(), 2, l.Host, l.C.Run)
}

// PingMatrix pings every ordered pair of ws once (ping -W wait), each of
// the n hosts' pings in one command run on it (run), in parallel there,
// and returns who reached whom; hostOf says which host a workload is on.
// The QEMU lab and the Vagrant lab (integration/cmd/sdnvm) both use it.
func PingMatrix(ws []*lab.Workload, n, wait int, hostOf func(*lab.Workload) int, run func(i int, script string) (string, error)) (lab.Matrix, error) {
	reached := map[string]bool{}
	var mu sync.Mutex
	err := each(n, func(i int) error {
		var script strings.Builder
		for _, a := range ws {
			if hostOf(a) != i {
				continue
			}
			for _, b := range ws {
				if a != b {
					fmt.Fprintf(&script, "(ip netns exec %s ping -c 1 -W %d -n -q %s >/dev/null 2>&1 && echo '%s %s ok' || echo '%s %s no') &\n",
						a.NS, wait, b.IP, a.NS, b.IP, a.NS, b.IP)
				}
			}
		}
		script.WriteString("wait\n")
		out, err := run(i, script.String())
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) == 3 {
				reached[f[0]+" "+f[1]] = f[2] == "ok"
			}
		}
		return nil
	})
	if err != nil {
		return lab.Matrix{}, err
	}
	return lab.MatrixBy(ws, 1, func(from *lab.Workload, ip string) bool { return reached[from.NS+" "+ip] }), nil
}

// each runs fn for hosts 1..n in parallel and joins the errors.
func each(n int, fn func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(i); err != nil {
				errs[i-1] = err
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for k, a := range args {
		q[k] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

var _ Hosts = (*Cluster)(nil)
