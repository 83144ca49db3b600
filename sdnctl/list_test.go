package main

import (
	"context"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// pagingSDND is the test double of a sdnd with ListStream: it sends
// listResp in pages of pageSize objects (or the canned pages, when set).
type pagingSDND struct {
	*fakeSDND
	pageSize int
	pages    []*sdnv1.ListResponse
}

// List fails: sdnctl must read the pages.
func (f *pagingSDND) List(context.Context, *sdnv1.ListRequest) (*sdnv1.ListResponse, error) {
	return nil, status.Error(codes.Internal, "the test double answers ListStream only")
}

func (f *pagingSDND) ListStream(req *sdnv1.ListRequest, stream grpc.ServerStreamingServer[sdnv1.ListResponse]) error {
	f.mu.Lock()
	f.listReqs = append(f.listReqs, req)
	f.mu.Unlock()
	ps := f.pages
	if ps == nil {
		ps = splitList(f.listResp, f.pageSize)
	}
	for _, p := range ps {
		if err := stream.Send(p); err != nil {
			return err
		}
	}
	return nil
}

// splitList cuts a list into pages of n objects, the cluster settings on
// the first, as sdnd pages them.
func splitList(l *sdnv1.ListResponse, n int) []*sdnv1.ListResponse {
	out := []*sdnv1.ListResponse{{Revision: l.Revision, Cluster: l.Cluster}}
	room := func() *sdnv1.ListResponse {
		last := out[len(out)-1]
		if objects(last) == n {
			last.More = true
			last = &sdnv1.ListResponse{Revision: l.Revision}
			out = append(out, last)
		}
		return last
	}
	for _, x := range l.Networks {
		p := room()
		p.Networks = append(p.Networks, x)
	}
	for _, x := range l.Nodes {
		p := room()
		p.Nodes = append(p.Nodes, x)
	}
	for _, x := range l.Workloads {
		p := room()
		p.Workloads = append(p.Workloads, x)
	}
	return out
}

func servePaging(t *testing.T, f *pagingSDND) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	sdnv1.RegisterConfigServiceServer(s, f)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

// bigList is a list of every kind, several pages long.
func bigList() *sdnv1.ListResponse {
	l := &sdnv1.ListResponse{Revision: 77, Cluster: &sdnv1.ClusterSettings{Cidr: "10.128.0.0/14", HostPrefix: 23}}
	hcl := &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_HCL}
	for _, name := range []string{"b", "a", "c", "e", "d"} {
		l.Networks = append(l.Networks, &sdnv1.Network{Name: "net-" + name, Vnid: uint32(name[0]), Labels: map[string]string{"env": name}, Origin: hcl})
		l.Nodes = append(l.Nodes, &sdnv1.Node{Name: "host-" + name, UnderlayIp: "198.18.0." + name, Subnet: "10.128.0.0/23"})
		l.Workloads = append(l.Workloads, &sdnv1.Workload{Network: "net-a", Name: "w-" + name, Node: "host-a", Ip: "10.128.0.7", Origin: hcl})
	}
	return l
}

// TestGetReadsAllPages: get (table and JSON, --stale too) and node list
// print from ListStream's pages exactly what they print from one List
// answer (an older sdnd's, which sdnctl falls back to).
func TestGetReadsAllPages(t *testing.T) {
	old := serve(t, &fakeSDND{listResp: bigList()})
	for _, size := range []int{1, 2, 1000} {
		f := &pagingSDND{fakeSDND: &fakeSDND{listResp: bigList()}, pageSize: size}
		paged := servePaging(t, f)
		for _, args := range [][]string{
			{"get", "networks"}, {"get", "networks", "-o", "json", "--stale"},
			{"get", "workloads", "--network", "net-a"}, {"get", "workloads", "-o", "json"},
			{"get", "nodes", "--stale"}, {"get", "nodes", "-o", "json"}, {"node", "list"},
			{"get", "cluster"}, {"get", "cluster", "-o", "json"},
		} {
			want, got := sdnctl(t, old, args...), sdnctl(t, paged, args...)
			if got != want || got.code != 0 {
				t.Errorf("pages of %d: sdnctl %s printed\n%s(exit %d, stderr %q)\nwant (from one List answer):\n%s",
					size, strings.Join(args, " "), got.stdout, got.code, got.stderr, want.stdout)
			}
		}
		if r := f.listReqs[2]; r.Kind != "workloads" || r.Network != "net-a" || r.Stale {
			t.Errorf("ListStream asked %v", r)
		}
	}
}

// TestGetRefusesAPartialList: a list cut off before its last page, or
// whose pages are of different revisions, is an error, not a short table.
func TestGetRefusesAPartialList(t *testing.T) {
	pages := splitList(bigList(), 2)
	other := proto.Clone(pages[1]).(*sdnv1.ListResponse)
	other.Revision++
	for _, tc := range []struct {
		pages []*sdnv1.ListResponse
		want  string
	}{
		{pages[:2], "sdnctl: sdnd ended the list after 4 objects, before its last page; run the command again\n"},
		{[]*sdnv1.ListResponse{pages[0], other}, "sdnctl: sdnd sent pages of one list at revisions 77 and 78 (a bug in sdnd); run the command again\n"},
		{[]*sdnv1.ListResponse{}, "sdnctl: sdnd ended the list without sending any of it; run the command again\n"},
	} {
		addr := servePaging(t, &pagingSDND{fakeSDND: &fakeSDND{}, pages: tc.pages})
		r := sdnctl(t, addr, "get", "networks")
		if r.code == 0 || r.stdout != "" || r.stderr != tc.want {
			t.Errorf("exit %d, stdout %q, stderr %q; want stderr %q", r.code, r.stdout, r.stderr, tc.want)
		}
	}
}
