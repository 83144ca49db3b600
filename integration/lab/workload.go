package lab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sdn-dev/sdn/datapath/link"
)

// Workload is a network namespace attached to an sdn network by the CNI
// plugin on one host.
type Workload struct {
	Host    string `json:"host"`    // node name, e.g. "host1"
	Network string `json:"network"` // sdn network
	Name    string `json:"name"`    // lab name, unique per host; sdn name is SDNName()
	NS      string `json:"netns"`   // "<lab>-<host>-<name>"
	IP      string `json:"ip"`      // e.g. "10.128.0.5"
	Address string `json:"address"` // with prefix length, e.g. "10.128.0.5/23"
	MAC     string `json:"mac,omitempty"`
	// ContainerID is CNI_CONTAINERID (the namespace name).
	ContainerID string `json:"container_id"`
	// Result is the plugin's ADD result, given back to it as prevResult
	// on CHECK and DEL, as runtimes do.
	Result json.RawMessage `json:"cni_result,omitempty"`
}

// ID is how tables name the workload: "host1/proj1".
func (w *Workload) ID() string { return w.Host + "/" + w.Name }

// SDNName is the workload's name in its sdn network ("host1-proj1"), unique
// across hosts.
func (w *Workload) SDNName() string { return w.Host + "-" + w.Name }

var workloadNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)

// hostIndex parses "hostN" into N.
func (l *Lab) hostIndex(host string) (int, error) {
	n, ok := strings.CutPrefix(host, "host")
	i, err := strconv.Atoi(n)
	if !ok || err != nil || i < 1 || i > l.Hosts || "host"+strconv.Itoa(i) != host {
		return 0, fmt.Errorf("no host %q in lab %s (hosts are host1..host%d)", host, l.Name, l.Hosts)
	}
	return i, nil
}

func (l *Lab) recordPath(host, name string) string {
	return filepath.Join(l.Dir, host, "workloads", name+".json")
}

// Attach makes the namespace "<lab>-<host>-<name>" and attaches it to
// network by executing the real CNI plugin (bin/sdn) with CNI_COMMAND=ADD,
// as a container runtime would on that host. Attaching a workload that is
// attached already (CNI CHECK passes) returns it unchanged; one that is
// half-attached is detached (DEL) and attached anew.
func (l *Lab) Attach(host, network, name string, labels map[string]string) (*Workload, error) {
	w, _, err := l.attach(host, network, name, labels, nil)
	return w, err
}

// AttachWith is Attach with named ports (name -> "tcp/80", "udp/53"),
// given to the CNI plugin in the network config's "named_ports".
func (l *Lab) AttachWith(host, network, name string, labels, namedPorts map[string]string) (*Workload, error) {
	w, _, err := l.attach(host, network, name, labels, namedPorts)
	return w, err
}

