package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sdn-dev/sdn/model"

	"github.com/hashicorp/raft"

	"github.com/sdn-dev/sdn/cluster/fsm"
)

// Member is one server of the raft configuration.
type Member struct {
	ID      string
	Address string
	Voter   bool
}

// Members returns the raft configuration as this server knows it (the
// leader's is current; a follower's may lag), sorted by id.
func (s *Server) Members() ([]Member, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("read the raft configuration: %w", err)
	}
	var out []Member
	for _, sv := range f.Configuration().Servers {
		out = append(out, Member{ID: string(sv.ID), Address: string(sv.Address), Voter: sv.Suffrage == raft.Voter})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Info is this server's own view of raft.
type Info struct {
	ID, Address             string
	State                   string // leader, follower, candidate or shutdown
	Term                    uint64
	LastIndex, CommitIndex  uint64
	AppliedIndex            uint64
	LeaderID, LeaderAddress string
	LastContact             time.Time // a follower's last contact with the leader; zero if never
	Entries, Commands       uint64    // applied since start (see FSM.Counts)
	Started                 time.Time
	HasState                bool
	// Alarms are the server's disk alarms (diskalarm.go).
	Alarms []Alarm
}

// Info returns this server's raft state.
func (s *Server) Info() Info {
	lid, laddr := s.Leader()
	in := Info{
		ID: s.cfg.ID, Address: s.Addr(), State: strings.ToLower(s.raft.State().String()),
		Term: s.raft.CurrentTerm(), LastIndex: s.raft.LastIndex(), CommitIndex: s.raft.CommitIndex(),
		AppliedIndex: s.raft.AppliedIndex(), LeaderID: lid, LeaderAddress: laddr, Started: s.started,
		HasState: s.HasState(), Alarms: s.DiskAlarms(),
	}
	if in.State == "follower" {
		in.LastContact = s.raft.LastContact()
	}
	in.Entries, in.Commands = s.fsm.Counts()
	return in
}

// membershipTimeout bounds a configuration change.
const membershipTimeout = 30 * time.Second

// AddVoter adds a server to the cluster as a voter. Adding a server that is
// already a voter at the same address does nothing (added is false). Only
// the leader can.
func (s *Server) AddVoter(ctx context.Context, id, addr string) (added bool, err error) {
	if s.raft.State() != raft.Leader {
		return false, s.notLeader()
	}
	if id == "" || addr == "" {
		return false, fsm.Refuse(fsm.CodeInvalid, model.KindServer, id, "", "a server to add needs an id and an address")
	}
	ms, err := s.Members()
	if err != nil {
		return false, err
	}
	for _, m := range ms {
		switch {
		case m.ID == id && m.Address == addr && m.Voter:
			return false, nil
		case m.ID == id && m.Address != addr:
			return false, fsm.Refuse(fsm.CodeConflict, model.KindServer, id, "address", fmt.Sprintf("server %s is a member at %s already; remove it first (`sdnctl cluster remove %s`) to add it at %s", id, m.Address, id, addr))
		case m.ID != id && m.Address == addr:
			return false, fsm.Refuse(fsm.CodeConflict, model.KindServer, id, "address", fmt.Sprintf("address %s is member %s's; a server at one address has one id", addr, m.ID))
		}
	}
	if err := s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeoutFrom(ctx)).Error(); err != nil {
		return false, s.raftError("add voter "+id, err)
	}
	s.log.Info("added a voter", "id", id, "address", addr)
	return true, nil
}

// RemoveServer removes a server from the cluster. Only the leader can; it
// may remove itself (it steps down once the change commits). The last
// voter cannot be removed.
func (s *Server) RemoveServer(ctx context.Context, id string) error {
	if s.raft.State() != raft.Leader {
		return s.notLeader()
	}
	ms, err := s.Members()
	if err != nil {
		return err
	}
	var found *Member
	voters := 0
	var ids []string
	for i, m := range ms {
		ids = append(ids, m.ID)
		if m.Voter {
			voters++
		}
		if m.ID == id {
			found = &ms[i]
		}
	}
	if found == nil {
		return fsm.Refuse(fsm.CodeNotFound, model.KindServer, id, "", fmt.Sprintf("no server %q in the cluster; members are %s", id, strings.Join(ids, ", ")))
	}
	if found.Voter && voters == 1 {
		return fsm.Refuse(fsm.CodeConflict, model.KindServer, id, "", fmt.Sprintf("%s is the last voter; a cluster cannot lose its last voter (to start over, stop sdnd and wipe its --data-dir)", id))
	}
	if err := s.raft.RemoveServer(raft.ServerID(id), 0, timeoutFrom(ctx)).Error(); err != nil {
		return s.raftError("remove server "+id, err)
	}
	s.log.Info("removed a server", "id", id, "address", found.Address)
	return nil
}

