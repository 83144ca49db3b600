package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/datapath/ovs"
)

func TestMain(m *testing.M) {
	// OVS daemons detach and become orphans; as a child subreaper this
	// process adopts them, so Stop reaps them instead of leaving zombies.
	const prSetChildSubreaper = 36
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

var bins struct {
	once sync.Once
	dir  string
	err  error
}

// binaries builds the plugin (as "sdn"), sdnd and sdnctl once per run.
func binaries(t *testing.T) string {
	t.Helper()
	bins.once.Do(func() {
		if bins.dir, bins.err = os.MkdirTemp("", "sdn-cni-test-bin-"); bins.err != nil {
			return
		}
		for name, pkg := range map[string]string{"sdn": ".", "sdnd": "../sdnd", "sdnctl": "../sdnctl"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(bins.dir, name), pkg).CombinedOutput()
			if err != nil {
				bins.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return bins.dir
}

// cniCall is one execution of the plugin, as a runtime makes it.
type cniCall struct {
	Command, ContainerID, Netns, Ifname, Args string
	Config                                    string // stdin
}

type cniOut struct {
	stdout, stderr string
	exit           int
	errJSON        struct {
		Code uint   `json:"code"`
		Msg  string `json:"msg"`
	}
}

func (o cniOut) String() string {
	return fmt.Sprintf("exit %d, stdout %s, stderr %q", o.exit, strings.TrimSpace(o.stdout), o.stderr)
}

// runPlugin executes the built plugin with the CNI environment and the
// config on stdin. A failure is decoded as CNI error JSON.
func runPlugin(t *testing.T, bin string, c cniCall) cniOut {
	t.Helper()
	return runPluginVia(t, bin, nil, c)
}

// runPluginVia runs the plugin as the last argument of wrap (e.g. unshare),
// or directly when wrap is empty.
func runPluginVia(t *testing.T, bin string, wrap []string, c cniCall) cniOut {
	t.Helper()
	argv := append(append([]string{}, wrap...), filepath.Join(bin, "sdn"))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "CNI_COMMAND=" + c.Command, "CNI_PATH=" + bin}
	for k, v := range map[string]string{"CNI_CONTAINERID": c.ContainerID, "CNI_NETNS": c.Netns, "CNI_IFNAME": c.Ifname, "CNI_ARGS": c.Args} {
		if v != "" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.Stdin = strings.NewReader(c.Config)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := cniOut{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		out.exit = ee.ExitCode()
		if jerr := json.Unmarshal(stdout.Bytes(), &out.errJSON); jerr != nil {
			t.Fatalf("plugin failed without CNI error JSON: %v", out)
		}
	} else if err != nil {
		t.Fatal(err)
	}
	return out
}

func netconf(network, socket string) string {
	return fmt.Sprintf(`{"cniVersion":"1.0.0","name":"sdn-%s","type":"sdn","network":%q,"socket":%q}`, network, network, socket)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// needHost skips unless the test can run OVS daemons in namespaces.
func needHost(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces and run Open vSwitch")
	}
	for _, bin := range []string{"ovs-vswitchd", "ovsdb-server", "ovsdb-tool", "ovs-vsctl", "ovs-ofctl", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs Open vSwitch and iproute2 (%s: %v); `make deps` installs them", bin, err)
		}
	}
	if _, err := os.Stat(ovs.DefaultSchema); err != nil {
		t.Skipf("needs the OVS schema: %v", err)
	}
}

// newNS makes a uniquely named namespace, deleted when the test ends.
func newNS(t *testing.T, name string) string {
	t.Helper()
	path, err := link.NewNS(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := link.DeleteNS(name); err != nil {
			t.Errorf("delete namespace %s: %v", name, err)
		}
	})
	return path
}

func ip(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// node is one sdn host in namespaces the test made: an underlay veth
// (ul0 = 198.19.X.1/24, its peer in a second namespace), an OVS instance
// and `sdnd --server --bootstrap --agent`.
type node struct {
	name, ns, dir, bin string
	api, cniSock       string
	ovsDir             string
	sdnd               *exec.Cmd
	exited             chan struct{}
	log                *bytes.Buffer
}

func startNode(t *testing.T) *node {
	t.Helper()
	needHost(t)
	id := randHex(3)
	n := &node{name: "n" + id, ns: "sdncni-" + id + "-node", dir: t.TempDir(), bin: binaries(t)}
	n.api, n.cniSock = "unix:"+filepath.Join(n.dir, "api.sock"), filepath.Join(n.dir, "cni.sock")
	newNS(t, n.ns)
	ulNS := "sdncni-" + id + "-ul"
	newNS(t, ulNS)
	subnet := fmt.Sprintf("198.19.%d", 1+int(id[0])%250)
	ip(t, "-n", n.ns, "link", "add", "ul0", "mtu", "1500", "type", "veth", "peer", "name", "ulp", "netns", ulNS)
	ip(t, "-n", n.ns, "addr", "add", subnet+".1/24", "dev", "ul0")
	ip(t, "-n", n.ns, "link", "set", "ul0", "up")
	ip(t, "-n", ulNS, "addr", "add", subnet+".254/24", "dev", "ulp")
	ip(t, "-n", ulNS, "link", "set", "ulp", "up")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ovsDir := filepath.Join(n.dir, "ovs")
	inst, err := ovs.StartInstance(ctx, ovs.InstanceConfig{RunDir: ovsDir, NetNS: n.ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := inst.Stop(); err != nil {
			t.Error(err)
		}
	})
	n.ovsDir = ovsDir
	n.log = &bytes.Buffer{}
	n.start(t)
	t.Cleanup(func() {
		n.stop(t)
		if t.Failed() {
			t.Logf("sdnd log:\n%s", n.log)
		}
	})
	return n
}

// start runs sdnd in the node's namespace and waits until its CNI service
// is ready (the host is registered).
func (n *node) start(t *testing.T) {
	t.Helper()
	n.sdnd = exec.Command("ip", "netns", "exec", n.ns, filepath.Join(n.bin, "sdnd"),
		"--server", "--bootstrap", "--agent", "--node-name", n.name, "--data-dir", filepath.Join(n.dir, "data"),
		"--listen", n.api, "--raft-addr", "127.0.0.1:7421", "--underlay-iface", "ul0",
		"--ovs-rundir", n.ovsDir, "--datapath", "netdev", "--cni-socket", n.cniSock, "--log-level", "debug",
		// The plugin's path is the root-only CNI socket, plaintext in every
		// mode; the API's mutual TLS is tested in integration/.
		"--insecure-plaintext")
	n.sdnd.Stdout, n.sdnd.Stderr = n.log, n.log
	if err := n.sdnd.Start(); err != nil {
		t.Fatal(err)
	}
	n.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { cmd.Wait(); close(exited) }(n.sdnd, n.exited)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := runPlugin(t, n.bin, cniCall{Command: "STATUS", Config: strings.Replace(netconf("x", n.cniSock), `"1.0.0"`, `"1.1.0"`, 1)})
		if out.exit == 0 {
			return
		}
		select {
		case <-n.exited:
			t.Fatalf("sdnd exited: %v\n%s", n.sdnd.ProcessState, n.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sdnd agent not ready after 30 s: %v\n%s", out, n.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGTERM and expects sdnd to exit cleanly within 30 s.
func (n *node) stop(t *testing.T) {
	t.Helper()
	if n.sdnd == nil {
		return
	}
	n.sdnd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
		if !n.sdnd.ProcessState.Success() {
			t.Errorf("sdnd exited with %v after SIGTERM", n.sdnd.ProcessState)
		}
	case <-time.After(30 * time.Second):
		n.sdnd.Process.Kill()
		<-n.exited
		t.Errorf("sdnd did not stop within 30 s of SIGTERM")
	}
	n.sdnd = nil
}

// sdnctl runs the CLI against the node's API.
func (n *node) sdnctl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(n.bin, "sdnctl"), append([]string{"--server", n.api}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("sdnctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
