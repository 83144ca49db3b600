package dockerdrv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"

	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// fakeServers stands in for the servers' workload service (idempotent per
// owner, as the FSM is) and for the agent's desired state.
type fakeServers struct {
	mu      sync.Mutex
	next    int
	byOwner map[string]*sdnv1.Workload
	plugged map[string]bool
}

func newFakeServers() *fakeServers {
	return &fakeServers{next: 5, byOwner: map[string]*sdnv1.Workload{}, plugged: map[string]bool{}}
}

func (f *fakeServers) Attach(_ context.Context, in *sdnv1.AttachWorkloadRequest, _ ...grpc.CallOption) (*sdnv1.AttachWorkloadResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := in.Workload
	key := w.Origin.ContainerId + "/" + w.Origin.Ifname
	if old, ok := f.byOwner[key]; ok {
		return &sdnv1.AttachWorkloadResponse{Workload: old, GatewayIp: "10.128.0.1", Mtu: 1450, PrefixLength: 23, Revision: 7}, nil
	}
	out := &sdnv1.Workload{Name: w.Name, Network: w.Network, Node: w.Node, Origin: w.Origin,
		Ip: fmt.Sprintf("10.128.0.%d", f.next), Mac: fmt.Sprintf("0a:58:0a:80:00:%02x", f.next)}
	f.next++
	f.byOwner[key] = out
	return &sdnv1.AttachWorkloadResponse{Workload: out, GatewayIp: "10.128.0.1", Mtu: 1450, PrefixLength: 23, Revision: 7}, nil
}

func (f *fakeServers) Detach(_ context.Context, in *sdnv1.DetachWorkloadRequest, _ ...grpc.CallOption) (*sdnv1.DetachWorkloadResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := in.ContainerId + "/" + in.Ifname
	_, ok := f.byOwner[key]
	delete(f.byOwner, key)
	return &sdnv1.DetachWorkloadResponse{Removed: ok}, nil
}

func (f *fakeServers) View(fn func(m *model.Desired)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := model.NewDesired()
	m.Networks["proj1"] = &sdnv1.Network{Name: "proj1"}
	for _, w := range f.byOwner {
		m.Workloads[model.WorkloadKey(w.Network, w.Name)] = w
	}
	fn(m)
}

func (f *fakeServers) Sync(context.Context, uint64) error { return nil }

func (f *fakeServers) PlugWorkload(_ context.Context, name string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plugged[name] = true
	return 1, nil
}

func (f *fakeServers) UnplugWorkload(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.plugged, name)
	return nil
}

// serve starts a driver on a unix socket and returns a client of it.
func serve(t *testing.T, f *fakeServers, stateFile, hostNS string) func(method string, body any) (int, map[string]any) {
	t.Helper()
	d, err := New(Config{Node: "host1", Workloads: f, Agent: f, Datapath: f, StateFile: stateFile, HostNSPath: hostNS})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "sdn.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Serve(ctx, lis); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	return func(method string, body any) (int, map[string]any) {
		t.Helper()
		var b []byte
		if s, ok := body.(string); ok {
			b = []byte(s)
		} else if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
		resp, err := c.Post("http://plugin/"+method, contentType, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		out := map[string]any{}
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s: answer %q is not a JSON object: %v", method, raw, err)
		}
		return resp.StatusCode, out
	}
}

func generic(opts map[string]any) map[string]any { return map[string]any{genericOptions: opts} }

func TestHandshake(t *testing.T) {
	call := serve(t, newFakeServers(), filepath.Join(t.TempDir(), "networks.json"), "")
	if _, out := call("Plugin.Activate", ""); fmt.Sprint(out["Implements"]) != "[NetworkDriver]" {
		t.Errorf("Activate: %v", out)
	}
	if _, out := call("NetworkDriver.GetCapabilities", ""); out["Scope"] != "local" {
		t.Errorf("GetCapabilities: %v", out)
	}
	if code, out := call("NetworkDriver.CreateNetwork", "{not json"); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["Err"]), "cannot decode") {
		t.Errorf("bad JSON: %d %v", code, out)
	}
	for _, m := range []string{"DiscoverNew", "DiscoverDelete", "ProgramExternalConnectivity", "RevokeExternalConnectivity", "FreeNetwork"} {
		if code, out := call("NetworkDriver."+m, "{}"); code != 200 || out["Err"] != nil {
			t.Errorf("%s: %d %v", m, code, out)
		}
	}
}

func TestCreateNetworkRefusals(t *testing.T) {
	call := serve(t, newFakeServers(), filepath.Join(t.TempDir(), "networks.json"), "")
	for _, c := range []struct {
		req  createNetworkRequest
		want string
	}{
		{createNetworkRequest{NetworkID: "n1", Options: generic(map[string]any{"network": "proj1"}), IPv4Data: []ipamData{{Pool: "172.18.0.0/16"}}}, "--ipam-driver null"},
		{createNetworkRequest{NetworkID: "n1", Options: generic(map[string]any{"network": "nosuch"})}, `no sdn network named "nosuch"`},
		{createNetworkRequest{NetworkID: "n1", Options: generic(map[string]any{})}, "--opt network=NAME"},
		{createNetworkRequest{NetworkID: "n1", Options: generic(map[string]any{"network": "proj1", "vlan": "3"})}, "unknown driver option(s) vlan"},
	} {
		code, out := call("NetworkDriver.CreateNetwork", c.req)
		if code != 200 || !strings.Contains(fmt.Sprint(out["Err"]), c.want) {
			t.Errorf("CreateNetwork %+v: want Err with %q, got %d %v", c.req, c.want, code, out)
		}
	}
	// Refused networks are not recorded: an endpoint in one is refused.
	_, out := call("NetworkDriver.CreateEndpoint", createEndpointRequest{NetworkID: "n1", EndpointID: "e1"})
	if !strings.Contains(fmt.Sprint(out["Err"]), "was not created through this host's sdn driver") {
		t.Errorf("CreateEndpoint in an unrecorded network: %v", out)
	}
}

