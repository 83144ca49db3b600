package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
)

// Config describes a lab.
type Config struct {
	// Name prefixes every namespace of the lab: a lowercase letter, then
	// up to 11 lowercase letters or digits (no '-', so that one lab's names
	// never match another's). Default "lab".
	Name string
	// Hosts is the number of hosts (1 to 254). Default 3.
	Hosts int
	// Dir holds the lab's files (made absolute). Default ".lab".
	Dir string
	// Bin is the directory holding the sdnd, sdnctl and sdn (CNI plugin)
	// binaries. Default "bin".
	Bin string
	// Isolation overrides the cluster isolation mode of the HCL files
	// ("flat", "multitenant" or "policy"); "" keeps the files'.
	Isolation string
	// Examples is the HCL file or directory applied; default the module's
	// examples/ directory (found from the working directory upwards).
	Examples string
	// Logger receives progress lines ("host2: ovs started"); nil = none.
	Logger io.Writer
	// Underlay only: bring up namespaces, the underlay and the OVS
	// instances, but no sdnd and no apply (tests of the lab itself).
	UnderlayOnly bool
	// UnderlayMTU is the MTU of the underlay bridge and of every host's
	// ul0, 1280 to 9000 (e.g. 9000 for jumbo frames). The servers derive
	// the cluster MTU from the first host that registers (underlay minus
	// 50 bytes of VXLAN), so workloads get 1450 at 1500 and 8950 at 9000.
	// 0 = the running lab's (as recorded in DIR/lab.json), else 1500. A lab
	// cannot change its MTU while up: a different value is an error.
	UnderlayMTU int
	// ServerArgs and AgentArgs are extra sdnd flags for the servers (host1's
	// with the single server, the separate ones of UpServers) and for the
	// agents, e.g. shorter liveness timings ("--node-down-after=3s",
	// "--heartbeat-interval=300ms"). Not recorded: a lab from Open does not
	// know them.
	ServerArgs, AgentArgs []string
	// Docker makes every host's sdnd serve the Docker network driver on
	// DockerPluginDir(i)/sdn.sock (--docker-plugin-socket). Not recorded.
	Docker bool
	// HostServers is, for the VM labs (Prepare, OpenNode, NodeArgs), how
	// many hosts are servers too: host1..hostN, a raft cluster of N
	// bootstrapped from one --peers list, every agent given all N. 0 = the
	// prepared lab's (recorded in DIR/lab.json), else 1 (host1 bootstraps
	// alone). The netns lab's Up runs host1 as its only server (UpServers
	// adds separate ones) and refuses more.
	HostServers int
}

// DefaultUnderlayMTU is the underlay MTU of a lab that does not ask for one.
const DefaultUnderlayMTU = 1500

