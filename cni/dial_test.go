package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The codes the plugin gives when it cannot reach the agent (main.go's
// package comment): a runtime retries 11, so 11 is only for what passes.

// TestNonRootCallerIsPermanent runs the real plugin as an unprivileged user
// against a root-only socket, as the agent makes it (mode 0600 in a
// world-readable directory): every command fails with code 5 (I/O failure,
// not "try again later": retrying as the same user never succeeds), STATUS
// with 50 (not available), and says the plugin must run as root.
func TestNonRootCallerIsPermanent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a root-only socket and run the plugin as another user")
	}
	dir, err := os.MkdirTemp("", "sdn-cni-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join(dir, "sdn")
	copyFile(t, filepath.Join(binaries(t), "sdn"), plugin, 0o755)
	sock := filepath.Join(dir, "cni.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	if err := os.Chmod(sock, 0o600); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	for _, cmd := range []string{"ADD", "DEL", "CHECK", "STATUS"} {
		config := netconf("proj1", sock)
		if cmd == "STATUS" {
			config = strings.Replace(config, `"1.0.0"`, `"1.1.0"`, 1)
		}
		c := exec.Command(plugin)
		c.Env = []string{"CNI_COMMAND=" + cmd, "CNI_CONTAINERID=abc123", "CNI_NETNS=/run/netns/none", "CNI_IFNAME=eth0", "CNI_PATH=" + dir}
		c.Stdin = strings.NewReader(config)
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		var stdout bytes.Buffer
		c.Stdout = &stdout
		err := c.Run()
		var res struct {
			Code uint   `json:"code"`
			Msg  string `json:"msg"`
		}
		if jerr := json.Unmarshal(stdout.Bytes(), &res); err == nil || jerr != nil {
			t.Fatalf("%s as uid %d: %v, output %q; want a CNI error", cmd, nobody, err, stdout.String())
		}
		want := "sdn: permission denied on the sdnd agent's socket " + sock + ": it is root-only and this plugin runs as uid 65534; the container runtime must run CNI plugins as root"
		code := types.ErrIOFailure
		if cmd == "STATUS" {
			code = types.ErrPluginNotAvailable // STATUS: it cannot ADD, whatever the cause
		}
		if res.Code != code || res.Msg != want {
			t.Errorf("%s as uid %d: code %d %q\nwant code %d %q", cmd, nobody, res.Code, res.Msg, code, want)
		}
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestStatusWithoutAgent: STATUS reports an agent that is not running as
// the spec's "plugin not available" (50), not "try again later".
func TestStatusWithoutAgent(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "cni.sock")
	out := runPlugin(t, binaries(t), cniCall{Command: "STATUS", Config: strings.Replace(netconf("proj1", sock), `"1.0.0"`, `"1.1.0"`, 1)})
	want := "sdn: sdnd agent not available at " + sock + ": the socket does not exist; is sdnd --agent running?"
	if out.exit != 1 || out.errJSON.Code != types.ErrPluginNotAvailable || out.errJSON.Msg != want {
		t.Errorf("STATUS without an agent: %v; want code 50 and %q", out, want)
	}
}

// TestDialErrorCodes: each way the socket can refuse a connection, made
// for real where the test can (a missing socket, a stale one nobody
// listens on, a path through a regular file), gets its code and message.
func TestDialErrorCodes(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	lis, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	lis.(*net.UnixListener).SetUnlinkOnClose(false)
	lis.Close()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dialErr := func(socket string) error {
		c, err := net.Dial("unix", socket)
		if err == nil {
			c.Close()
			t.Fatalf("dial %s succeeded", socket)
		}
		return err
	}
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", errno)}
	}
	missing, notDir := filepath.Join(dir, "missing.sock"), filepath.Join(file, "cni.sock")
	for _, tc := range []struct {
		cmd, socket string
		err         error
		code        uint
		msg         string
	}{
		{"ADD", missing, dialErr(missing), types.ErrTryAgainLater,
			"sdn: sdnd agent not reachable at " + missing + ": the socket does not exist; is sdnd --agent running?"},
		{"DEL", stale, dialErr(stale), types.ErrTryAgainLater,
			"sdn: sdnd agent not reachable at " + stale + ": nothing accepts connections on the socket (sdnd stopped or is restarting); is sdnd --agent running?"},
		{"STATUS", stale, dialErr(stale), types.ErrPluginNotAvailable,
			"sdn: sdnd agent not available at " + stale + ": nothing accepts connections on the socket (sdnd stopped or is restarting); is sdnd --agent running?"},
		{"CHECK", "/run/sdn/cni.sock", &net.OpError{Op: "dial", Net: "unix", Err: os.ErrDeadlineExceeded}, types.ErrTryAgainLater,
			"sdn: sdnd agent not reachable at /run/sdn/cni.sock: it did not accept the connection within 3s (busy or hung); is sdnd --agent running?"},
		{"ADD", "/run/sdn/cni.sock", opErr(syscall.EAGAIN), types.ErrTryAgainLater,
			"sdn: sdnd agent not reachable at /run/sdn/cni.sock: it did not accept the connection within 3s (busy or hung); is sdnd --agent running?"},
		{"ADD", "/run/sdn/cni.sock", opErr(syscall.EACCES), types.ErrIOFailure,
			"sdn: permission denied on the sdnd agent's socket /run/sdn/cni.sock: it is root-only and this plugin runs as uid 1000; the container runtime must run CNI plugins as root"},
		{"DEL", "/run/sdn/cni.sock", opErr(syscall.EPERM), types.ErrIOFailure,
			"sdn: permission denied on the sdnd agent's socket /run/sdn/cni.sock: it is root-only and this plugin runs as uid 1000; the container runtime must run CNI plugins as root"},
		{"ADD", notDir, dialErr(notDir), types.ErrIOFailure,
			"sdn: cannot connect to the sdnd agent's socket " + notDir + `: not a directory; set "socket" in the network config to the agent's --cni-socket`},
	} {
		got := dialError(tc.cmd, tc.socket, tc.err, 1000)
		if got.Code != tc.code || got.Msg != tc.msg || got.Details != tc.err.Error() {
			t.Errorf("%s, %v:\n got code %d %q (details %q)\nwant code %d %q", tc.cmd, tc.err, got.Code, got.Msg, got.Details, tc.code, tc.msg)
		}
	}
}

// TestCNIErrorStatus: an agent that fails mid-call is "try again later"
// for the other commands and "not available" for STATUS.
func TestCNIErrorStatus(t *testing.T) {
	c := &agentClient{socket: DefaultSocket}
	for _, tc := range []struct {
		cmd  string
		err  error
		code uint
	}{
		{"ADD", status.Error(codes.Unavailable, "servers unreachable"), types.ErrTryAgainLater},
		{"STATUS", status.Error(codes.Unavailable, "servers unreachable"), types.ErrPluginNotAvailable},
		{"STATUS", status.Error(codes.DeadlineExceeded, "no answer"), types.ErrPluginNotAvailable},
		{"CHECK", status.Error(codes.NotFound, "no such workload"), types.ErrInvalidNetworkConfig},
	} {
		if got := c.cniError(tc.cmd, tc.err); got.Code != tc.code || got.Msg != "sdn: "+tc.cmd+": "+status.Convert(tc.err).Message() {
			t.Errorf("%s, %v: code %d %q, want code %d", tc.cmd, tc.err, got.Code, got.Msg, tc.code)
		}
	}
}
