package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// The plugin binary, executed the way a runtime does (CNI_* environment,
// config on stdin), against no agent at all.

func TestVersionCommand(t *testing.T) {
	out := runPlugin(t, binaries(t), cniCall{Command: "VERSION"})
	if out.exit != 0 {
		t.Fatal(out)
	}
	var v struct {
		CNIVersion        string   `json:"cniVersion"`
		SupportedVersions []string `json:"supportedVersions"`
	}
	if err := json.Unmarshal([]byte(out.stdout), &v); err != nil {
		t.Fatal(err)
	}
	if strings.Join(v.SupportedVersions, ",") != "0.3.0,0.3.1,0.4.0,1.0.0,1.1.0" {
		t.Errorf("supported versions %v", v.SupportedVersions)
	}
}

func TestAgentNotReachable(t *testing.T) {
	bin := binaries(t)
	sock := filepath.Join(t.TempDir(), "cni.sock")
	for _, cmd := range []string{"ADD", "DEL", "CHECK"} {
		out := runPlugin(t, bin, cniCall{Command: cmd, ContainerID: "abc123", Netns: "/run/netns/none", Ifname: "eth0", Config: netconf("proj1", sock)})
		want := "sdnd agent not reachable at " + sock + ": the socket does not exist; is sdnd --agent running?"
		if out.exit != 1 || out.errJSON.Code != types.ErrTryAgainLater || !strings.Contains(out.errJSON.Msg, want) {
			t.Errorf("%s without an agent: %v; want code 11 and %q", cmd, out, want)
		}
	}
}

func TestBrokenConfig(t *testing.T) {
	bin := binaries(t)
	sock := filepath.Join(t.TempDir(), "cni.sock")
	for _, tc := range []struct{ config, args, want string }{
		{`{"cniVersion":"1.0.0","name":"n","type":"sdn"}`, "", `network config field "network": missing`},
		{`{"cniVersion":"1.0.0","name":"n","type":"sdn","network":"Proj_1"}`, "", `network config field "network": "Proj_1" is not a valid sdn network name`},
		{`{"cniVersion":"1.0.0","name":"n","type":"sdn","network":"p","socket":7}`, "", `network config field "socket": want a string, got 7`},
		{netconf("proj1", sock), "app=web app", `CNI_ARGS: app=web app: not a label`},
	} {
		out := runPlugin(t, bin, cniCall{Command: "ADD", ContainerID: "abc123", Netns: "/run/netns/none", Ifname: "eth0", Args: tc.args, Config: tc.config})
		if out.exit != 1 || !strings.Contains(out.errJSON.Msg, tc.want) {
			t.Errorf("ADD with %s / %q: %v; want %q", tc.config, tc.args, out, tc.want)
		}
	}
}