// Lab is a running (or stopped) lab.
type Lab struct {
	Name  string
	Hosts int
	Dir   string // absolute
	Bin   string // absolute

	cfg   Config
	logMu sync.Mutex
	tlsMu sync.Mutex // ensureTLS
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,11}$`)

func (c *Config) setDefaults() error {
	if c.Name == "" {
		c.Name = "lab"
	}
	if !nameRE.MatchString(c.Name) {
		return fmt.Errorf("lab name %q: want a lowercase letter then up to 11 lowercase letters or digits, e.g. lab or t1", c.Name)
	}
	if c.Hosts == 0 {
		c.Hosts = 3
	}
	if c.Hosts < 1 || c.Hosts > 254 {
		return fmt.Errorf("lab %q: %d hosts; want 1 to 254", c.Name, c.Hosts)
	}
	if c.Dir == "" {
		c.Dir = ".lab"
	}
	if c.Bin == "" {
		c.Bin = "bin"
	}
	if c.HostServers < 0 || c.HostServers > c.Hosts {
		return fmt.Errorf("lab %q: %d hosts are servers; want 1 to the number of hosts (%d)", c.Name, c.HostServers, c.Hosts)
	}
	if c.UnderlayMTU != 0 && (c.UnderlayMTU < 1280 || c.UnderlayMTU > 9000) {
		return fmt.Errorf("lab %q: underlay MTU %d; want 1280 to 9000 (e.g. 1500, or 9000 for jumbo frames)", c.Name, c.UnderlayMTU)
	}
	switch c.Isolation {
	case "", "flat", "multitenant", "policy":
	default:
		return fmt.Errorf("isolation %q: want flat, multitenant or policy (or empty to keep the HCL files')", c.Isolation)
	}
	var err error
	if c.Dir, err = filepath.Abs(c.Dir); err != nil {
		return err
	}
	if c.Bin, err = filepath.Abs(c.Bin); err != nil {
		return err
	}
	return nil
}

func newLab(cfg Config) *Lab {
	return &Lab{Name: cfg.Name, Hosts: cfg.Hosts, Dir: cfg.Dir, Bin: cfg.Bin, cfg: cfg}
}

// Subnet returns the underlay subnet of the lab called name: a /24 in
// 198.18.0.0/15 chosen by a hash of the name, so the same name always gets
// the same subnet. Two names may share one; that is harmless, as every lab's
// underlay is a bridge in its own namespace.
func Subnet(name string) netip.Prefix {
	h := fnv.New32a()
	h.Write([]byte(name))
	n := h.Sum32() % 512
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18 + byte(n/256), byte(n % 256), 0}), 24)
}

// UnderlayMTU is the MTU of the lab's underlay links; 0 for a lab from
// Open whose DIR holds no marker.
func (l *Lab) UnderlayMTU() int { return l.cfg.UnderlayMTU }

// HostName is the sdn node name of host i (1-based): "host1".
func HostName(i int) string { return "host" + strconv.Itoa(i) }

// UnderlayNS is the name of the lab's underlay namespace.
func (l *Lab) UnderlayNS() string { return l.Name + "-ul" }

// HostNS is the network namespace of host i (1-based).
func (l *Lab) HostNS(i int) string { return l.Name + "-h" + strconv.Itoa(i) }

// WorkloadNS is the network namespace of workload name on host (e.g.
// "host1").
func (l *Lab) WorkloadNS(host, name string) string { return l.Name + "-" + host + "-" + name }

// HostIP is host i's underlay address.
func (l *Lab) HostIP(i int) netip.Addr {
	a := Subnet(l.Name).Addr().As4()
	a[3] = byte(i)
	return netip.AddrFrom4(a)
}

// HostDir is where host i keeps its files.
func (l *Lab) HostDir(i int) string { return filepath.Join(l.Dir, HostName(i)) }

// APISocket is host1's API socket; pass "unix://"+APISocket() to sdnctl.
func (l *Lab) APISocket() string { return l.HostAPISocket(1) }

// CNISocket is host i's agent socket for the CNI plugin.
func (l *Lab) CNISocket(i int) string { return filepath.Join(l.HostDir(i), "cni.sock") }

// DockerPluginDir is host i's directory of Docker plugin sockets (with
// Config.Docker): what a dockerd of that host must see as
// /run/docker/plugins.
func (l *Lab) DockerPluginDir(i int) string { return filepath.Join(l.HostDir(i), "docker-plugins") }

// SdnctlServer is the --server value that reaches the lab.
func (l *Lab) SdnctlServer() string { return "unix://" + l.APISocket() }

func (l *Lab) logf(format string, args ...any) {
	if l.cfg.Logger == nil {
		return
	}
	l.logMu.Lock()
	defer l.logMu.Unlock()
	fmt.Fprintf(l.cfg.Logger, format+"\n", args...)
}

// marker is DIR/lab.json: which lab owns DIR.
type marker struct {
	Name  string `json:"name"`
	Hosts int    `json:"hosts"`
	// UnderlayMTU is the lab's underlay MTU; 0 in markers written before
	// it was configurable, which means DefaultUnderlayMTU.
	UnderlayMTU int `json:"underlay_mtu,omitempty"`
	// HostServers is Config.HostServers of a VM lab; 0 means 1.
	HostServers int `json:"host_servers,omitempty"`
}

// mtu is the marker's underlay MTU.
func (m marker) mtu() int {
	if m.UnderlayMTU == 0 {
		return DefaultUnderlayMTU
	}
	return m.UnderlayMTU
}

func (l *Lab) markerPath() string { return filepath.Join(l.Dir, "lab.json") }

// readMarker returns DIR's marker; ok is false when there is none.
func readMarker(dir string) (m marker, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, "lab.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return m, false, nil
	}
	if err != nil {
		return m, false, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, false, fmt.Errorf("%s: %w", filepath.Join(dir, "lab.json"), err)
	}
	return m, true, nil
}

// claimDir makes DIR and marks it as this lab's; a DIR owned by another lab
// is an error.
func (l *Lab) claimDir() error {
	m, ok, err := readMarker(l.Dir)
	if err != nil {
		return err
	}
	if ok && m.Name != l.Name {
		return fmt.Errorf("%s belongs to lab %q, not %q; use another --dir or `sdnlab down --name %s --dir %s` first",
			l.Dir, m.Name, l.Name, m.Name, l.Dir)
	}
	switch {
	case l.cfg.UnderlayMTU == 0 && ok:
		l.cfg.UnderlayMTU = m.mtu()
	case l.cfg.UnderlayMTU == 0:
		l.cfg.UnderlayMTU = DefaultUnderlayMTU
	case ok && l.cfg.UnderlayMTU != m.mtu():
		// Hosts keep their ul0 and the cluster its MTU while up.
		return fmt.Errorf("lab %q runs with underlay MTU %d, not %d; take it down first (`sdnlab down --name %s --dir %s`)",
			l.Name, m.mtu(), l.cfg.UnderlayMTU, l.Name, l.Dir)
	}
	if !ok {
		// A non-empty directory without a marker is somebody else's.
		if ents, err := os.ReadDir(l.Dir); err == nil && len(ents) > 0 {
			return fmt.Errorf("%s exists, is not empty and holds no lab.json; pick an empty or new --dir", l.Dir)
		}
	}
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return err
	}
	switch had := max(m.HostServers, 1); {
	case l.cfg.HostServers == 0 && ok:
		l.cfg.HostServers = had
	case l.cfg.HostServers == 0:
		l.cfg.HostServers = 1
	case ok && l.cfg.HostServers != had:
		// Its certificates and its cluster's peers are those of had.
		return fmt.Errorf("lab %q in %s has %d server host(s), not %d; remove it first, or use another --dir", l.Name, l.Dir, had, l.cfg.HostServers)
	}
	if ok && m.Hosts > l.Hosts {
		// Shrinking: keep the larger count so Down still finds every host.
		l.logf("lab %s had %d hosts; hosts %d..%d keep running (use `sdnlab down` to remove them)", l.Name, m.Hosts, l.Hosts+1, m.Hosts)
		if m.UnderlayMTU != 0 {
			return nil
		}
	}
	b, _ := json.Marshal(marker{Name: l.Name, Hosts: max(l.Hosts, m.Hosts), UnderlayMTU: l.cfg.UnderlayMTU, HostServers: l.hostServersRecorded()})
	return os.WriteFile(l.markerPath(), append(b, '\n'), 0o644)
}

// Open returns the lab called name whose files are in dir, as Up left it,
// for Down, Sdnctl, Attach and Matrix from another process.
func Open(name, dir string, logger io.Writer) (*Lab, error) {
	cfg := Config{Name: name, Dir: dir, Logger: logger}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	m, ok, err := readMarker(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if ok {
		if m.Name != cfg.Name {
			return nil, fmt.Errorf("%s belongs to lab %q, not %q", cfg.Dir, m.Name, cfg.Name)
		}
		cfg.Hosts = m.Hosts
		cfg.UnderlayMTU = m.mtu()
		cfg.HostServers = m.HostServers
	}
	if bin, err := readBinDir(cfg.Dir); err == nil {
		cfg.Bin = bin
	}
	return newLab(cfg), nil
}

// HostServers is how many hosts are servers (host1..hostN); see
// Config.HostServers.
func (l *Lab) HostServers() int { return max(l.cfg.HostServers, 1) }

// hostServersRecorded is the marker's HostServers: 0 for one server, so a
// netns lab's lab.json stays as it was.
func (l *Lab) hostServersRecorded() int {
	if l.HostServers() == 1 {
		return 0
	}
	return l.HostServers()
}

func (l *Lab) binPath() string { return filepath.Join(l.Dir, "bin.path") }

// readBinDir returns the binary directory Up recorded.
func readBinDir(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "bin.path"))
	if err != nil {
		return "", err
	}
	return string(b), nil
}
