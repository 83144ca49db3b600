package api

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/sdn-dev/sdn/cluster"
	"github.com/sdn-dev/sdn/cluster/command"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// infoTimeout bounds how long Members waits for each server's own report.
const infoTimeout = time.Second

// Members lists the raft configuration, each server with its own report;
// a server that does not answer is listed as unreachable.
func (s *Server) Members(ctx context.Context, req *sdnv1.MembersRequest) (*sdnv1.MembersResponse, error) {
	ms, err := s.cluster.Members()
	if err != nil {
		return nil, toStatus(err)
	}
	lid, _ := s.cluster.Leader()
	out := &sdnv1.MembersResponse{LeaderId: lid, Servers: make([]*sdnv1.Server, len(ms))}
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sv := &sdnv1.Server{Id: m.ID, Address: m.Address, Voter: m.Voter}
			if m.ID == s.cluster.ID() {
				sv = serverInfo(s.cluster.Info())
			} else if got, err := s.remoteInfo(ctx, m.Address); err != nil {
				sv.State, sv.Error = "unreachable", err.Error()
			} else {
				sv = got
				if sv.Id != m.ID {
					sv.Error = fmt.Sprintf("the server at %s says it is %s, not %s", m.Address, sv.Id, m.ID)
					sv.Id = m.ID
				}
			}
			sv.Address, sv.Voter, sv.Leader = m.Address, m.Voter, m.ID == lid
			if s.cluster.IsLeader() {
				sv.StateCheck = s.stateCheckOf(m.ID)
			}
			out.Servers[i] = sv
		}()
	}
	wg.Wait()
	if rep := s.checks.last.Load(); rep != nil && s.cluster.IsLeader() {
		out.StateCheckAdvice = rep.Advice
	}
	return out, nil
}

func (s *Server) remoteInfo(ctx context.Context, addr string) (*sdnv1.Server, error) {
	c, err := s.peers.Cluster(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, infoTimeout)
	defer cancel()
	// Wait for a connection being made (Peers.Conn just asked for one)
	// rather than fail at once on the last attempt's error.
	r, err := c.Info(ctx, &sdnv1.InfoRequest{}, grpc.WaitForReady(true))
	if err != nil {
		return nil, fmt.Errorf("no answer from %s: %s", addr, status.Convert(err).Message())
	}
	return r.GetServer(), nil
}

// serverInfo converts a server's own view to the API's.
func serverInfo(in cluster.Info) *sdnv1.Server {
	sv := &sdnv1.Server{
		Id: in.ID, Address: in.Address, State: in.State, Term: in.Term, LastIndex: in.LastIndex,
		CommitIndex: in.CommitIndex, AppliedIndex: in.AppliedIndex, LeaderId: in.LeaderID,
		EntriesApplied: in.Entries, CommandsApplied: in.Commands, Leader: in.State == "leader",
		CommandFormat: uint32(command.Latest),
	}
	if !in.LastContact.IsZero() {
		sv.LastContactUnixMs = in.LastContact.UnixMilli()
	}
	for _, a := range in.Alarms {
		sv.DiskAlarms = append(sv.DiskAlarms, &sdnv1.DiskAlarm{File: a.File, Device: a.Device, MountPoint: a.Mount,
			FreeBytes: a.Free, SizeBytes: a.Size, Problem: a.Problem(), SinceUnixMs: a.Since.UnixMilli()})
	}
	return sv
}

// Info is this server's own raft state.
func (s *Server) Info(context.Context, *sdnv1.InfoRequest) (*sdnv1.InfoResponse, error) {
	return &sdnv1.InfoResponse{Server: serverInfo(s.cluster.Info())}, nil
}

