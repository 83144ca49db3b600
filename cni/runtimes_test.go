package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gocni "github.com/containerd/go-cni"
	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types040 "github.com/containernetworking/cni/pkg/types/040"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/sdn-dev/sdn/datapath/link"
)

// The real plugin binary driven by the libraries runtimes use: libcni
// (Podman, containerd, CRI-O and Nomad underneath) and containerd's
// go-cni, against a real node (servers, agent, OVS).

// conflist is a network configuration list with the sdn plugin, the
// capabilities it implements, at cniVersion ver.
func conflist(name, ver, network, socket string) []byte {
	return fmt.Appendf(nil, `{"cniVersion":%q,"name":%q,"plugins":[{"type":"sdn","network":%q,"socket":%q,`+
		`"capabilities":{"portMappings":true,"bandwidth":true,"ips":true,"mac":true}}]}`, ver, name, network, socket)
}

// applyNetwork declares network proj1 on the node.
func applyNetwork(t *testing.T, n *node) {
	t.Helper()
	hcl := filepath.Join(t.TempDir(), "net.hcl")
	if err := os.WriteFile(hcl, []byte("network \"proj1\" {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n.sdnctl(t, "apply", "-f", hcl)
}

// storedWorkload is a workload as `sdnctl get workloads -o json` lists it.
type storedWorkload struct {
	Name, Network, Node, Ip, Mac string
	PortMappings                 []struct {
		HostPort, ContainerPort uint32
		Protocol, HostIp        string
	}
	Bandwidth *struct{ IngressRate, IngressBurst, EgressRate, EgressBurst string }
}

func (n *node) workloads(t *testing.T) map[string]storedWorkload {
	t.Helper()
	var ws []storedWorkload
	out := n.sdnctl(t, "get", "workloads", "-o", "json")
	if err := json.Unmarshal([]byte(out), &ws); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	m := map[string]storedWorkload{}
	for _, w := range ws {
		m[w.Name] = w
	}
	return m
}

// hostVeth reports whether the host end of an attachment's veth exists in
// the node's namespace.
func (n *node) hostVeth(t *testing.T, cid, ifname string) bool {
	t.Helper()
	return strings.Contains(ip(t, "-n", n.ns, "-o", "link", "show"), link.HostVethName(cid, ifname)+"@")
}

// TestLibcniEveryVersion: ADD, CHECK, DEL, STATUS and VERSION through
// libcni at each result version; each result parses as its version and
// has that version's shape.
func TestLibcniEveryVersion(t *testing.T) {
	n := startNode(t)
	applyNetwork(t, n)
	ctx := context.Background()
	for _, ver := range []string{"1.1.0", "1.0.0", "0.4.0"} {
		t.Run(ver, func(t *testing.T) {
			list, err := libcni.ConfListFromBytes(conflist("sdn-v"+strings.ReplaceAll(ver, ".", ""), ver, "proj1", n.cniSock))
			if err != nil {
				t.Fatal(err)
			}
			cfg := libcni.NewCNIConfigWithCacheDir([]string{n.bin}, t.TempDir(), nil)
			info, err := cfg.GetVersionInfo(ctx, "sdn")
			if err != nil || !strings.Contains(strings.Join(info.SupportedVersions(), ","), ver) {
				t.Fatalf("VERSION: %v %v", info, err)
			}
			nsName := "sdncni-" + randHex(3) + "-lib"
			nsPath := newNS(t, nsName)
			cid := "lib" + randHex(8)
			name := "w-" + strings.ReplaceAll(ver, ".", "")
			rt := &libcni.RuntimeConf{ContainerID: cid, NetNS: nsPath, IfName: "eth0",
				Args: [][2]string{{"IgnoreUnknown", "1"}, {"SDN_NAME", name}}}
			res, err := cfg.AddNetworkList(ctx, list, rt)
			if err != nil {
				t.Fatalf("ADD: %v\n%s", err, n.log)
			}
			var buf bytes.Buffer
			if err := res.PrintTo(&buf); err != nil {
				t.Fatal(err)
			}
			checkResultShape(t, ver, buf.Bytes(), nsPath)
			// The same ADD again: the same result, nothing allocated twice.
			before := len(n.workloads(t))
			again, err := cfg.AddNetworkList(ctx, list, rt)
			var buf2 bytes.Buffer
			if err == nil {
				err = again.PrintTo(&buf2)
			}
			if err != nil || buf2.String() != buf.String() || len(n.workloads(t)) != before {
				t.Errorf("second ADD: %v\n%s\nfirst:\n%s", err, buf2.String(), buf.String())
			}
			if err := cfg.CheckNetworkList(ctx, list, rt); err != nil {
				t.Errorf("CHECK: %v", err)
			}
			if err := cfg.GetStatusNetworkList(ctx, list); err != nil {
				t.Errorf("STATUS: %v", err)
			}
			if _, ok := n.workloads(t)[name]; !ok || !n.hostVeth(t, cid, "eth0") {
				t.Fatalf("after ADD: workload %s listed %v, host veth %v", name, ok, n.hostVeth(t, cid, "eth0"))
			}
			for i := range 2 {
				if err := cfg.DelNetworkList(ctx, list, rt); err != nil {
					t.Fatalf("DEL #%d: %v", i+1, err)
				}
			}
			if _, ok := n.workloads(t)[name]; ok || n.hostVeth(t, cid, "eth0") {
				t.Errorf("after DEL: workload %s still listed or its veth still there", name)
			}
		})
	}
}

// checkResultShape parses an ADD result as its version and checks the
// fields that version has and has not.
func checkResultShape(t *testing.T, ver string, out []byte, nsPath string) {
	t.Helper()
	var raw struct {
		CNIVersion string           `json:"cniVersion"`
		Interfaces []map[string]any `json:"interfaces"`
		IPs        []map[string]any `json:"ips"`
	}
	if err := json.Unmarshal(out, &raw); err != nil || raw.CNIVersion != ver || len(raw.Interfaces) != 2 || len(raw.IPs) != 1 {
		t.Fatalf("result %s (%v)", out, err)
	}
	_, hasMTU := raw.Interfaces[1]["mtu"]
	_, hasIPVersion := raw.IPs[0]["version"]
	switch ver {
	case "1.1.0", "1.0.0":
		r, err := types100.NewResult(out)
		if err != nil {
			t.Fatal(err)
		}
		res := r.(*types100.Result)
		if res.Interfaces[1].Sandbox != nsPath || *res.IPs[0].Interface != 1 || len(res.Routes) != 1 || hasIPVersion || hasMTU != (ver == "1.1.0") {
			t.Errorf("%s result: %s", ver, out)
		}
		if ver == "1.1.0" && res.Interfaces[1].Mtu != 1450 {
			t.Errorf("1.1.0 result without the MTU: %s", out)
		}
	case "0.4.0":
		r, err := types040.NewResult(out)
		if err != nil {
			t.Fatal(err)
		}
		res := r.(*types040.Result)
		if res.Interfaces[1].Sandbox != nsPath || *res.IPs[0].Interface != 1 || !hasIPVersion || hasMTU {
			t.Errorf("0.4.0 result: %s", out)
		}
	}
}

// TestLibcniGC: an attachment the runtime lost track of (no DEL, no libcni
// cache entry left to synthesize one from) is released by GC, the valid
// one is kept.
func TestLibcniGC(t *testing.T) {
	n := startNode(t)
	applyNetwork(t, n)
	ctx := context.Background()
	list, err := libcni.ConfListFromBytes(conflist("sdn-gc", "1.1.0", "proj1", n.cniSock))
	if err != nil {
		t.Fatal(err)
	}
	keep, lost := "gckeep"+randHex(6), "gclost"+randHex(6)
	for _, cid := range []string{keep, lost} {
		cfg := libcni.NewCNIConfigWithCacheDir([]string{n.bin}, t.TempDir(), nil)
		rt := &libcni.RuntimeConf{ContainerID: cid, NetNS: newNS(t, "sdncni-"+randHex(3)+"-gc"), IfName: "eth0", Args: [][2]string{{"SDN_NAME", cid}}}
		if _, err := cfg.AddNetworkList(ctx, list, rt); err != nil {
			t.Fatalf("ADD %s: %v", cid, err)
		}
	}
	cfg := libcni.NewCNIConfigWithCacheDir([]string{n.bin}, t.TempDir(), nil)
	if err := cfg.GCNetworkList(ctx, list, &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: keep, IfName: "eth0"}}}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	ws := n.workloads(t)
	if _, ok := ws[lost]; ok || n.hostVeth(t, lost, "eth0") {
		t.Errorf("GC left the lost attachment: listed %v, veth %v", ok, n.hostVeth(t, lost, "eth0"))
	}
	if _, ok := ws[keep]; !ok || !n.hostVeth(t, keep, "eth0") {
		t.Errorf("GC released the valid attachment: listed %v, veth %v", ok, n.hostVeth(t, keep, "eth0"))
	}
	if !strings.Contains(n.log.String(), "released a stale attachment") {
		t.Errorf("the agent did not log the release")
	}
	// Without the list, GC refuses rather than releasing everything.
	err = cfg.GCNetworkList(ctx, list, nil)
	var ce *types.Error
	if !errors.As(err, &ce) || ce.Code != types.ErrInvalidNetworkConfig {
		t.Errorf("GC without valid attachments: %v", err)
	}
	if _, ok := n.workloads(t)[keep]; !ok {
		t.Errorf("GC without a list released the valid attachment")
	}
	rt := &libcni.RuntimeConf{ContainerID: keep, IfName: "eth0"}
	if err := cfg.DelNetworkList(ctx, list, rt); err != nil {
		t.Errorf("DEL: %v", err)
	}
}

