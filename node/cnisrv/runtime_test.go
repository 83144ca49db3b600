package cnisrv

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/datapath/link"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// fakeServersHealth stands in for the servers' gRPC health.
type fakeServersHealth struct {
	mu  sync.Mutex
	st  healthpb.HealthCheckResponse_ServingStatus
	err error
}

func (f *fakeServersHealth) set(st healthpb.HealthCheckResponse_ServingStatus, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st, f.err = st, err
}

func (f *fakeServersHealth) Check(context.Context, *healthpb.HealthCheckRequest, ...grpc.CallOption) (*healthpb.HealthCheckResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	st := f.st
	if st == healthpb.HealthCheckResponse_UNKNOWN {
		st = healthpb.HealthCheckResponse_SERVING
	}
	return &healthpb.HealthCheckResponse{Status: st}, nil
}

func (f *fakeServersHealth) List(context.Context, *healthpb.HealthListRequest, ...grpc.CallOption) (*healthpb.HealthListResponse, error) {
	return nil, status.Error(codes.Unimplemented, "fake")
}

func (f *fakeServersHealth) Watch(context.Context, *healthpb.HealthCheckRequest, ...grpc.CallOption) (grpc.ServerStreamingClient[healthpb.HealthCheckResponse], error) {
	return nil, status.Error(codes.Unimplemented, "fake")
}

// The namespace travels as an open file: the agent reaches it through
// /proc/<caller>/fd/<n> (SO_PEERCRED), whatever path the runtime named,
// and the runtime's path is what the result and the origin show.
func TestAddThroughNetnsFd(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	nsPath := testNS(t, "wl")
	f, err := os.Open(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	req := &sdnv1.CNIRequest{ContainerId: "fd0001", Ifname: "eth0", Netns: "/var/run/elsewhere/ns1", NetnsFd: int32(f.Fd()),
		Network: "proj1", Name: "web", NamePerHost: true, Mac: "0a:58:0a:80:00:99",
		PortMappings: []*sdnv1.PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
		Bandwidth:    &sdnv1.Bandwidth{IngressRate: 1e6, IngressBurst: 1e5}}
	res, err := e.client.CNIAdd(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	w := res.Workload
	if w.Name != "web-"+testNode || res.Sandbox != req.Netns || w.Origin.GetNetns() != req.Netns || res.Mac != req.Mac ||
		len(w.PortMappings) != 1 || w.PortMappings[0].HostPort != 8080 || w.Bandwidth.GetIngressRate() != 1e6 {
		t.Fatalf("result %v", res)
	}
	if out := ipIn(t, nsPath, "-o", "link", "show", "dev", "eth0"); !strings.Contains(out, "link/ether 0a:58:0a:80:00:99") {
		t.Errorf("eth0 in the namespace: %s", out)
	}
	if _, err := e.client.CNICheck(ctx, req); err != nil {
		t.Errorf("CHECK through the fd: %v", err)
	}
	// The same ADD again: the same answer, nothing allocated twice.
	attaches := len(e.cluster.workloads)
	if res2, err := e.client.CNIAdd(ctx, req); err != nil || res2.Address != res.Address || len(e.cluster.workloads) != attaches {
		t.Fatalf("second ADD: %v %v", res2, err)
	}

	bad := &sdnv1.CNIRequest{ContainerId: "fd0002", Ifname: "eth0", Netns: "/x", NetnsFd: 999, Network: "proj1", Name: "w2"}
	if _, err := e.client.CNIAdd(ctx, bad); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "netns_fd 999 of caller pid") {
		t.Errorf("ADD with a closed fd: %v", err)
	}
}

func TestPerHostName(t *testing.T) {
	for _, c := range []struct{ name, node, want string }{
		{"web", "host1", "web-host1"},
		{"web", "rack2.dc1", "web-rack2-dc1"},
	} {
		if got := perHostName(c.name, c.node); got != c.want {
			t.Errorf("perHostName(%q, %q) = %q, want %q", c.name, c.node, got, c.want)
		}
	}
	long := strings.Repeat("a", 60)
	a, b := perHostName(long, "host1"), perHostName(long, "host2")
	if len(a) != 63 || a == b {
		t.Errorf("long names: %q and %q", a, b)
	}
}

// GC releases this host's CNI attachments of the network that the runtime
// no longer lists, and nothing else.
func TestGC(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	// attach-gc05 is an sdnctl attach: no runtime's GC may release it.
	for _, cid := range []string{"gc01", "gc02", "gc03", "attach-gc05"} {
		if _, err := e.client.CNIAdd(ctx, e.request(t, cid)); err != nil {
			t.Fatal(err)
		}
	}
	other := e.request(t, "gc04")
	other.Network = "proj2"
	if _, err := e.client.CNIAdd(ctx, other); err != nil {
		t.Fatal(err)
	}
	res, err := e.client.CNIGC(ctx, &sdnv1.CNIGCRequest{Network: "proj1", ValidAttachments: []*sdnv1.CNIAttachment{{ContainerId: "gc01", Ifname: "eth0"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Released, []string{"proj1/w-gc02", "proj1/w-gc03"}) {
		t.Errorf("released %v", res.Released)
	}
	links := hostLinks(t, e)
	for cid, want := range map[string]bool{"gc01": true, "gc02": false, "gc03": false, "gc04": true, "attach-gc05": true} {
		hostIf := link.HostVethName(cid, "eth0")
		_, attached := e.cluster.workloads[cid+"/eth0"]
		if attached != want || slices.Contains(links, hostIf) != want || e.dp.plugged(hostIf) != want {
			t.Errorf("%s after GC: attached %v, veth %v, plugged %v; want %v", cid, attached, slices.Contains(links, hostIf), e.dp.plugged(hostIf), want)
		}
	}
	// Nothing stale: nothing to do.
	res, err = e.client.CNIGC(ctx, &sdnv1.CNIGCRequest{Network: "proj1", ValidAttachments: []*sdnv1.CNIAttachment{{ContainerId: "gc01", Ifname: "eth0"}}})
	if err != nil || len(res.Released) != 0 {
		t.Errorf("second GC: %v %v", res, err)
	}
}

func TestServersHealth(t *testing.T) {
	e := start(t)
	h := healthpb.NewHealthClient(e.conn)
	check := func() error {
		_, err := h.Check(context.Background(), &healthpb.HealthCheckRequest{Service: ServersHealthService})
		return err
	}
	if err := check(); err != nil {
		t.Fatalf("servers serving: %v", err)
	}
	e.servers.set(healthpb.HealthCheckResponse_NOT_SERVING, nil)
	if err := check(); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "know no raft leader") {
		t.Errorf("servers without a leader: %v", err)
	}
	e.servers.set(0, status.Error(codes.Unavailable, "connection refused"))
	if err := check(); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "out of reach: connection refused") {
		t.Errorf("servers gone: %v", err)
	}
}