// Join adds the server at an address as a voter. The server is asked for
// its id (and checked against the one given), and refused when it already
// holds raft state of its own: it would be another cluster's, or a stale
// copy of this one's.
func (s *Server) Join(ctx context.Context, req *sdnv1.JoinRequest) (*sdnv1.JoinResponse, error) {
	if _, _, err := net.SplitHostPort(req.Address); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "join address %q: want the new server's host:port (its --listen or --raft-advertise address): %v", req.Address, err)
	}
	ms, err := s.cluster.Members()
	if err != nil {
		return nil, toStatus(err)
	}
	for _, m := range ms {
		if m.Address == req.Address && (req.Id == "" || req.Id == m.ID) && m.Voter {
			return &sdnv1.JoinResponse{Id: m.ID, Address: m.Address}, nil
		}
	}
	c, err := s.peers.Cluster(req.Address)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	hello, err := c.Hello(hctx, s.hello())
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "cannot reach a server at %s: %s; start `sdnd --server` there first (a voter that cannot be reached would only weaken the quorum)",
			req.Address, status.Convert(err).Message())
	}
	id := hello.GetSelf().GetId()
	if req.Id != "" && req.Id != id {
		return nil, status.Errorf(codes.FailedPrecondition, "the server at %s is %q, not %q", req.Address, id, req.Id)
	}
	if hello.HasState {
		return nil, status.Errorf(codes.FailedPrecondition, "server %s at %s holds raft state already (it belongs to another cluster, or was removed from this one); stop it, empty its --data-dir and start it again, then join it", id, req.Address)
	}
	added, err := s.cluster.AddVoter(ctx, id, req.Address)
	if err != nil {
		return nil, toStatus(err)
	}
	return &sdnv1.JoinResponse{Id: id, Address: req.Address, Added: added}, nil
}

// RemoveServer removes a server from the raft configuration.
func (s *Server) RemoveServer(ctx context.Context, req *sdnv1.RemoveServerRequest) (*sdnv1.RemoveServerResponse, error) {
	if req.Id == "" {
		return nil, status.Error(codes.InvalidArgument, "name the server to remove by its id (`sdnctl cluster members` lists them)")
	}
	if err := s.cluster.RemoveServer(ctx, req.Id); err != nil {
		return nil, toStatus(err)
	}
	return &sdnv1.RemoveServerResponse{}, nil
}

// TransferLeader hands leadership to another voter.
func (s *Server) TransferLeader(ctx context.Context, req *sdnv1.TransferLeaderRequest) (*sdnv1.TransferLeaderResponse, error) {
	id, err := s.cluster.TransferLeadership(ctx, req.Id)
	if err != nil {
		return nil, toStatus(err)
	}
	return &sdnv1.TransferLeaderResponse{LeaderId: id}, nil
}

// Hello answers a server that is forming or joining a cluster: who this
// server is, whether it holds raft state, the leader it knows, and the
// servers it knows of.
func (s *Server) Hello(_ context.Context, req *sdnv1.HelloRequest) (*sdnv1.HelloResponse, error) {
	if s.formation != nil && req.Expect > 0 {
		// Only servers forming a cluster count; one that only joins is
		// not one of the expected N.
		var ps []cluster.Peer
		for _, p := range append([]*sdnv1.Peer{req.Self}, req.Known...) {
			if p.GetId() != "" && p.GetAddress() != "" {
				ps = append(ps, cluster.Peer{ID: p.Id, Address: p.Address})
			}
		}
		s.formation.Learn(ps)
	}
	r := s.hello()
	return &sdnv1.HelloResponse{Self: r.Self, Expect: r.Expect, Known: r.Known, HasState: s.cluster.HasState(),
		LeaderId: leaderID(s.cluster), LeaderAddress: leaderAddress(s.cluster)}, nil
}

// hello is this server's introduction: itself, its --bootstrap-expect and
// the servers it knows (those it forms a cluster with, or the raft
// configuration's).
func (s *Server) hello() *sdnv1.HelloRequest {
	r := &sdnv1.HelloRequest{Self: &sdnv1.Peer{Id: s.cluster.ID(), Address: s.cluster.Addr()}}
	var known []cluster.Peer
	if s.formation != nil {
		expect, k := s.formation.Learn(nil)
		r.Expect, known = uint32(expect), k
	} else if ms, err := s.cluster.Members(); err == nil {
		for _, m := range ms {
			known = append(known, cluster.Peer{ID: m.ID, Address: m.Address})
		}
	}
	for _, p := range known {
		r.Known = append(r.Known, &sdnv1.Peer{Id: p.ID, Address: p.Address})
	}
	return r
}

func leaderID(c *cluster.Server) string      { id, _ := c.Leader(); return id }
func leaderAddress(c *cluster.Server) string { _, a := c.Leader(); return a }
