package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/cluster"
	"github.com/sdn-dev/sdn/cluster/transport"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// member is one in-process server as sdnd assembles it: raft and the API
// on one loopback address (transport.Mux).
type member struct {
	id   string
	mux  *transport.Mux
	raft *cluster.Server
	api  *Server
	g    *grpc.Server
	conn *grpc.ClientConn
	down bool
}

func (m *member) addr() string { return m.mux.Addr().String() }

func (m *member) stop() {
	if m.down {
		return
	}
	m.down = true
	m.g.Stop()
	m.raft.Shutdown()
	m.mux.Close()
	m.conn.Close()
}

func quick(c *raft.Config) {
	c.HeartbeatTimeout = 500 * time.Millisecond
	c.ElectionTimeout = 500 * time.Millisecond
	c.LeaderLeaseTimeout = 250 * time.Millisecond
}

// listenMember opens a member's address (so peer lists can name it before
// it starts).
func listenMember(t *testing.T, id string) *member {
	t.Helper()
	mux, err := transport.Listen(transport.Config{Addr: "127.0.0.1:0", Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	return &member{id: id, mux: mux}
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// start starts raft and the API on a listened member.
func (m *member) start(t *testing.T, cfg cluster.Config, opts Options) {
	t.Helper()
	cfg.DataDir, cfg.ID, cfg.Logger, cfg.Tune = t.TempDir(), m.id, discard, quick
	cfg.Transport = cluster.NewNetworkTransport(m.mux.Raft(), discard)
	rs, err := cluster.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.raft = rs
	m.api = New(rs, discard, opts)
	m.g = grpc.NewServer(m.api.ServerOptions()...)
	m.api.Install(m.g)
	go m.g.Serve(m.mux.API())
	m.conn, err = grpc.NewClient(m.addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.stop)
}

// startCluster starts n servers bootstrapped from one peer list and waits
// for a leader.
func startCluster(t *testing.T, n int) []*member {
	t.Helper()
	var ms []*member
	var peers []cluster.Peer
	for i := 1; i <= n; i++ {
		m := listenMember(t, fmt.Sprintf("s%d", i))
		ms = append(ms, m)
		peers = append(peers, cluster.Peer{ID: m.id, Address: m.addr()})
	}
	for _, m := range ms {
		m.start(t, cluster.Config{Peers: peers}, Options{})
	}
	leaderOf(t, ms)
	return ms
}

// leaderOf waits until a live member leads and returns it.
func leaderOf(t *testing.T, ms []*member) *member {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range ms {
			if !m.down && m.raft.IsLeader() {
				return m
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no leader")
	return nil
}

func followersOf(t *testing.T, ms []*member) []*member {
	l := leaderOf(t, ms)
	var out []*member
	for _, m := range ms {
		if m != l && !m.down {
			out = append(out, m)
		}
	}
	return out
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestEveryMethodHasARoute: a method added to the API must say which
// server answers it.
func TestEveryMethodHasARoute(t *testing.T) {
	g := grpc.NewServer()
	New(nil, discard, Options{}).Install(g)
	n := 0
	for svc, info := range g.GetServiceInfo() {
		if !strings.HasPrefix(svc, "sdn.v1.") {
			continue
		}
		for _, m := range info.Methods {
			n++
			full := "/" + svc + "/" + m.Name
			if _, ok := routes[full]; !ok {
				t.Errorf("%s has no entry in routes (routes.go): say whether the leader or any server answers it", full)
			}
		}
	}
	if n < 15 {
		t.Fatalf("only %d methods served", n)
	}
}

// TestFollowersForward: writes, linearizable reads, realization reports
// and WaitRealized sent to followers reach the leader; stale reads and
// watches are served locally; refusals keep their details.
func TestFollowersForward(t *testing.T) {
	ms := startCluster(t, 3)
	ctx := tctx(t)
	fs := followersOf(t, ms)
	f1, f2 := fs[0], fs[1]

	cfg1 := sdnv1.NewConfigServiceClient(f1.conn)
	res, err := cfg1.Apply(ctx, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}}})
	if err != nil {
		t.Fatalf("apply through a follower: %v", err)
	}
	// Linearizable read through the other follower sees the write at once.
	got, err := sdnv1.NewConfigServiceClient(f2.conn).List(ctx, &sdnv1.ListRequest{Kind: "networks"})
	if err != nil || len(got.Networks) != 1 || got.Revision < res.Revision {
		t.Fatalf("linearizable list through a follower: %v %v", got, err)
	}
	// A refusal forwarded keeps its code and violations.
	_, err = cfg1.Apply(ctx, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "Bad_Name"}}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("invalid apply through a follower: %v", err)
	}
	if ae := applyErrorOf(err); ae == nil || len(ae.Violations) == 0 || ae.Violations[0].Name != "Bad_Name" {
		t.Fatalf("violations lost in forwarding: %v", err)
	}

	nodes := sdnv1.NewNodeServiceClient(f1.conn)
	reg, err := nodes.Register(ctx, &sdnv1.RegisterNodeRequest{Name: "h1", UnderlayIp: "198.18.0.1", UnderlayMtu: 1500})
	if err != nil {
		t.Fatal(err)
	}
	// Stale read on a follower: its own state, soon up to date.
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := sdnv1.NewConfigServiceClient(f2.conn).List(ctx, &sdnv1.ListRequest{Kind: "nodes", Stale: true})
		if err == nil && len(l.Nodes) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stale list on %s never showed h1: %v %v", f2.id, l, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A report through one follower is seen in the status through the other.
	if _, err := nodes.ReportRealized(ctx, &sdnv1.ReportRealizedRequest{Node: "h1", Revision: reg.Revision}); err != nil {
		t.Fatal(err)
	}
	// The follower answers at once and relays to the leader right after
	// (docs/design.md, "Host liveness"): the status shows it soon, not
	// necessarily at once.
	deadline = time.Now().Add(5 * time.Second)
	for {
		st, err := sdnv1.NewStatusServiceClient(f2.conn).Status(ctx, &sdnv1.StatusRequest{})
		if err == nil && len(st.Nodes) == 1 && st.Nodes[0].RealizedRevision == reg.Revision {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status through the other follower: %v %v", st, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ws, err := sdnv1.NewStatusServiceClient(f2.conn).WaitRealized(ctx, &sdnv1.WaitRealizedRequest{Revision: reg.Revision, TimeoutMs: 5000})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ws.Recv()
	if err != nil || !p.Done || p.Total != 1 {
		t.Fatalf("WaitRealized through a follower: %v %v", p, err)
	}
	// Watches are served by the follower itself.
	w, err := nodes.Watch(ctx, &sdnv1.WatchRequest{Node: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := w.Recv(); err != nil || ev.Type != sdnv1.WatchEventType_WATCH_EVENT_TYPE_SNAPSHOT {
		t.Fatalf("watch on a follower: %v %v", ev, err)
	}

	// A forwarded call reaching a server that does not lead is not
	// forwarded again.
	md := metadata.Pairs(forwardedHeader, "s9")
	_, err = cfg1.Apply(metadata.NewOutgoingContext(ctx, md), &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj2"}}})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "s9 forwarded this call here") {
		t.Fatalf("double forward: %v", err)
	}
}

func applyErrorOf(err error) *sdnv1.ApplyError {
	for _, d := range status.Convert(err).Details() {
		if ae, ok := d.(*sdnv1.ApplyError); ok {
			return ae
		}
	}
	return nil
}

// TestMembership: members from any server, transfer, join a fourth server
// by address, refusals, remove; and writes after the leader is gone.
func TestMembership(t *testing.T) {
	ms := startCluster(t, 3)
	ctx := tctx(t)
	f := followersOf(t, ms)[0]
	cc := sdnv1.NewClusterServiceClient(f.conn)

	mr, err := cc.Members(ctx, &sdnv1.MembersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	leaders := 0
	for _, s := range mr.Servers {
		if s.Leader {
			leaders++
			if s.State != "leader" || s.Id != mr.LeaderId {
				t.Errorf("leader listed as %+v", s)
			}
		} else if s.State != "follower" {
			t.Errorf("%s: state %q, error %q", s.Id, s.State, s.Error)
		}
		if !s.Voter || s.LastIndex == 0 {
			t.Errorf("%s: %+v", s.Id, s)
		}
	}
	if len(mr.Servers) != 3 || leaders != 1 {
		t.Fatalf("members: %v", mr)
	}

	// Transfer leadership to the follower asked.
	tr, err := cc.TransferLeader(ctx, &sdnv1.TransferLeaderRequest{Id: f.id})
	if err != nil || tr.LeaderId != f.id {
		t.Fatalf("transfer to %s: %v %v", f.id, tr, err)
	}
	if _, err := cc.TransferLeader(ctx, &sdnv1.TransferLeaderRequest{Id: "nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("transfer to an unknown server: %v", err)
	}

	// A fourth server that starts with nothing, joined by address.
	m4 := listenMember(t, "s4")
	m4.start(t, cluster.Config{}, Options{})
	jr, err := cc.Join(ctx, &sdnv1.JoinRequest{Address: m4.addr()})
	if err != nil || jr.Id != "s4" || !jr.Added {
		t.Fatalf("join s4: %v %v", jr, err)
	}
	if jr, err := cc.Join(ctx, &sdnv1.JoinRequest{Address: m4.addr()}); err != nil || jr.Added {
		t.Fatalf("join s4 again: %v %v", jr, err)
	}
	if _, err := cc.Join(ctx, &sdnv1.JoinRequest{Address: "127.0.0.1:1"}); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("join nothing: %v", err)
	}
	// A server of another cluster is refused.
	other := listenMember(t, "x1")
	other.start(t, cluster.Config{Bootstrap: true}, Options{})
	leaderOf(t, []*member{other})
	if _, err := cc.Join(ctx, &sdnv1.JoinRequest{Address: other.addr()}); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "holds raft state") {
		t.Fatalf("join a server with state: %v", err)
	}
	ms = append(ms, m4)
	deadline := time.Now().Add(10 * time.Second)
	for !m4.raft.HasState() {
		if time.Now().After(deadline) {
			t.Fatal("s4 never received the log")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := cc.RemoveServer(ctx, &sdnv1.RemoveServerRequest{Id: "nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("remove unknown: %v", err)
	}
	if _, err := cc.RemoveServer(ctx, &sdnv1.RemoveServerRequest{Id: "s4"}); err != nil {
		t.Fatal(err)
	}
	mr, err = cc.Members(ctx, &sdnv1.MembersRequest{})
	if err != nil || len(mr.Servers) != 3 {
		t.Fatalf("members after removing s4: %v %v", mr, err)
	}
	m4.stop()

	// The leader goes away: a follower's write waits for the election
	// and is forwarded to the new leader.
	l := leaderOf(t, ms)
	l.stop()
	var live *member
	for _, m := range ms {
		if !m.down {
			live = m
			break
		}
	}
	cfg := sdnv1.NewConfigServiceClient(live.conn)
	deadline = time.Now().Add(15 * time.Second)
	for {
		_, err := cfg.Apply(ctx, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "after"}}})
		if err == nil {
			break
		}
		if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			t.Fatalf("write after the leader stopped: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestNoLeader: with no quorum a write waits LeaderWait for an election,
// then fails Unavailable saying so; a stale read still answers.
func TestNoLeader(t *testing.T) {
	a := listenMember(t, "s1")
	b := listenMember(t, "s2")
	peers := []cluster.Peer{{ID: "s1", Address: a.addr()}, {ID: "s2", Address: b.addr()}}
	b.mux.Close() // s2 never comes
	a.start(t, cluster.Config{Peers: peers}, Options{LeaderWait: 300 * time.Millisecond})
	ctx := tctx(t)
	_, err := sdnv1.NewConfigServiceClient(a.conn).Apply(ctx, &sdnv1.ApplyRequest{})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "no raft leader is known after") {
		t.Fatalf("write without quorum: %v", err)
	}
	if _, err := sdnv1.NewConfigServiceClient(a.conn).List(ctx, &sdnv1.ListRequest{Kind: "nodes", Stale: true}); err != nil {
		t.Fatalf("stale read without quorum: %v", err)
	}
	mr, err := sdnv1.NewClusterServiceClient(a.conn).Members(ctx, &sdnv1.MembersRequest{Stale: true})
	if err != nil || len(mr.Servers) != 2 {
		t.Fatalf("stale members: %v %v", mr, err)
	}
	for _, s := range mr.Servers {
		if s.Id == "s2" && s.State != "unreachable" {
			t.Errorf("s2 listed as %+v", s)
		}
	}
}
