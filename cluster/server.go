package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/sdn-dev/sdn/cluster/fsm"
)

// Config configures a raft server.
type Config struct {
	// DataDir holds raft/ (log, stable store, snapshots) and state.db.
	DataDir string
	// ID is this server's raft id (stable across restarts).
	ID string
	// Transport carries raft to the other servers; sdnd passes a network
	// transport over its transport.Mux, tests an in-memory one. When nil,
	// raft listens alone on RaftAddr (advertising Advertise when set).
	Transport raft.Transport
	RaftAddr  string
	Advertise string
	// Bootstrap makes a server with no raft state start a new cluster with
	// itself as the only voter (what `sdnd --dev` does).
	Bootstrap bool
	// Peers, when set, is the whole initial cluster (this server included),
	// given identically to every server: a server with no raft state
	// bootstraps with exactly these voters. Every server doing so with the
	// same list is safe; they form one cluster.
	Peers []Peer
	// Logger receives raft's logs too.
	Logger *slog.Logger
	// ApplyTimeout bounds how long a write waits to be committed.
	ApplyTimeout time.Duration
	// Tune, when set, adjusts raft's configuration before it starts
	// (tests shorten the timeouts).
	Tune func(*raft.Config)

	// syncState fsyncs the state file on every apply, and logFreelistSync
	// makes raft.db persist its freelist: what sdnd did before (benchmarks
	// compare).
	syncState, logFreelistSync bool
	// unsafeLogNoSync skips the raft log's fsyncs: unsafe, never set but
	// by a benchmark measuring what they cost.
	unsafeLogNoSync bool
}

// Peer is one voter of a cluster: its raft id and the address the others
// reach it at.
type Peer struct {
	ID      string
	Address string
}

// Server is one raft server with its FSM.
type Server struct {
	cfg      Config
	raft     *raft.Raft
	fsm      *fsm.FSM
	hub      *Hub
	logs     *raftboltdb.BoltStore
	trans    raft.Transport
	log      *slog.Logger
	proposer *proposer
	started  time.Time
	// stateNoSync: the state file is written without fsync.
	stateNoSync bool
	// restoring is set while RestoreState runs (one at a time).
	restoring atomic.Bool
	// damaged receives the damage found in the open state file.
	damaged chan error
	// alarm watches the writes to the state file and the raft log
	// (diskalarm.go); halt, closed by Shutdown, stops the FSM retrying a
	// batch the state file cannot take.
	alarm    *diskAlarm
	halt     chan struct{}
	haltOnce sync.Once
	// heartbeatTimeout is raft's: how long followers wait for the leader
	// before they elect another.
	heartbeatTimeout time.Duration
	// format2 is set once this server may write command envelopes of
	// format 2 (integrity.go).
	format2 atomic.Bool
	// failed is closed when the server stops applying its log (failure
	// says why).
	failed   chan struct{}
	failOnce sync.Once
	failure  error
}

// NewServer opens (or creates) the server's data and starts raft.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ApplyTimeout == 0 {
		cfg.ApplyTimeout = 10 * time.Second
	}
	if cfg.Bootstrap && len(cfg.Peers) > 0 {
		return nil, errors.New("bootstrap a single voter or with a peer list, not both")
	}
	raftDir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	hub := NewHub()
	damaged := make(chan error, 1)
	f, noSync, err := openState(cfg.DataDir, cfg.syncState, hub, cfg.Logger, stateDamaged(damaged, cfg.Logger))
	if err != nil {
		if cfg.Transport != nil {
			closeTransport(cfg.Transport)
		}
		return nil, err
	}
	s := &Server{cfg: cfg, fsm: f, hub: hub, stateNoSync: noSync, log: cfg.Logger, started: time.Now(), damaged: damaged, halt: make(chan struct{}),
		failed: make(chan struct{}),
		alarm:  newDiskAlarm(cfg.ID, cfg.Logger, filepath.Join(cfg.DataDir, stateFile), filepath.Join(raftDir, "raft.db"))}
	f.WatchWrites(stateWatch{s.alarm, s.halt})
	s.alarm.onAlarm = s.handOverForDisk
	s.proposer = &proposer{s: s}
	f.OnHalt(s.fsmHalted)
	if err := s.start(raftDir); err != nil {
		s.closeStores()
		return nil, err
	}
	return s, nil
}

