package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// TestNetnsOnlyTheRuntimeSees: the runtime's namespace path exists only in
// the plugin's mount namespace (a tmpfs mounted in a private mount
// namespace, the netns bind-mounted on a file in it), not in the agent's;
// ADD, CHECK and DEL work all the same, as the plugin sends the namespace
// as an open file.
func TestNetnsOnlyTheRuntimeSees(t *testing.T) {
	n := startNode(t)
	applyNetwork(t, n)
	nsName := "sdncni-" + randHex(3) + "-priv"
	nsPath := newNS(t, nsName)
	dir := t.TempDir()
	private := filepath.Join(dir, "ns")
	if _, err := os.Stat(private); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s exists outside the private mount namespace: %v", private, err)
	}
	// unshare -m makes the mounts private to the plugin's process.
	wrap := []string{"unshare", "-m", "--propagation", "private", "sh", "-ec",
		`mount -t tmpfs sdncni "$1"; touch "$1/ns"; mount --bind "$2" "$1/ns"; shift 2; exec "$@"`, "sh", dir, nsPath}
	cid := "priv" + randHex(8)
	call := cniCall{Command: "ADD", ContainerID: cid, Netns: private, Ifname: "eth0", Args: "SDN_NAME=private", Config: netconf("proj1", n.cniSock)}
	out := runPluginVia(t, n.bin, wrap, call)
	if out.exit != 0 {
		t.Fatalf("ADD: %v\n%s", out, n.log)
	}
	res, err := types100.NewResult([]byte(out.stdout))
	if err != nil {
		t.Fatal(err)
	}
	r := res.(*types100.Result)
	if r.Interfaces[1].Sandbox != private {
		t.Errorf("result sandbox %q, want the runtime's path %s", r.Interfaces[1].Sandbox, private)
	}
	if addr := ip(t, "-n", nsName, "-o", "-4", "addr", "show", "dev", "eth0"); !strings.Contains(addr, "inet "+r.IPs[0].Address.String()) {
		t.Errorf("eth0 in the namespace: %s; result %s", addr, r.IPs[0].Address.String())
	}
	if _, err := os.Stat(private); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the private path leaked out of the plugin's mount namespace: %v", err)
	}
	call.Command = "CHECK"
	if out := runPluginVia(t, n.bin, wrap, call); out.exit != 0 {
		t.Errorf("CHECK: %v", out)
	}
	call.Command = "DEL"
	if out := runPluginVia(t, n.bin, wrap, call); out.exit != 0 {
		t.Errorf("DEL: %v", out)
	}
	if l := ip(t, "-n", nsName, "-o", "link", "show"); strings.Contains(l, "eth0") {
		t.Errorf("eth0 still in the namespace after DEL: %s", l)
	}
	// Without the fd, the agent could not have reached it: the path means
	// nothing in its mount namespace (nor in the test's).
	call.Command = "ADD"
	out = runPluginVia(t, n.bin, nil, call)
	if out.exit == 0 || out.errJSON.Code != 8 || !strings.Contains(out.errJSON.Msg, "cannot open the container's network namespace CNI_NETNS="+private) {
		t.Errorf("ADD of a path nobody sees: %v", out)
	}
}