// attach is AttachWith, and also says whether the workload was kept as it
// was.
func (l *Lab) attach(host, network, name string, labels, namedPorts map[string]string) (w *Workload, kept bool, err error) {
	i, err := l.hostIndex(host)
	if err != nil {
		return nil, false, err
	}
	if !workloadNameRE.MatchString(name) {
		return nil, false, fmt.Errorf("workload name %q: want lowercase letters, digits and '-'", name)
	}
	w = &Workload{Host: host, Network: network, Name: name, NS: l.WorkloadNS(host, name)}
	w.ContainerID = w.NS
	created, err := ensureNS(w.NS)
	if err != nil {
		return nil, false, err
	}
	if old, err := l.loadWorkload(host, name); err == nil {
		if !created && old.Network == network {
			if _, err := l.cni(i, "CHECK", old, labels, namedPorts); err == nil {
				return old, true, nil
			}
		}
		// Attached once, and its namespace was lost (or CHECK failed): a
		// runtime would DEL before adding again, so do that.
		_, _ = l.cni(i, "DEL", old, nil, nil)
	}
	out, err := l.cni(i, "ADD", w, labels, namedPorts)
	if err != nil {
		if created {
			_ = link.DeleteNS(w.NS)
		}
		return nil, false, err
	}
	var res struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
		Interfaces []struct {
			Name    string `json:"name"`
			MAC     string `json:"mac"`
			Sandbox string `json:"sandbox"`
		} `json:"interfaces"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.IPs) == 0 {
		return nil, false, fmt.Errorf("attach %s: the CNI plugin printed no address: %q", w.ID(), out)
	}
	p, err := netip.ParsePrefix(res.IPs[0].Address)
	if err != nil {
		return nil, false, fmt.Errorf("attach %s: CNI result address %q: %w", w.ID(), res.IPs[0].Address, err)
	}
	w.Address, w.IP, w.Result = p.String(), p.Addr().String(), out
	for _, itf := range res.Interfaces {
		if itf.Sandbox != "" && itf.Name == "eth0" {
			w.MAC = itf.MAC
		}
	}
	if err := l.saveWorkload(w); err != nil {
		return nil, false, err
	}
	return w, false, nil
}

// Detach runs CNI DEL for the workload and deletes its namespace.
func (l *Lab) Detach(w *Workload) error {
	i, err := l.hostIndex(w.Host)
	if err != nil {
		return err
	}
	if _, err := l.cni(i, "DEL", w, nil, nil); err != nil {
		return err
	}
	if err := link.DeleteNS(w.NS); err != nil {
		return err
	}
	if err := os.Remove(l.recordPath(w.Host, w.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// cni executes the CNI plugin for host i and returns its stdout.
func (l *Lab) cni(i int, command string, w *Workload, labels, namedPorts map[string]string) ([]byte, error) {
	netconf := map[string]any{
		"cniVersion": "1.0.0", "name": "sdn-" + w.Network, "type": "sdn",
		"network": w.Network, "socket": l.CNISocket(i),
	}
	if len(namedPorts) > 0 {
		netconf["named_ports"] = namedPorts
	}
	if command != "ADD" && len(w.Result) > 0 {
		netconf["prevResult"] = w.Result
	}
	conf, _ := json.Marshal(netconf)
	args := []string{"SDN_NAME=" + w.SDNName()}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		args = append(args, k+"="+labels[k])
	}
	cmd := exec.Command(filepath.Join(l.Bin, "sdn"))
	cmd.Env = append(os.Environ(),
		"CNI_COMMAND="+command,
		"CNI_CONTAINERID="+w.ContainerID,
		"CNI_NETNS="+link.NSPath(w.NS),
		"CNI_IFNAME=eth0",
		"CNI_PATH="+l.Bin,
		"CNI_ARGS="+strings.Join(args, ";"),
	)
	cmd.Stdin = bytes.NewReader(conf)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stdout.String() + " " + stderr.String())
		var ce struct {
			Code    int    `json:"code"`
			Msg     string `json:"msg"`
			Details string `json:"details"`
		}
		if json.Unmarshal(stdout.Bytes(), &ce) == nil && ce.Msg != "" {
			msg = fmt.Sprintf("CNI error %d: %s", ce.Code, ce.Msg)
			if ce.Details != "" {
				msg += ": " + ce.Details
			}
		}
		return nil, fmt.Errorf("CNI %s of %s (network %s) on %s: %w: %s; see %s",
			command, w.ID(), w.Network, w.Host, err, msg, l.sdndLog(i))
	}
	return stdout.Bytes(), nil
}

func (l *Lab) saveWorkload(w *Workload) error {
	p := l.recordPath(w.Host, w.Name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(w, "", "  ")
	return os.WriteFile(p, append(b, '\n'), 0o644)
}

func (l *Lab) loadWorkload(host, name string) (*Workload, error) {
	b, err := os.ReadFile(l.recordPath(host, name))
	if err != nil {
		return nil, err
	}
	w := &Workload{}
	return w, json.Unmarshal(b, w)
}

// Workloads returns the lab's attached workloads, by host then name.
func (l *Lab) Workloads() ([]*Workload, error) {
	files, _ := filepath.Glob(filepath.Join(l.Dir, "host*", "workloads", "*.json"))
	var ws []*Workload
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		w := &Workload{}
		if err := json.Unmarshal(b, w); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		ws = append(ws, w)
	}
	SortWorkloads(ws)
	return ws, nil
}

// SortWorkloads orders workloads by host number, then name.
func SortWorkloads(ws []*Workload) {
	sort.Slice(ws, func(a, b int) bool {
		ia, _ := strconv.Atoi(strings.TrimPrefix(ws[a].Host, "host"))
		ib, _ := strconv.Atoi(strings.TrimPrefix(ws[b].Host, "host"))
		if ia != ib {
			return ia < ib
		}
		return ws[a].Name < ws[b].Name
	})
}

// Ping sends one ICMP echo from inside the workload's namespace to ip and
// reports whether a reply came within a second.
func (l *Lab) Ping(from *Workload, ip string) bool {
	_, err := l.Exec(from.NS, "ping", "-c", "1", "-W", "1", "-n", "-q", ip)
	return err == nil
}