// TestEndpointLifecycle: the network record survives a new driver (an sdnd
// restart); CreateEndpoint answers the servers' address and MAC; Join
// answers the peer; DeleteEndpoint detaches by owner, twice without error.
func TestEndpointLifecycle(t *testing.T) {
	f := newFakeServers()
	state := filepath.Join(t.TempDir(), "networks.json")
	call := serve(t, f, state, "")
	ok := createNetworkRequest{NetworkID: "n1", Options: generic(map[string]any{"network": "proj1"}), IPv4Data: []ipamData{{AddressSpace: "null", Pool: "0.0.0.0/0"}}}
	if _, out := call("NetworkDriver.CreateNetwork", ok); out["Err"] != nil {
		t.Fatalf("CreateNetwork: %v", out)
	}
	call = serve(t, f, state, "") // as after an sdnd restart
	eid := strings.Repeat("4b", 32)
	_, out := call("NetworkDriver.CreateEndpoint", createEndpointRequest{NetworkID: "n1", EndpointID: eid, Interface: &endpointInterface{}})
	iface, _ := out["Interface"].(map[string]any)
	if iface["Address"] != "10.128.0.5/23" || iface["MacAddress"] != "0a:58:0a:80:00:05" {
		t.Fatalf("CreateEndpoint: %v", out)
	}
	w := f.byOwner[eid+"/"+OwnerIfname]
	if w == nil || w.Name != "docker-4b4b4b4b4b4b" || w.Origin.Kind != sdnv1.OriginKind_ORIGIN_KIND_DOCKER || w.Network != "proj1" {
		t.Fatalf("attached workload: %v", w)
	}
	_, out = call("NetworkDriver.EndpointOperInfo", endpointRequest{NetworkID: "n1", EndpointID: eid})
	if v, _ := out["Value"].(map[string]any); v["sdn.workload"] != "proj1/docker-4b4b4b4b4b4b" {
		t.Errorf("EndpointOperInfo: %v", out)
	}
	_, out = call("NetworkDriver.CreateEndpoint", createEndpointRequest{NetworkID: "n1", EndpointID: "e2", Interface: &endpointInterface{Address: "172.18.0.2/16"}})
	if !strings.Contains(fmt.Sprint(out["Err"]), "--ipam-driver null") {
		t.Errorf("CreateEndpoint with an IPAM address: %v", out)
	}
	for range 2 {
		if _, out := call("NetworkDriver.DeleteEndpoint", endpointRequest{NetworkID: "n1", EndpointID: eid}); out["Err"] != nil {
			t.Fatalf("DeleteEndpoint: %v", out)
		}
	}
	if len(f.byOwner) != 0 {
		t.Errorf("DeleteEndpoint left %v", f.byOwner)
	}
	if _, out := call("NetworkDriver.DeleteNetwork", networkRequest{NetworkID: "n1"}); out["Err"] != nil {
		t.Fatalf("DeleteNetwork: %v", out)
	}
	if b, _ := os.ReadFile(state); strings.Contains(string(b), "n1") {
		t.Errorf("DeleteNetwork left the record: %s", b)
	}
}

// TestJoinLeave creates the veth pair in a namespace of its own: Join hands
// Docker a peer with the workload's MAC and MTU, with tx checksum offload
// off, and the host end plugged; Leave removes both.
func TestJoinLeave(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	ns := fmt.Sprintf("sdndk%d", os.Getpid())
	path, err := link.NewNS(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { link.DeleteNS(ns) })
	f := newFakeServers()
	call := serve(t, f, filepath.Join(t.TempDir(), "networks.json"), path)
	call("NetworkDriver.CreateNetwork", createNetworkRequest{NetworkID: "n1", Options: generic(map[string]any{"network": "proj1"})})
	eid := strings.Repeat("ab", 32)
	call("NetworkDriver.CreateEndpoint", createEndpointRequest{NetworkID: "n1", EndpointID: eid})
	for range 2 { // a retried Join finds the pair
		_, out := call("NetworkDriver.Join", joinRequest{NetworkID: "n1", EndpointID: eid, SandboxKey: "/var/run/docker/netns/x"})
		names, _ := out["InterfaceName"].(map[string]any)
		if names["SrcName"] != peerVeth(eid) || names["DstPrefix"] != "eth" || out["Gateway"] != "10.128.0.1" {
			t.Fatalf("Join: %v", out)
		}
	}
	if !f.plugged[hostVeth(eid)] {
		t.Errorf("Join did not plug %s", hostVeth(eid))
	}
	h, err := link.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	info, ok, err := h.Iface(peerVeth(eid))
	if err != nil || !ok || info.MAC.String() != "0a:58:0a:80:00:05" || info.MTU != 1450 {
		t.Errorf("peer %s: %+v %v %v", peerVeth(eid), info, ok, err)
	}
	if on, err := h.TxChecksum(peerVeth(eid)); err != nil || !on {
		t.Errorf("peer tx checksum: on=%v err=%v (want on: TxChecksumOff unset)", on, err)
	}
	if _, out := call("NetworkDriver.Leave", endpointRequest{NetworkID: "n1", EndpointID: eid}); out["Err"] != nil {
		t.Fatalf("Leave: %v", out)
	}
	names, err := h.LinkNames("sd")
	if err != nil || len(names) != 0 || f.plugged[hostVeth(eid)] {
		t.Errorf("after Leave: links %v (%v), plugged %v", names, err, f.plugged)
	}
}