// The whole path: plugin → agent socket → servers → veth, OVS port, flows.
func TestEndToEnd(t *testing.T) {
	n := startNode(t)
	hcl := filepath.Join(t.TempDir(), "net.hcl")
	os.WriteFile(hcl, []byte(`network "proj1" {
  labels = { env = "test" }
}
`), 0o644)
	n.sdnctl(t, "apply", "-f", hcl)

	wl1 := "sdncni-" + randHex(3) + "-w1"
	wl1Path := newNS(t, wl1)
	cid := "e2e" + randHex(10)
	conf := netconf("proj1", n.cniSock)
	add := cniCall{Command: "ADD", ContainerID: cid, Netns: wl1Path, Ifname: "eth0",
		Args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=u1;app=web", Config: conf}
	out := runPlugin(t, n.bin, add)
	if out.exit != 0 {
		t.Fatalf("ADD: %v\nsdnd log:\n%s", out, n.log)
	}
	res, err := types100.NewResult([]byte(out.stdout))
	if err != nil {
		t.Fatal(err)
	}
	r := res.(*types100.Result)
	if r.CNIVersion != "1.0.0" || len(r.Interfaces) != 2 || len(r.IPs) != 1 || len(r.Routes) != 1 {
		t.Fatalf("ADD result: %s", out.stdout)
	}
	sandbox, ipc := r.Interfaces[1], r.IPs[0]
	// A 1.0.0 result has no "mtu" (a 1.1.0 field); the link has it.
	if sandbox.Name != "eth0" || sandbox.Sandbox != wl1Path || sandbox.Mtu != 0 || *ipc.Interface != 1 ||
		r.Interfaces[0].Name == "" || r.Interfaces[0].Mac == "" || r.Routes[0].Dst.String() != "0.0.0.0/0" || !r.Routes[0].GW.Equal(ipc.Gateway) {
		t.Fatalf("ADD result: %s", out.stdout)
	}

	// The workload namespace holds exactly what the result says.
	link := ip(t, "-n", wl1, "-o", "link", "show", "dev", "eth0")
	if !strings.Contains(link, "mtu 1450") || !strings.Contains(link, "link/ether "+sandbox.Mac) {
		t.Errorf("eth0: %s; result mac %s", link, sandbox.Mac)
	}
	if addr := ip(t, "-n", wl1, "-o", "-4", "addr", "show", "dev", "eth0"); !strings.Contains(addr, "inet "+ipc.Address.String()) {
		t.Errorf("eth0 addresses: %s; result %s", addr, ipc.Address.String())
	}
	if route := ip(t, "-n", wl1, "route", "show", "default"); !strings.Contains(route, "default via "+ipc.Gateway.String()+" dev eth0") {
		t.Errorf("default route: %q", route)
	}
	// The cluster lists it, named after the pod, with its labels.
	var ws []struct {
		Name, Network, Node, Ip, Mac string
		Labels                       map[string]string
	}
	if err := json.Unmarshal([]byte(n.sdnctl(t, "get", "workloads", "-o", "json")), &ws); err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || ws[0].Name != "default-web-0" || ws[0].Network != "proj1" || ws[0].Node != n.name ||
		ws[0].Ip+"/23" != ipc.Address.String() || ws[0].Mac != sandbox.Mac ||
		ws[0].Labels["app"] != "web" || ws[0].Labels["k8s.pod"] != "web-0" || ws[0].Labels["k8s.namespace"] != "default" {
		t.Fatalf("sdnctl get workloads: %+v", ws)
	}

	// Traffic flows when ADD returns: a second workload reaches the first.
	wl2 := "sdncni-" + randHex(3) + "-w2"
	wl2Path := newNS(t, wl2)
	add2 := cniCall{Command: "ADD", ContainerID: "e2e" + randHex(10), Netns: wl2Path, Ifname: "eth0", Args: "SDN_NAME=client", Config: conf}
	if out := runPlugin(t, n.bin, add2); out.exit != 0 {
		t.Fatalf("second ADD: %v\nsdnd log:\n%s", out, n.log)
	}
	if o, err := exec.Command("ip", "netns", "exec", wl2, "ping", "-c", "1", "-W", "2", ipc.Address.IP.String()).CombinedOutput(); err != nil {
		t.Errorf("ping from the second workload to the first: %v\n%s", err, o)
	}

	check := add
	check.Command = "CHECK"
	if out := runPlugin(t, n.bin, check); out.exit != 0 {
		t.Errorf("CHECK: %v", out)
	}

	// Restarts are normal: the workloads keep their addresses and
	// connectivity, CHECK still passes, a retried ADD changes nothing.
	n.stop(t)
	n.start(t)
	if o, err := exec.Command("ip", "netns", "exec", wl2, "ping", "-c", "1", "-W", "2", ipc.Address.IP.String()).CombinedOutput(); err != nil {
		t.Errorf("ping after an sdnd restart: %v\n%s", err, o)
	}
	if out := runPlugin(t, n.bin, check); out.exit != 0 {
		t.Errorf("CHECK after an sdnd restart: %v", out)
	}
	if out := runPlugin(t, n.bin, add); out.exit != 0 || !strings.Contains(out.stdout, ipc.Address.String()) {
		t.Errorf("ADD retried after an sdnd restart: %v", out)
	}

	// A broken ADD changes nothing.
	before := n.sdnctl(t, "get", "workloads", "-o", "json")
	bad := cniCall{Command: "ADD", ContainerID: "e2ebad", Netns: wl2Path, Ifname: "eth1", Config: `{"cniVersion":"1.0.0","name":"x","type":"sdn","network":"no such"}`}
	if out := runPlugin(t, n.bin, bad); out.exit == 0 || !strings.Contains(out.errJSON.Msg, `network config field "network"`) {
		t.Errorf("ADD with a broken config: %v", out)
	}
	unknown := cniCall{Command: "ADD", ContainerID: "e2ebad", Netns: wl2Path, Ifname: "eth1", Config: netconf("nope", n.cniSock)}
	if out := runPlugin(t, n.bin, unknown); out.exit == 0 || out.errJSON.Code != types.ErrInvalidNetworkConfig || !strings.Contains(out.errJSON.Msg, `unknown network "nope"`) {
		t.Errorf("ADD to an unknown network: %v", out)
	}
	if after := n.sdnctl(t, "get", "workloads", "-o", "json"); after != before {
		t.Errorf("failed ADDs changed the workloads:\n%s\nthen\n%s", before, after)
	}
	if l := ip(t, "-n", wl2, "-o", "link", "show"); strings.Contains(l, "eth1") {
		t.Errorf("failed ADD left eth1 in the namespace: %s", l)
	}

	// DEL twice: both succeed, the workload and its interface are gone.
	del := cniCall{Command: "DEL", ContainerID: cid, Netns: wl1Path, Ifname: "eth0", Config: conf}
	for i := range 2 {
		if out := runPlugin(t, n.bin, del); out.exit != 0 {
			t.Fatalf("DEL #%d: %v", i+1, out)
		}
	}
	if l := ip(t, "-n", wl1, "-o", "link", "show"); strings.Contains(l, "eth0") {
		t.Errorf("eth0 still in the workload namespace after DEL: %s", l)
	}
	if got := n.sdnctl(t, "get", "workloads", "-o", "json"); strings.Contains(got, "default-web-0") {
		t.Errorf("workload still listed after DEL: %s", got)
	}
	del2 := add2
	del2.Command = "DEL"
	if out := runPlugin(t, n.bin, del2); out.exit != 0 {
		t.Errorf("DEL of the second workload: %v", out)
	}
}
