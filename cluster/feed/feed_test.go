package feed

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/cluster"
	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// store is a real state file the test writes revisions to, announcing each.
type store struct {
	*state.DB
	hub *cluster.Hub
}

func newStore(t *testing.T) *store {
	t.Helper()
	db, err := state.Open(filepath.Join(t.TempDir(), "state.db"), state.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s := &store{DB: db, hub: cluster.NewHub()}
	t.Cleanup(func() { s.hub.Close(); db.Close() })
	return s
}

// commit writes one revision with a network of each name, and announces it.
func (s *store) commit(t *testing.T, names ...string) uint64 {
	t.Helper()
	var rev uint64
	err := s.Update(func(tx *state.Tx) error {
		var cs []*sdnv1.ObjectChange
		for _, n := range names {
			nw := &sdnv1.Network{Name: n, ModRevision: tx.NextRevision()}
			if err := tx.PutNetwork(nw); err != nil {
				return err
			}
			cs = append(cs, model.Put(model.KindNetwork, n, &sdnv1.ObjectChange{Network: nw}))
		}
		var err error
		rev, err = tx.Commit(cs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s.hub.Publish(rev)
	return rev
}

// waitFeed waits until the feed has taken rev.
func waitFeed(t *testing.T, f *Feed, rev uint64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		f.mu.Lock()
		have := f.rev
		f.mu.Unlock()
		if have >= rev {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the feed is at %d, not %d", have, rev)
		}
	}
}

func newFeed(t *testing.T, s *store) *Feed {
	t.Helper()
	f, err := New(s, s.hub, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// TestFeedReadsMergeAndTrim: a watcher behind gets the revisions that
// concern it in one message at the last revision; one behind what the
// feed keeps is told to resync, with the reason.
func TestFeedReadsMergeAndTrim(t *testing.T) {
	old := minHistory
	minHistory = 16
	t.Cleanup(func() { minHistory = old })
	s := newStore(t)
	f := newFeed(t, s)
	w := f.Subscribe("h1")
	defer w.Close()
	first := s.commit(t, "n1")
	var rev uint64
	for i := 0; i < 9; i++ {
		rev = s.commit(t, fmt.Sprintf("m%d", i))
	}
	waitFeed(t, f, rev)
	rd := w.Read(first, 1<<20)
	if rd.Outcome != Events || len(rd.Messages) != 1 || rd.Messages[0].Changes != 9 || rd.Messages[0].Revision != rev || rd.Position != rev {
		t.Fatalf("read after %d: %+v", first, rd)
	}
	// Two messages when they do not fit one; a revision is never split.
	rd = w.Read(first, 2*rd.Messages[0].size/3)
	if len(rd.Messages) != 2 || rd.Messages[0].Changes+rd.Messages[1].Changes != 9 {
		t.Fatalf("read in small messages: %d messages", len(rd.Messages))
	}
	for i := 0; i < 20; i++ {
		rev = s.commit(t, fmt.Sprintf("k%d", i))
	}
	waitFeed(t, f, rev)
	if rd := w.Read(first, 1<<20); rd.Outcome != Resync || !strings.Contains(rd.Reason, "older than this server's history") {
		t.Fatalf("read from before the kept history: %+v", rd)
	}
	msgs, at := w.Snapshot("test", 500, 1<<20)
	if at != rev || len(msgs) != 1 || msgs[0].Changes != 30 {
		t.Fatalf("snapshot: %d messages at %d, first with %d changes", len(msgs), at, msgs[0].Changes)
	}
}

// TestFeedStartsOverWhenTheStoreMovesUnderIt: history compacted past the
// feed (a restore) makes it reload, and a watcher from before is told to
// resync once.
func TestFeedStartsOverWhenTheStoreMovesUnderIt(t *testing.T) {
	s := newStore(t)
	rev := s.commit(t, "n1")
	f := newFeed(t, s)
	w := f.Subscribe("h1")
	defer w.Close()
	waitFeed(t, f, rev)
	err := s.Update(func(tx *state.Tx) error {
		for i := 0; i < 3; i++ {
			if _, err := tx.Commit(nil); err != nil {
				return err
			}
		}
		_, err := tx.Compact(tx.Meta().Revision)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s.hub.Publish(rev + 3)
	waitFeed(t, f, rev+3)
	select {
	case <-w.Wake():
	case <-time.After(5 * time.Second):
		t.Fatal("the watcher was not woken when the feed started over")
	}
	if rd := w.Read(rev, 1<<20); rd.Outcome != Resync || !strings.Contains(rd.Reason, "started over") {
		t.Fatalf("read after the feed started over: %+v", rd)
	}
	if rd := w.Read(rev+3, 1<<20); rd.Outcome != Events || len(rd.Messages) != 0 {
		t.Fatalf("read at the head after the resync: %+v", rd)
	}
}

// TestFeedLoadsServices: a feed started on a store that already holds
// services and endpoints (a server restarted) sends them in a host's
// snapshot. It did not: the index was loaded without them, so an agent
// whose snapshot came from a restarted server had no services until a
// change touched one.
func TestFeedLoadsServices(t *testing.T) {
	s := newStore(t)
	err := s.Update(func(tx *state.Tx) error {
		v := &sdnv1.Service{Name: "web", Network: "p", Vip: "172.30.0.1", Ports: []*sdnv1.ServicePort{{Protocol: "tcp", Port: 80}}, ModRevision: tx.NextRevision()}
		ep := &sdnv1.ServiceEndpoints{Service: "p/web", Endpoints: []*sdnv1.ServiceEndpoint{{Workload: "p/a", Ip: "10.128.0.2", Node: "h2", Ports: []uint32{80}}}}
		if err := tx.PutService(v); err != nil {
			return err
		}
		if err := tx.PutServiceEndpoints(ep); err != nil {
			return err
		}
		_, err := tx.Commit([]*sdnv1.ObjectChange{
			model.Put(model.KindService, "p/web", &sdnv1.ObjectChange{Service: v}),
			model.Put(model.KindServiceEndpoints, "p/web", &sdnv1.ObjectChange{ServiceEndpoints: ep}),
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	f := newFeed(t, s) // started after the services were stored
	w := f.Subscribe("h1")
	defer w.Close()
	msgs, _ := w.Snapshot("test", 500, 1<<20)
	kinds := map[string]bool{}
	for _, m := range msgs {
		var ev sdnv1.WatchEvent
		if err := proto.Unmarshal(bytes.Join(m.parts, nil), &ev); err != nil {
			t.Fatal(err)
		}
		for _, c := range ev.Changes {
			kinds[c.Kind] = true
		}
	}
	if !kinds[string(model.KindService)] || !kinds[string(model.KindServiceEndpoints)] {
		t.Fatalf("a host's snapshot from a feed loaded from the store lacks services: kinds %v", kinds)
	}
}
