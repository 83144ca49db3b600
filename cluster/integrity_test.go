package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// startSingle starts a single-voter server (what `sdnd --dev` runs) on
// dir, bootstrapping it when dir is new.
func startSingle(t *testing.T, dir string) (*Server, error) {
	t.Helper()
	_, tr := raft.NewInmemTransport("s1")
	s, err := NewServer(Config{DataDir: dir, ID: "s1", Transport: tr, Bootstrap: true, Tune: fast,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { s.Shutdown() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !s.IsLeader() {
		if ctx.Err() != nil {
			t.Fatal("the single server did not lead")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s, nil
}

// netsReq declares networks m0..m(n-1).
func netsReq(n int) *sdnv1.ApplyRequest {
	req := &sdnv1.ApplyRequest{}
	for i := range n {
		req.Networks = append(req.Networks, &sdnv1.Network{Name: fmt.Sprintf("m%d", i)})
	}
	return req
}

// logIndexOf is the index of the last command entry of s's log whose data
// contains b.
func logIndexOf(t *testing.T, s *Server, b []byte) uint64 {
	t.Helper()
	for i := s.raft.LastIndex(); i > 0; i-- {
		var l raft.Log
		if s.logs.GetLog(i, &l) == nil && l.Type == raft.LogCommand && bytes.Contains(l.Data, b) {
			return i
		}
	}
	t.Fatalf("no entry holds %q", b)
	return 0
}

// editFile applies edit to every place of the file where find occurs
// (stale copies in bbolt's free pages included), at that offset.
func editFile(t *testing.T, path string, find []byte, edit func(b []byte, at int)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for at := bytes.Index(b, find); at >= 0; {
		edit(b, at)
		n++
		next := bytes.Index(b[at+1:], find)
		if next < 0 {
			break
		}
		at += 1 + next
	}
	if n == 0 {
		t.Fatalf("%q not in %s", find, path)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
	return to
}

// TestDamagedLogStopsTheServerAtStart damages a stopped server's raft.db
// in the ways a changed byte can, with its state.db kept or deleted (then
// the log is replayed): each start fails with a message naming the file,
// the entry when there is one, and what to do; none panics, none serves.
// Before the log was checked, the first two cases started with the
// networks' command refused whole on replay (no network of 100), the
// truncated file panicked inside bbolt and the type changed to a
// no-op was skipped by raft without a word.
func TestDamagedLogStopsTheServerAtStart(t *testing.T) {
	base := t.TempDir()
	s, err := startSingle(t, base)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if _, err := s.Propose(ctx, command.ApplyConfig, netsReq(100)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Propose(ctx, command.RegisterNode, register("h1", "198.18.0.1", 1500)); err != nil {
		t.Fatal(err)
	}
	name := []byte("\x0a\x03m42") // Network{Name: "m42"} in the payload
	idx := logIndexOf(t, s, name)
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	raftDB := func(dir string) string { return filepath.Join(dir, "raft", "raft.db") }
	for _, c := range []struct {
		name      string
		dropState bool
		damage    func(t *testing.T, dir string)
		want      string
	}{
		{"name in a payload", false, func(t *testing.T, dir string) {
			editFile(t, raftDB(dir), name, func(b []byte, at int) { b[at+2] = 'M' })
		}, fmt.Sprintf("entry %d is damaged: command envelope", idx)},
		{"name in a payload, state.db deleted", true, func(t *testing.T, dir string) {
			editFile(t, raftDB(dir), name, func(b []byte, at int) { b[at+2] = 'M' })
		}, fmt.Sprintf("entry %d is damaged: command envelope", idx)},
		{"truncated before an entry's page", true, func(t *testing.T, dir string) {
			b, err := os.ReadFile(raftDB(dir))
			if err != nil {
				t.Fatal(err)
			}
			page := os.Getpagesize()
			if err := os.Truncate(raftDB(dir), int64(bytes.Index(b, name)/page*page)); err != nil {
				t.Fatal(err)
			}
		}, " is damaged: the file is cut short: it is "},
		{"a page overwritten", true, func(t *testing.T, dir string) {
			page := os.Getpagesize()
			editFile(t, raftDB(dir), name, func(b []byte, at int) { clear(b[at/page*page : at/page*page+page]) })
		}, " is damaged: bbolt failed reading it: "},
		{"command type turned into a no-op", true, func(t *testing.T, dir string) {
			// raft-boltdb stores a raft.Log as a msgpack map, keys in
			// order: after "Data" comes "Type" (fixstr a4), then the
			// type, 0 for a command.
			editFile(t, raftDB(dir), name, func(b []byte, at int) {
				if ty := bytes.Index(b[at:], []byte("\xa4Type\x00")); ty >= 0 && ty < 1000 {
					b[at+ty+5] = byte(raft.LogNoop)
				}
			})
		}, fmt.Sprintf("entry %d is damaged: a raft LogNoop entry carries", idx)},
		{"term after the current term", true, func(t *testing.T, dir string) {
			editFile(t, raftDB(dir), name, func(b []byte, at int) {
				if tm := bytes.Index(b[at:], []byte("\xa4Term")); tm >= 0 && tm < 1000 {
					b[at+tm+5] = 0x7f
				}
			})
		}, fmt.Sprintf("entry %d is damaged: its term 127 is after raft's current term", idx)},
		{"a server's id in the configuration", true, func(t *testing.T, dir string) {
			editFile(t, raftDB(dir), []byte("\xa2ID\xa2s1"), func(b []byte, at int) { b[at+5] = '9' })
		}, "entry 1 is damaged: its checksum does not match"},
		{"entry stored at another index", true, func(t *testing.T, dir string) {
			db, err := bolt.Open(raftDB(dir), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			key := func(i uint64) []byte { return binary.BigEndian.AppendUint64(nil, i) }
			if err := db.Update(func(tx *bolt.Tx) error {
				logs := tx.Bucket([]byte("logs"))
				return logs.Put(key(idx+1), append([]byte(nil), logs.Get(key(idx))...))
			}); err != nil {
				t.Fatal(err)
			}
		}, fmt.Sprintf("entry %d is damaged: the entry stored at index %d says it is entry %d", idx+1, idx+1, idx)},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, base)
			c.damage(t, dir)
			if c.dropState {
				if err := os.Remove(filepath.Join(dir, "state.db")); err != nil {
					t.Fatal(err)
				}
			}
			s, err := startSingle(t, dir)
			if err == nil {
				if err := s.ReadBarrier(ctx); err != nil {
					t.Fatal(err)
				}
				var n int
				s.FSM().View(func(tx *state.Tx) error { n = len(tx.Networks()); return nil })
				t.Fatalf("started on a damaged raft log, serving %d networks of 100", n)
			}
			var de *damagedLogError
			msg := err.Error()
			if !errors.As(err, &de) || !strings.HasPrefix(msg, "raft log "+raftDB(dir)) || !strings.Contains(msg, c.want) ||
				!strings.Contains(msg, "this server stopped rather than serve a state that may be wrong") ||
				!strings.Contains(msg, "run `sdnctl cluster remove s1` against a healthy server") {
				t.Fatalf("error:\n%v\nwant it to name %s and contain %q and what to do", err, raftDB(dir), c.want)
			}
			t.Logf("%s", msg)
		})
	}
}

// TestDamagedEntryStopsTheRunningServer commits an entry whose payload
// was damaged after its checksum was computed: the server stops applying
// (Failed) with the message naming raft.db and the entry, the command's
// proposer hears its outcome is unknown, nothing after it is applied, and
// the next start refuses the log at the same entry.
func TestDamagedEntryStopsTheRunningServer(t *testing.T) {
	dir := t.TempDir()
	s, err := startSingle(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if _, err := s.Propose(ctx, command.RegisterNode, register("h1", "198.18.0.1", 1500)); err != nil {
		t.Fatal(err)
	}
	data, _ := command.Encode(command.ApplyConfig, netsReq(10))
	data[bytes.Index(data, []byte("m7"))] = 'M'
	f := s.raft.Apply(data, 5*time.Second)
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Response().(error); !ok {
		t.Fatalf("the damaged entry's response: %v, want the error the FSM stopped with", f.Response())
	}
	select {
	case <-s.Failed():
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not stop applying")
	}
	msg := s.Failure().Error()
	for _, want := range []string{fmt.Sprintf("raft log %s: entry %d is damaged: command envelope", raftLogFile(dir), f.Index()),
		"checksum mismatch", "`sdnctl cluster remove s1`"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure %q lacks %q", msg, want)
		}
	}
	_, err = s.Propose(ctx, command.RegisterNode, register("h2", "198.18.0.2", 1500))
	if err == nil || !strings.Contains(err.Error(), "whether it took effect is unknown") {
		t.Fatalf("a proposal after the stop: %v", err)
	}
	s.FSM().View(func(tx *state.Tx) error {
		if n := len(tx.Nodes()); n != 1 || len(tx.Networks()) != 0 {
			t.Errorf("applied after the damaged entry: %d nodes, %d networks", n, len(tx.Networks()))
		}
		return nil
	})
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, err := startSingle(t, dir); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("entry %d is damaged", f.Index())) {
		t.Fatalf("restart: %v", err)
	}
}

// lastCommandFormat is the envelope format of the newest command entry in
// s's log.
func lastCommandFormat(t *testing.T, s *Server) command.Format {
	t.Helper()
	for i := s.raft.LastIndex(); i > 0; i-- {
		var l raft.Log
		if s.logs.GetLog(i, &l) == nil && l.Type == raft.LogCommand {
			return command.FormatOf(l.Data)
		}
	}
	t.Fatal("no command entry")
	return 0
}

// TestCommandFormatGate: a leader of several servers writes format 1
// (which every release reads) until it is told every server reads format
// 2; then it writes format 2, and so does the next leader, which learned
// it from the log.
func TestCommandFormatGate(t *testing.T) {
	mc := newMemCluster(t, 3)
	l := mc.leader()
	ctx := ctxT(t)
	if _, err := l.Propose(ctx, command.RegisterNode, register("h1", "198.18.0.1", 1500)); err != nil {
		t.Fatal(err)
	}
	if f := lastCommandFormat(t, l); f != command.Format1 {
		t.Fatalf("before every server is known to read format 2: format %d", f)
	}
	l.UseCommandFormat2()
	if _, err := l.Propose(ctx, command.RegisterNode, register("h2", "198.18.0.2", 1500)); err != nil {
		t.Fatal(err)
	}
	if f := lastCommandFormat(t, l); f != command.Format2 {
		t.Fatalf("after: format %d", f)
	}
	mc.waitApplied(l.FSM().AppliedIndex())
	next := mc.followers()[0]
	if _, err := l.TransferLeadership(ctx, next.ID()); err != nil {
		t.Fatal(err)
	}
	if next.CommandFormat() != command.Format2 {
		t.Fatal("the next leader writes format 1 after the log held format 2")
	}
}

// TestCheckEntryWithoutChecksum checks the shape of entries stored before
// entries had checksums (no Extensions): what raft's fields and the data
// must agree on.
func TestCheckEntryWithoutChecksum(t *testing.T) {
	cmd, _ := command.Encode(command.RegisterNode, register("h1", "198.18.0.1", 1500))
	conf := raft.EncodeConfiguration(raft.Configuration{Servers: []raft.Server{{ID: "s1", Address: "a:1", Suffrage: raft.Voter}}})
	for _, c := range []struct {
		name string
		l    raft.Log
		want string // "" when whole
	}{
		{"command", raft.Log{Index: 5, Term: 2, Type: raft.LogCommand, Data: cmd}, ""},
		{"no-op", raft.Log{Index: 5, Term: 2, Type: raft.LogNoop}, ""},
		{"configuration", raft.Log{Index: 5, Term: 2, Type: raft.LogConfiguration, Data: conf}, ""},
		{"another index", raft.Log{Index: 6, Term: 2, Type: raft.LogNoop}, "the entry stored at index 5 says it is entry 6"},
		{"term zero", raft.Log{Index: 5, Type: raft.LogNoop}, "its term is 0 (raft's terms start at 1)"},
		{"term back", raft.Log{Index: 5, Term: 1, Type: raft.LogNoop}, "its term 1 is before the previous entry's (2)"},
		{"term ahead", raft.Log{Index: 5, Term: 4, Type: raft.LogNoop}, "its term 4 is after raft's current term 3"},
		{"command as a no-op", raft.Log{Index: 5, Term: 2, Type: raft.LogNoop, Data: cmd}, "a raft LogNoop entry carries"},
		{"command as a barrier", raft.Log{Index: 5, Term: 2, Type: raft.LogBarrier, Data: cmd}, "a raft LogBarrier entry carries"},
		{"command as a configuration", raft.Log{Index: 5, Term: 2, Type: raft.LogConfiguration, Data: cmd}, "its raft configuration does not decode"},
		{"configuration as a command", raft.Log{Index: 5, Term: 2, Type: raft.LogCommand, Data: conf}, "command envelope format"},
		{"no-op as a command", raft.Log{Index: 5, Term: 2, Type: raft.LogCommand}, "command of 0 bytes"},
		{"unknown type", raft.Log{Index: 5, Term: 2, Type: 9}, "its type 9 is not one raft writes"},
		{"deprecated type", raft.Log{Index: 5, Term: 2, Type: raft.LogAddPeerDeprecated}, "is not one raft writes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkEntry(&c.l, 5, 2, 3)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if c.want == "" {
				c.l.Extensions = entryChecksum(&c.l)
				c.l.Term++
				if err := checkEntry(&c.l, 5, 2, 3); err == nil || !strings.Contains(err.Error(), "its checksum does not match") {
					t.Fatalf("with a checksum, the term changed: %v", err)
				}
			}
		})
	}
}