// TransferLeadership hands leadership to the voter id (any voter when id is
// empty) and returns the new leader's id once it leads.
func (s *Server) TransferLeadership(ctx context.Context, id string) (string, error) {
	if s.raft.State() != raft.Leader {
		return "", s.notLeader()
	}
	ms, err := s.Members()
	if err != nil {
		return "", err
	}
	var target *Member
	var others []string
	for i, m := range ms {
		if m.Voter && m.ID != s.cfg.ID {
			others = append(others, m.ID)
		}
		if m.ID == id {
			target = &ms[i]
		}
	}
	switch {
	case id == s.cfg.ID:
		return "", fsm.Refuse(fsm.CodeInvalid, model.KindServer, id, "", fmt.Sprintf("%s is the leader already", id))
	case id != "" && target == nil:
		return "", fsm.Refuse(fsm.CodeNotFound, model.KindServer, id, "", fmt.Sprintf("no server %q in the cluster; voters other than the leader are %s", id, strings.Join(others, ", ")))
	case id != "" && !target.Voter:
		return "", fsm.Refuse(fsm.CodeInvalid, model.KindServer, id, "", fmt.Sprintf("%s is not a voter; only voters can lead", id))
	case len(others) == 0:
		return "", fsm.Refuse(fsm.CodeConflict, model.KindServer, s.cfg.ID, "", "this cluster has a single voter; there is no other server to hand leadership to")
	}
	var f raft.Future
	if target != nil {
		f = s.raft.LeadershipTransferToServer(raft.ServerID(target.ID), raft.ServerAddress(target.Address))
	} else {
		f = s.raft.LeadershipTransfer()
	}
	if err := f.Error(); err != nil {
		who := "no voter"
		if target != nil {
			who = target.ID
		}
		return "", s.raftError(fmt.Sprintf("transfer leadership: %s did not take over within raft's election timeout (is it up and caught up? see `sdnctl cluster members`)", who), err)
	}
	for {
		if lid, _ := s.Leader(); lid != "" && lid != s.cfg.ID {
			s.log.Info("handed leadership over", "to", lid)
			return lid, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("leadership was handed over but no new leader is known yet: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// HandOver gives leadership to another voter, if this server leads and
// another voter exists, without waiting for it to be elected: what a
// stopping leader does so the cluster need not wait for an election
// timeout. raft bounds the transfer by its election timeout.
func (s *Server) HandOver() error {
	if s.raft.State() != raft.Leader {
		return nil
	}
	ms, err := s.Members()
	if err != nil {
		return err
	}
	others := 0
	for _, m := range ms {
		if m.Voter && m.ID != s.cfg.ID {
			others++
		}
	}
	if others == 0 {
		return nil
	}
	if err := s.raft.LeadershipTransfer().Error(); err != nil {
		return s.raftError("hand leadership over", err)
	}
	return nil
}

// handOverForDisk gives leadership to another voter when this server
// leads and its disk alarm goes up: a leader that cannot write refuses
// every write and (when its state lags) every linearizable read, while a
// quorum of others may have room for both.
func (s *Server) handOverForDisk() {
	if !s.IsLeader() {
		return
	}
	if err := s.HandOver(); err != nil {
		s.log.Warn("disk alarm: could not hand leadership over to a server that may have room", "err", err)
		return
	}
	if lid, _ := s.Leader(); lid != s.cfg.ID {
		s.log.Warn("disk alarm: handed leadership over, so that servers with room go on taking writes", "to", lid)
	}
}

// raftError maps raft's errors on a configuration change to ours.
func (s *Server) raftError(what string, err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
		return s.notLeader()
	case errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%s: a leadership transfer is in progress; retry in a few seconds: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// timeoutFrom is the time left until ctx's deadline, at most
// membershipTimeout.
func timeoutFrom(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok && time.Until(d) < membershipTimeout {
		return max(time.Until(d), time.Millisecond)
	}
	return membershipTimeout
}