func (s *Server) start(raftDir string) error {
	cfg := s.cfg
	s.trans = cfg.Transport
	if s.trans == nil {
		var advAddr net.Addr
		if cfg.Advertise != "" {
			a, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
			if err != nil {
				return fmt.Errorf("raft advertise address %q: %w", cfg.Advertise, err)
			}
			advAddr = a
		}
		trans, err := raft.NewTCPTransportWithLogger(cfg.RaftAddr, advAddr, 3, 10*time.Second, hclogFor(s.log, "transport"))
		if err != nil {
			return fmt.Errorf("raft listen on %s: %w", cfg.RaftAddr, err)
		}
		s.trans = trans
	}
	if err := checkPeers(cfg.ID, string(s.trans.LocalAddr()), cfg.Peers); err != nil {
		return err
	}
	// Every StoreLogs is one bbolt commit with its two fdatasyncs: the raft
	// log stays durable per batch. The freelist is not written with each
	// commit (bbolt rebuilds it when it opens the file), as etcd and Consul
	// do.
	logs, err := openRaftLog(filepath.Join(raftDir, "raft.db"), raftboltdb.Options{Path: filepath.Join(raftDir, "raft.db"), NoSync: cfg.unsafeLogNoSync,
		BoltOptions: &bolt.Options{Timeout: 5 * time.Second, NoFreelistSync: !cfg.logFreelistSync, FreelistType: bolt.FreelistMapType}}, s.rebuildAdvice())
	if err != nil {
		return err
	}
	s.logs = logs
	stores := watchedStore{BoltStore: logs, path: filepath.Join(raftDir, "raft.db"), alarm: s.alarm}
	// This process holds the data directory now (raft.db's lock): what a
	// save or restore that died midway left there is nobody's.
	removeLeftovers(cfg.DataDir, s.log)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, snapshotsRetained, hclogFor(s.log, "snapshots"))
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	if err := s.checkLog(snaps); err != nil {
		return err
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hclogFor(s.log, "raft")
	// The FSM persists its own state with the applied index; replaying a
	// snapshot over it at every start would only waste time. Unless the
	// state is behind the newest snapshot: raft stored a snapshot the FSM
	// had not taken yet when the process died (an InstallSnapshot or a
	// restore), or a restore installed a state that has applied nothing
	// since. Raft starts after the snapshot, so the state must be it.
	rc.NoSnapshotRestoreOnStart = true
	if list, err := snaps.List(); err == nil && len(list) > 0 && list[0].Index > s.fsm.AppliedIndex() {
		rc.NoSnapshotRestoreOnStart = false
		s.log.Info("the state is behind the newest raft snapshot; restoring it", "state_index", s.fsm.AppliedIndex(), "snapshot_index", list[0].Index)
	}
	rc.SnapshotThreshold = snapshotThreshold
	rc.SnapshotInterval = snapshotInterval
	rc.TrailingLogs = trailingLogs
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 512
	// Followers learn that an entry committed from the leader's next
	// AppendEntries, which after the last write of a burst comes only
	// when CommitTimeout passes (raft's default: 50 ms, drawn up to
	// 100): agents watching followers heard of changes 60-100 ms after
	// those watching the leader (the scale suite). An idle AppendEntries
	// every 5-10 ms per follower costs next to nothing.
	rc.CommitTimeout = 5 * time.Millisecond
	if cfg.Tune != nil {
		cfg.Tune(rc)
	}
	s.heartbeatTimeout = rc.HeartbeatTimeout
	existing, err := raft.HasExistingState(stores, stores, snaps)
	if err != nil {
		return fmt.Errorf("inspect raft state: %w", err)
	}
	r, err := raft.NewRaft(rc, raftFSM{f: s.fsm, format2: &s.format2}, checksummedLogs{stores}, stores, snaps, withoutPipeline(s.trans))
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	s.raft = r
	switch {
	case existing:
	case cfg.Bootstrap:
		if err := s.Bootstrap([]Peer{{ID: cfg.ID, Address: string(s.trans.LocalAddr())}}); err != nil {
			return err
		}
	case len(cfg.Peers) > 0:
		if err := s.Bootstrap(cfg.Peers); err != nil {
			return err
		}
	}
	return nil
}

// checkPeers checks a static peer list: unique ids and addresses, and this
// server in it at its own address.
func checkPeers(self, addr string, peers []Peer) error {
	if len(peers) == 0 {
		return nil
	}
	ids, addrs := map[string]bool{}, map[string]string{}
	found := false
	for _, p := range peers {
		if p.ID == "" || p.Address == "" {
			return fmt.Errorf("peer %q at %q: want id=host:port", p.ID, p.Address)
		}
		if ids[p.ID] {
			return fmt.Errorf("peer id %s is listed twice; every server needs its own id", p.ID)
		}
		if other, dup := addrs[p.Address]; dup {
			return fmt.Errorf("peers %s and %s share the address %s; every server needs its own", other, p.ID, p.Address)
		}
		ids[p.ID], addrs[p.Address] = true, p.ID
		if p.ID == self {
			found = true
			if p.Address != addr {
				return fmt.Errorf("the peer list gives this server (%s) the address %s, but it listens for raft at %s; make them agree (--raft-advertise)", self, p.Address, addr)
			}
		}
	}
	if !found {
		return fmt.Errorf("this server's id %s is not in the peer list; every server gets the same list, itself included", self)
	}
	return nil
}