// TestLibcniStatusWithoutAgent: STATUS says "not available" (50) when no
// agent answers.
func TestLibcniStatusWithoutAgent(t *testing.T) {
	bin := binaries(t)
	list, err := libcni.ConfListFromBytes(conflist("sdn-none", "1.1.0", "proj1", filepath.Join(t.TempDir(), "cni.sock")))
	if err != nil {
		t.Fatal(err)
	}
	err = libcni.NewCNIConfigWithCacheDir([]string{bin}, t.TempDir(), nil).GetStatusNetworkList(context.Background(), list)
	var ce *types.Error
	if !errors.As(err, &ce) || ce.Code != types.ErrPluginNotAvailable || !strings.Contains(ce.Msg, "the socket does not exist") {
		t.Fatalf("STATUS without an agent: %#v", err)
	}
}

// TestGoCNIPortMappings: containerd's go-cni with the port-mapping
// capability, as containerd's CRI and Nomad call it; the mappings reach the
// stored workload.
func TestGoCNIPortMappings(t *testing.T) {
	n := startNode(t)
	applyNetwork(t, n)
	ctx := context.Background()
	c, err := gocni.New(gocni.WithPluginDir([]string{n.bin}), gocni.WithInterfacePrefix("eth"),
		gocni.WithConfListBytes(conflist("sdn-gocni-"+randHex(3), "1.0.0", "proj1", n.cniSock)))
	if err != nil {
		t.Fatal(err)
	}
	nsPath := newNS(t, "sdncni-"+randHex(3)+"-ctd")
	cid := "ctd" + randHex(10)
	opts := []gocni.NamespaceOpts{
		gocni.WithCapabilityPortMap([]gocni.PortMapping{{HostPort: 18080, ContainerPort: 80, Protocol: "TCP"}, {HostPort: 18053, ContainerPort: 53, Protocol: "udp", HostIP: "0.0.0.0"}}),
		gocni.WithCapabilityBandWidth(gocni.BandWidth{IngressRate: 10e6, IngressBurst: 1e6}),
		gocni.WithLabels(map[string]string{"IgnoreUnknown": "1", "K8S_POD_NAMESPACE": "default", "K8S_POD_NAME": "web-0", "K8S_POD_UID": "u1", "K8S_POD_INFRA_CONTAINER_ID": cid}),
	}
	res, err := c.Setup(ctx, cid, nsPath, opts...)
	if err != nil {
		t.Fatalf("Setup: %v\n%s", err, n.log)
	}
	if eth0 := res.Interfaces["eth0"]; eth0 == nil || len(eth0.IPConfigs) != 1 || eth0.Sandbox != nsPath {
		t.Fatalf("Setup result: %+v", res)
	}
	w, ok := n.workloads(t)["default-web-0"]
	if !ok {
		t.Fatalf("no workload default-web-0 in %v", n.workloads(t))
	}
	pm := w.PortMappings
	if len(pm) != 2 || pm[0].HostPort != 18053 || pm[0].Protocol != "udp" || pm[0].ContainerPort != 53 ||
		pm[1].HostPort != 18080 || pm[1].Protocol != "tcp" || pm[1].ContainerPort != 80 || pm[1].HostIp != "" {
		t.Errorf("stored port mappings %+v", pm)
	}
	if w.Bandwidth == nil || w.Bandwidth.IngressRate != "10000000" || w.Bandwidth.IngressBurst != "1000000" {
		t.Errorf("stored bandwidth %+v", w.Bandwidth)
	}
	if err := c.Check(ctx, cid, nsPath, opts...); err != nil {
		t.Errorf("Check: %v", err)
	}
	if err := c.Remove(ctx, cid, nsPath, opts...); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, ok := n.workloads(t)["default-web-0"]; ok {
		t.Errorf("workload still listed after Remove")
	}
}
