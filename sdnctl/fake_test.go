package main

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// fakeSDND is a test double of sdnd, the network peer, for the rendering
// tests in cli_test.go only: canned answers, recorded requests.
type fakeSDND struct {
	sdnv1.UnimplementedConfigServiceServer
	sdnv1.UnimplementedStatusServiceServer
	sdnv1.UnimplementedClusterServiceServer
	sdnv1.UnimplementedNodeServiceServer

	applyResp  *sdnv1.ApplyResponse
	applyErr   error
	listResp   *sdnv1.ListResponse
	deleteResp *sdnv1.DeleteResponse
	deleteErr  error
	statusResp *sdnv1.StatusResponse
	progress   []*sdnv1.WaitRealizedProgress
	waitErr    error // returned after progress is sent
	waitCuts   int   // this many first WaitRealized calls send progress[0], then fail Unavailable
	members    *sdnv1.MembersResponse
	clusterErr error // returned by the ClusterService calls
	joinResp   *sdnv1.JoinResponse
	drainResp  *sdnv1.DrainNodeResponse
	removeResp *sdnv1.RemoveNodeResponse
	nodeErr    error // returned by Drain and Remove

	mu         sync.Mutex
	applyReqs  []*sdnv1.ApplyRequest
	listReqs   []*sdnv1.ListRequest
	deleteReqs []*sdnv1.DeleteRequest
	waitReqs   []*sdnv1.WaitRealizedRequest
	clusterReq []string // what the ClusterService was asked, as text
	nodeReqs   []string // what Drain and Remove were asked, as text
}

func (f *fakeSDND) Drain(_ context.Context, req *sdnv1.DrainNodeRequest) (*sdnv1.DrainNodeResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodeReqs = append(f.nodeReqs, fmt.Sprintf("drain %s %t", req.Name, req.Drain))
	return f.drainResp, f.nodeErr
}

func (f *fakeSDND) Remove(_ context.Context, req *sdnv1.RemoveNodeRequest) (*sdnv1.RemoveNodeResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodeReqs = append(f.nodeReqs, fmt.Sprintf("remove %s force=%t", req.Name, req.Force))
	return f.removeResp, f.nodeErr
}

func (f *fakeSDND) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clusterReq = append(f.clusterReq, s)
}

func (f *fakeSDND) Members(_ context.Context, req *sdnv1.MembersRequest) (*sdnv1.MembersResponse, error) {
	f.record("members stale=" + fmt.Sprint(req.Stale))
	return f.members, f.clusterErr
}

func (f *fakeSDND) Join(_ context.Context, req *sdnv1.JoinRequest) (*sdnv1.JoinResponse, error) {
	f.record("join " + req.Address + " id=" + req.Id)
	return f.joinResp, f.clusterErr
}

func (f *fakeSDND) RemoveServer(_ context.Context, req *sdnv1.RemoveServerRequest) (*sdnv1.RemoveServerResponse, error) {
	f.record("remove " + req.Id)
	return &sdnv1.RemoveServerResponse{}, f.clusterErr
}

func (f *fakeSDND) TransferLeader(_ context.Context, req *sdnv1.TransferLeaderRequest) (*sdnv1.TransferLeaderResponse, error) {
	f.record("transfer " + req.Id)
	return &sdnv1.TransferLeaderResponse{LeaderId: "s2"}, f.clusterErr
}

func (f *fakeSDND) Apply(_ context.Context, req *sdnv1.ApplyRequest) (*sdnv1.ApplyResponse, error) {
	f.mu.Lock()
	f.applyReqs = append(f.applyReqs, req)
	f.mu.Unlock()
	return f.applyResp, f.applyErr
}

func (f *fakeSDND) List(_ context.Context, req *sdnv1.ListRequest) (*sdnv1.ListResponse, error) {
	f.mu.Lock()
	f.listReqs = append(f.listReqs, req)
	f.mu.Unlock()
	return f.listResp, nil
}

func (f *fakeSDND) Delete(_ context.Context, req *sdnv1.DeleteRequest) (*sdnv1.DeleteResponse, error) {
	f.mu.Lock()
	f.deleteReqs = append(f.deleteReqs, req)
	f.mu.Unlock()
	return f.deleteResp, f.deleteErr
}

func (f *fakeSDND) Status(context.Context, *sdnv1.StatusRequest) (*sdnv1.StatusResponse, error) {
	return f.statusResp, nil
}

func (f *fakeSDND) WaitRealized(req *sdnv1.WaitRealizedRequest, stream grpc.ServerStreamingServer[sdnv1.WaitRealizedProgress]) error {
	f.mu.Lock()
	f.waitReqs = append(f.waitReqs, req)
	cut := len(f.waitReqs) <= f.waitCuts
	f.mu.Unlock()
	if cut {
		if err := stream.Send(f.progress[0]); err != nil {
			return err
		}
		return status.Error(codes.Unavailable, "this server stopped leading while waiting for hosts to realize the revision; ask the new leader")
	}
	for _, p := range f.progress {
		if err := stream.Send(p); err != nil {
			return err
		}
	}
	return f.waitErr
}

// serve starts the double on a loopback port and returns its address.
func serve(t *testing.T, f *fakeSDND) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	sdnv1.RegisterConfigServiceServer(s, f)
	sdnv1.RegisterStatusServiceServer(s, f)
	sdnv1.RegisterClusterServiceServer(s, f)
	sdnv1.RegisterNodeServiceServer(s, f)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}
