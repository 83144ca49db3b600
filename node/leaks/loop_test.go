package leaks

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

type fakeAgent struct{ m *model.Desired }

func (a *fakeAgent) View(fn func(m *model.Desired)) { fn(a.m) }
func (a *fakeAgent) WaitFor(context.Context, func(m *model.Desired) bool) error {
	return nil
}

type fakeHost struct {
	veths   []string
	ports   map[string]int
	removed []string
}

func (h *fakeHost) World(context.Context) (World, error) {
	return World{Veths: slices.Clone(h.veths), Ports: h.ports}, nil
}
func (h *fakeHost) RemovePort(_ context.Context, name string) error {
	delete(h.ports, name)
	h.removed = append(h.removed, "port "+name)
	return nil
}
func (h *fakeHost) RemoveVeth(_ context.Context, name string) error {
	h.veths = slices.DeleteFunc(h.veths, func(v string) bool { return v == name })
	h.removed = append(h.removed, "veth "+name)
	return nil
}

type fakeWorkloads struct {
	sdnv1.WorkloadServiceClient
	detached []string
}

func (f *fakeWorkloads) Detach(_ context.Context, req *sdnv1.DetachWorkloadRequest, _ ...grpc.CallOption) (*sdnv1.DetachWorkloadResponse, error) {
	owner := req.ContainerId + "/" + req.Ifname
	removed := !slices.Contains(f.detached, owner)
	f.detached = append(f.detached, owner)
	return &sdnv1.DetachWorkloadResponse{Removed: removed}, nil
}

func workload(name, node, cid string, kind sdnv1.OriginKind) *sdnv1.Workload {
	return &sdnv1.Workload{Name: name, Network: "n", Node: node, Ip: "10.0.0.1",
		Origin: &sdnv1.Origin{Kind: kind, ContainerId: cid, Ifname: "eth0"}}
}

// setup returns a loop over: a (veth gone, port left), b (veth and port
// present), d (Docker's, veth gone), x (another host's, veth gone here
// would not matter), an orphan veth and an orphan port without veth.
func setup(lockFree bool) (*Loop, *fakeHost, *fakeWorkloads, *time.Time) {
	m := model.NewDesired()
	m.Nodes["h1"] = &sdnv1.Node{Name: "h1", Subnet: "10.0.0.0/24"}
	for _, w := range []*sdnv1.Workload{
		workload("a", "h1", "ca", sdnv1.OriginKind_ORIGIN_KIND_CNI),
		workload("b", "h1", "cb", sdnv1.OriginKind_ORIGIN_KIND_ATTACH),
		workload("d", "h1", "cd", sdnv1.OriginKind_ORIGIN_KIND_DOCKER),
		workload("x", "h2", "cx", sdnv1.OriginKind_ORIGIN_KIND_CNI),
	} {
		m.Workloads[model.WorkloadKey(w.Network, w.Name)] = w
	}
	va, vb := link.HostVethName("ca", "eth0"), link.HostVethName("cb", "eth0")
	orphanVeth, orphanPort := link.HostVethName("gone1", "eth0"), link.HostVethName("gone2", "eth0")
	h := &fakeHost{veths: []string{vb, orphanVeth, "sdnbr0"}, ports: map[string]int{va: -1, vb: 3, orphanPort: -1, "patch-tun": 1}}
	wl := &fakeWorkloads{}
	now := time.Unix(1000, 0)
	l := New(Config{Node: "h1", Agent: &fakeAgent{m}, Host: h, Workloads: wl, Grace: 30 * time.Second, Now: func() time.Time { return now },
		Lock: func(string) (func(), bool) { return func() {}, lockFree }})
	return l, h, wl, &now
}

func TestPassReleasesGoneAndRemovesLeftovers(t *testing.T) {
	l, h, wl, now := setup(true)
	ctx := context.Background()
	out, err := l.Pass(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ca/eth0"}; !slices.Equal(wl.detached[:1], want) {
		t.Errorf("detached %v, want %v (not b: veth present; not d: Docker's; not x: another host's)", wl.detached, want)
	}
	va, orphanVeth, orphanPort := link.HostVethName("ca", "eth0"), link.HostVethName("gone1", "eth0"), link.HostVethName("gone2", "eth0")
	if want := []string{"port " + va, "port " + orphanPort}; !slices.Equal(h.removed, want) {
		t.Errorf("first pass removed %v, want %v (the orphan veth is in grace)", h.removed, want)
	}
	if len(out.Skipped) != 1 {
		t.Errorf("skipped %q, want the orphan veth in grace", out.Skipped)
	}
	*now = now.Add(31 * time.Second)
	if _, err := l.Pass(ctx, false); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(h.removed, "veth "+orphanVeth) || slices.Contains(h.veths, orphanVeth) {
		t.Errorf("after the grace the orphan veth is still there: removed %v", h.removed)
	}
	if rel, rem := l.Counts(); rel != 1 || rem != 2 {
		t.Errorf("counts released %d removed %d, want 1 and 2", rel, rem)
	}
}

func TestPassLeavesLockedAndDryAlone(t *testing.T) {
	l, _, wl, _ := setup(false)
	out, err := l.Pass(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(wl.detached) != 0 {
		t.Errorf("detached %v while a CNI operation held the container's lock", wl.detached)
	}
	if !slices.ContainsFunc(out.Skipped, func(s string) bool { return strings.Contains(s, "in progress") }) {
		t.Errorf("skipped %q, want the locked attachment", out.Skipped)
	}
	l2, h2, wl2, _ := setup(true)
	out, err = l2.Pass(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(wl2.detached) != 0 || len(h2.removed) != 0 || len(out.Actions) != 2 {
		t.Errorf("dry run: detached %v, removed %v, actions %q; want nothing done and 2 actions said", wl2.detached, h2.removed, out.Actions)
	}
}

func TestReport(t *testing.T) {
	l, _, _, _ := setup(true)
	rep, err := l.Report(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Gone) != 1 || rep.Gone[0].Name != "a" || !rep.Gone[0].Port {
		t.Errorf("gone %v, want a with its port", rep.Gone)
	}
	if len(rep.Leftovers) != 2 {
		t.Fatalf("leftovers %v, want the orphan veth and the orphan port", rep.Leftovers)
	}
	for _, lo := range rep.Leftovers {
		if lo.InGrace != lo.Veth {
			t.Errorf("leftover %v: in grace only a veth", lo)
		}
	}
}