// Bootstrap starts a new cluster with exactly these voters, if this server
// has no raft state. It is safe to call on every one of them with the same
// list (they form one cluster); calling it on a server with state does
// nothing.
func (s *Server) Bootstrap(peers []Peer) error {
	var conf raft.Configuration
	for _, p := range peers {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address)})
	}
	err := s.raft.BootstrapCluster(conf).Error()
	if errors.Is(err, raft.ErrCantBootstrap) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bootstrap raft: %w", err)
	}
	if len(peers) == 1 && peers[0].ID == s.cfg.ID {
		s.format2.Store(true) // no other server to wait for (integrity.go)
	}
	ids := make([]string, len(peers))
	for i, p := range peers {
		ids[i] = p.ID + "=" + p.Address
	}
	s.log.Info("bootstrapped a new cluster", "id", s.cfg.ID, "voters", ids)
	return nil
}

// StateDamaged receives (once) the damage a read found in the state file
// while the server runs: the server serves nothing from the file from then
// on, and its process should stop (sdnd does); started again, the server
// rebuilds the file from raft (cluster/recover.go).
func (s *Server) StateDamaged() <-chan error { return s.damaged }

// ID is this server's raft id.
func (s *Server) ID() string { return s.cfg.ID }

// Addr is the address other servers reach this one at (raft's; with sdnd's
// mux also its API's).
func (s *Server) Addr() string { return string(s.trans.LocalAddr()) }

// HasState reports whether this server holds any raft log: it was
// bootstrapped or has joined a cluster.
func (s *Server) HasState() bool { return s.raft.LastIndex() > 0 }

// Removed reports whether this server looks removed from its cluster: raft
// stopped (a leader that removed itself does that), or it holds raft state
// but the latest configuration it knows does not list it. A server still
// catching up on its log may briefly look so; callers wait before they
// conclude.
func (s *Server) Removed() bool {
	if s.raft.State() == raft.Shutdown {
		return true
	}
	if !s.HasState() {
		return false
	}
	ms, err := s.Members()
	if err != nil {
		return false
	}
	for _, m := range ms {
		if m.ID == s.cfg.ID {
			return false
		}
	}
	return true
}

// FSM is the server's state machine (for reads).
func (s *Server) FSM() *fsm.FSM { return s.fsm }

// Hub is where watchers wait for the state's new revisions.
func (s *Server) Hub() *Hub { return s.hub }

// Term is the raft term this server is in.
func (s *Server) Term() uint64 { return s.raft.CurrentTerm() }

// IsLeader reports whether this server leads.
func (s *Server) IsLeader() bool { return s.raft.State() == raft.Leader }

// Leader returns the leader's id and address, empty when none is known.
func (s *Server) Leader() (id, addr string) {
	a, i := s.raft.LeaderWithID()
	return string(i), string(a)
}

// WaitLeader blocks until some server leads or ctx ends.
func (s *Server) WaitLeader(ctx context.Context) error {
	for {
		if _, addr := s.Leader(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no raft leader elected: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// LastContact is when this server last heard from a leader (a follower's
// view; zero if never).
func (s *Server) LastContact() time.Time { return s.raft.LastContact() }

// HeartbeatTimeout is how long followers wait for a silent leader before
// they elect another.
func (s *Server) HeartbeatTimeout() time.Duration { return s.heartbeatTimeout }

// Stats returns raft's counters (for status output).
func (s *Server) Stats() map[string]string { return s.raft.Stats() }

// Shutdown stops raft and closes the stores. An FSM retrying a batch the
// state file cannot take gives up (the restart applies it).
func (s *Server) Shutdown() error {
	s.haltOnce.Do(func() { close(s.halt) })
	var errs []error
	if s.raft != nil {
		errs = append(errs, s.raft.Shutdown().Error())
	}
	errs = append(errs, s.closeStores())
	return errors.Join(errs...)
}

func (s *Server) closeStores() error {
	var errs []error
	if s.trans != nil {
		errs = append(errs, closeTransport(s.trans))
	}
	if s.logs != nil {
		errs = append(errs, s.logs.Close())
	}
	errs = append(errs, closeState(s.fsm, s.cfg.DataDir, s.stateNoSync))
	return errors.Join(errs...)
}

func closeTransport(t raft.Transport) error {
	if c, ok := t.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
