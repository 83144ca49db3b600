package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	"google.golang.org/protobuf/proto"
)

// Config configures a raft server.
type Config struct {
	// DataDir holds raft/ (log, stable store, snapshots) and state.db.
	DataDir string
	// ID is this server's raft id (stable across restarts).
	ID string
	// RaftAddr is the TCP address raft listens on; Advertise, when set, is
	// what peers dial.
	RaftAddr  string
	Advertise string
	// Bootstrap makes a server with no raft state start a new cluster with
	// itself as the only voter (what `sdnd --dev` does).
	Bootstrap bool
	Logger    *slog.Logger
	// ApplyTimeout bounds how long a write waits to be committed.
	ApplyTimeout time.Duration
}

// ErrNotLeader is returned for writes sent to a server that is not the
// leader. Leader is empty when no leader is known.
type ErrNotLeader struct{ Leader string }

func (e *ErrNotLeader) Error() string {
	if e.Leader == "" {
		return "no raft leader is known (election in progress or quorum lost)"
	}
	return "this server is not the raft leader; the leader is " + e.Leader
}

// Server is one raft voter with its FSM.
type Server struct {
	cfg   Config
	raft  *raft.Raft
	fsm   *FSM
	logs  *raftboltdb.BoltStore
	trans *raft.NetworkTransport
	log   *slog.Logger
}

// NewServer opens (or creates) the server's data and starts raft.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ApplyTimeout == 0 {
		cfg.ApplyTimeout = 10 * time.Second
	}
	raftDir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	fsm, err := OpenFSM(filepath.Join(cfg.DataDir, "state.db"), state.Options{}, cfg.Logger)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, fsm: fsm, log: cfg.Logger}
	if err := s.start(raftDir); err != nil {
		s.closeStores()
		return nil, err
	}
	return s, nil
}

func (s *Server) start(raftDir string) error {
	cfg := s.cfg
	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(raftDir, "raft.db")})
	if err != nil {
		return fmt.Errorf("open raft log %s: %w", filepath.Join(raftDir, "raft.db"), err)
	}
	s.logs = logs
	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, 2, hclogFor(s.log, "snapshots"))
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
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
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hclogFor(s.log, "raft")
	// The FSM persists its own state with the applied index; replaying a
	// snapshot over it at every start would only waste time.
	rc.NoSnapshotRestoreOnStart = true
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 512
	existing, err := raft.HasExistingState(logs, logs, snaps)
	if err != nil {
		return fmt.Errorf("inspect raft state: %w", err)
	}
	r, err := raft.NewRaft(rc, s.fsm, logs, logs, snaps, trans)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	s.raft = r
	if cfg.Bootstrap && !existing {
		f := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: trans.LocalAddr()}}})
		if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("bootstrap raft: %w", err)
		}
		s.log.Info("bootstrapped a new cluster", "id", cfg.ID, "raft", trans.LocalAddr())
	}
	return nil
}

// FSM is the server's state machine (for reads).
func (s *Server) FSM() *FSM { return s.fsm }

// IsLeader reports whether this server leads.
func (s *Server) IsLeader() bool { return s.raft.State() == raft.Leader }

// Leader returns the leader's raft address, or "".
func (s *Server) Leader() string {
	addr, _ := s.raft.LeaderWithID()
	return string(addr)
}

// WaitLeader blocks until some server leads or ctx ends.
func (s *Server) WaitLeader(ctx context.Context) error {
	for {
		if s.Leader() != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no raft leader elected: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Propose commits a command through raft and returns what applying it did.
// A refused command comes back as *Error with nothing changed.
func (s *Server) Propose(ctx context.Context, typ command.Type, msg proto.Message) (*Result, error) {
	if s.raft.State() != raft.Leader {
		return nil, &ErrNotLeader{Leader: s.Leader()}
	}
	data, err := command.Encode(typ, msg)
	if err != nil {
		return nil, err
	}
	timeout := s.cfg.ApplyTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = time.Until(d)
	}
	f := s.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return nil, &ErrNotLeader{Leader: s.Leader()}
		}
		return nil, fmt.Errorf("commit %s: %w", typ, err)
	}
	res, _ := f.Response().(*Result)
	if res == nil {
		return nil, fmt.Errorf("commit %s: no result (entry index %d was already applied)", typ, f.Index())
	}
	if res.Err != nil {
		return res, res.Err
	}
	return res, nil
}

// ReadBarrier makes a following read linearizable: it notes the commit
// index, confirms leadership with a quorum, and waits until the state has
// applied up to the noted index (raft's ReadIndex).
func (s *Server) ReadBarrier(ctx context.Context) error {
	if s.raft.State() != raft.Leader {
		return &ErrNotLeader{Leader: s.Leader()}
	}
	commit := s.raft.CommitIndex()
	if err := s.raft.VerifyLeader().Error(); err != nil {
		return &ErrNotLeader{Leader: s.Leader()}
	}
	for s.raft.AppliedIndex() < commit {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// Stats returns raft's counters (for status output).
func (s *Server) Stats() map[string]string { return s.raft.Stats() }

// Shutdown stops raft and closes the stores.
func (s *Server) Shutdown() error {
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
		errs = append(errs, s.trans.Close())
	}
	if s.logs != nil {
		errs = append(errs, s.logs.Close())
	}
	errs = append(errs, s.fsm.Close())
	return errors.Join(errs...)
}

// hclogFor routes a library's hclog output into our slog logger: hclog
// writes JSON lines, which are turned back into structured slog records.
func hclogFor(l *slog.Logger, name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      hclog.Info,
		Output:     slogWriter{l: l.With("component", name)},
		JSONFormat: true,
	})
}

// slogWriter turns hclog's JSON lines into slog records.
type slogWriter struct{ l *slog.Logger }

var _ io.Writer = slogWriter{}

func (w slogWriter) Write(p []byte) (int, error) {
	var rec map[string]any
	if err := json.Unmarshal(p, &rec); err != nil {
		w.l.Info(strings.TrimSpace(string(p)))
		return len(p), nil
	}
	level := slog.LevelInfo
	switch rec["@level"] {
	case "trace", "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	msg, _ := rec["@message"].(string)
	keys := make([]string, 0, len(rec))
	for k := range rec {
		if !strings.HasPrefix(k, "@") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	attrs := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		attrs = append(attrs, k, rec[k])
	}
	w.l.Log(context.Background(), level, msg, attrs...)
	return len(p), nil
}
