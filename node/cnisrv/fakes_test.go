package cnisrv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Test addresses: workloads in 10.128.0.0/23, only inside namespaces the
// test creates; nothing is configured in the namespace the test runs in.

const testNode = "host1"

// fakeCluster stands in for the servers' workload service and for the
// agent's mirror of them.
type fakeCluster struct {
	mu        sync.Mutex
	rev       uint64
	next      int
	workloads map[string]*sdnv1.Workload // by container id + "/" + ifname
	detachErr error
	syncErr   error
	synced    []uint64
	attaches  int
	detaches  int
	dnsDomain string // the cluster's dns_domain, "" for the default
}

func newFakeCluster() *fakeCluster {
	return &fakeCluster{rev: 1, next: 5, workloads: map[string]*sdnv1.Workload{}}
}

func (f *fakeCluster) Attach(_ context.Context, in *sdnv1.AttachWorkloadRequest, _ ...grpc.CallOption) (*sdnv1.AttachWorkloadResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attaches++
	w := in.Workload
	key := w.Origin.ContainerId + "/" + w.Origin.Ifname
	if old, ok := f.workloads[key]; ok {
		return &sdnv1.AttachWorkloadResponse{Workload: old, GatewayIp: "10.128.0.1", Mtu: 1450, PrefixLength: 23, Revision: f.rev}, nil
	}
	if w.Network == "nope" {
		return nil, status.Error(codes.NotFound, `unknown network "nope"; `+"`sdnctl get networks` lists them")
	}
	f.rev++
	out := &sdnv1.Workload{Name: w.Name, Network: w.Network, Node: w.Node, Labels: w.Labels, NamedPorts: w.NamedPorts, Origin: w.Origin,
		Ip: fmt.Sprintf("10.128.0.%d", f.next), Mac: fmt.Sprintf("0a:58:0a:80:00:%02x", f.next), ModRevision: f.rev}
	if w.Mac != "" {
		out.Mac = w.Mac
	}
	out.PortMappings, out.Bandwidth = w.PortMappings, w.Bandwidth
	f.next++
	f.workloads[key] = out
	return &sdnv1.AttachWorkloadResponse{Workload: out, GatewayIp: "10.128.0.1", Mtu: 1450, PrefixLength: 23, Revision: f.rev}, nil
}

func (f *fakeCluster) Detach(_ context.Context, in *sdnv1.DetachWorkloadRequest, _ ...grpc.CallOption) (*sdnv1.DetachWorkloadResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.detaches++
	if f.detachErr != nil {
		return nil, f.detachErr
	}
	key := in.ContainerId + "/" + in.Ifname
	if _, ok := f.workloads[key]; !ok {
		return &sdnv1.DetachWorkloadResponse{Revision: f.rev}, nil
	}
	delete(f.workloads, key)
	f.rev++
	return &sdnv1.DetachWorkloadResponse{Removed: true, Revision: f.rev}, nil
}

func (f *fakeCluster) mirror() *model.Desired {
	m := model.NewDesired()
	m.Revision = f.rev
	m.Cluster = &sdnv1.ClusterSettings{EffectiveMtu: 1450, DnsDomain: f.dnsDomain}
	m.Nodes[testNode] = &sdnv1.Node{Name: testNode, Subnet: "10.128.0.0/23", GatewayIp: "10.128.0.1"}
	for _, w := range f.workloads {
		m.Workloads[w.Network+"/"+w.Name] = w
	}
	return m
}

func (f *fakeCluster) View(fn func(m *model.Desired)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.mirror())
}

func (f *fakeCluster) WaitFor(_ context.Context, cond func(m *model.Desired) bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !cond(f.mirror()) {
		return errors.New("fake: condition does not hold")
	}
	return nil
}

func (f *fakeCluster) Sync(ctx context.Context, rev uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.synced = append(f.synced, rev)
	return f.syncErr
}

func (f *fakeCluster) Realized(ctx context.Context, rev uint64, _ time.Time) error {
	return f.Sync(ctx, rev)
}

// fakeDatapath records plugged ports.
type fakeDatapath struct {
	mu      sync.Mutex
	ports   map[string]int
	plugErr error
}

func (d *fakeDatapath) BeginPlug(string) {}

func (d *fakeDatapath) PlugWorkload(_ context.Context, name string) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.plugErr != nil {
		return 0, d.plugErr
	}
	if d.ports == nil {
		d.ports = map[string]int{}
	}
	if _, ok := d.ports[name]; !ok {
		d.ports[name] = len(d.ports) + 10
	}
	return d.ports[name], nil
}

func (d *fakeDatapath) UnplugWorkload(_ context.Context, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.ports, name)
	return nil
}

func (d *fakeDatapath) plugged(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.ports[name]
	return ok
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create network namespaces and veths")
	}
}

// testNS creates a uniquely named network namespace, deleted after the test.
func testNS(t *testing.T, role string) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "sdncs-" + hex.EncodeToString(b) + "-" + role
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
